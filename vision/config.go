package vision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
)

// ConfigVersion is the version of the preprocessing this package implements. It changes
// whenever the same Config would give different numbers, so that a model manifest written
// by an older version is refused rather than fed different inputs.
const ConfigVersion = 1

// Flip mirrors the output image.
type Flip string

// Flip values.
const (
	FlipNone       Flip = "none"
	FlipHorizontal Flip = "horizontal" // left–right
	FlipVertical   Flip = "vertical"   // top–bottom (e.g. MetaWorld's corner cameras)
	FlipBoth       Flip = "both"       // a half turn
)

// Channels is the channel layout of the output tensor.
type Channels string

// Channels values. A mono8 frame gives its intensity in every channel of rgb or bgr; a
// colour frame gives ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) for gray.
const (
	RGB  Channels = "rgb"
	BGR  Channels = "bgr"
	Gray Channels = "gray"
)

// Count is the number of channels.
func (c Channels) Count() int {
	if c == Gray {
		return 1
	}
	return 3
}

// Rect is a rectangle in input pixels: columns X to X+Width, rows Y to Y+Height.
type Rect struct {
	X      int `json:"x"`
	Y      int `json:"y"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Config is everything that decides the numbers a frame becomes. It is part of a model's
// manifest: training and the daemon must use equal Configs. The input's encoding and size
// are not part of it: they come with each frame.
//
// A frame becomes a tensor in this order: crop (in input pixels), resize to Width×Height
// with OpenCV's INTER_AREA on 8-bit values, flip, channel selection, then per channel
// (value·Scale − Mean[c]) / Std[c], stored CHW as float32.
type Config struct {
	Version  int       `json:"version"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Crop     *Rect     `json:"crop,omitempty"` // nil: the whole frame
	Flip     Flip      `json:"flip"`
	Channels Channels  `json:"channels"`
	Scale    float64   `json:"scale"` // multiplies the 0–255 value first
	Mean     []float64 `json:"mean"`  // one per output channel
	Std      []float64 `json:"std"`   // one per output channel
}

// DefaultConfig is 64×64 RGB in [0, 1]: no crop, no flip, scale 1/255, mean 0, std 1.
func DefaultConfig() Config {
	return Config{
		Version:  ConfigVersion,
		Width:    64,
		Height:   64,
		Flip:     FlipNone,
		Channels: RGB,
		Scale:    1.0 / 255,
		Mean:     []float64{0, 0, 0},
		Std:      []float64{1, 1, 1},
	}
}

// MaxOutputSize bounds Width and Height.
const MaxOutputSize = 4096

// Validate reports the first problem, naming its key.
func (c Config) Validate() error {
	switch {
	case c.Version != ConfigVersion:
		return fmt.Errorf("version: %d is not supported (this build implements %d)", c.Version, ConfigVersion)
	case c.Width < 1 || c.Width > MaxOutputSize:
		return fmt.Errorf("width: must be between 1 and %d, got %d", MaxOutputSize, c.Width)
	case c.Height < 1 || c.Height > MaxOutputSize:
		return fmt.Errorf("height: must be between 1 and %d, got %d", MaxOutputSize, c.Height)
	}
	if r := c.Crop; r != nil {
		switch {
		case r.X < 0:
			return fmt.Errorf("crop.x: must not be negative, got %d", r.X)
		case r.Y < 0:
			return fmt.Errorf("crop.y: must not be negative, got %d", r.Y)
		case r.Width < 1:
			return fmt.Errorf("crop.width: must be positive, got %d", r.Width)
		case r.Height < 1:
			return fmt.Errorf("crop.height: must be positive, got %d", r.Height)
		case r.X > math.MaxInt32-r.Width || r.Y > math.MaxInt32-r.Height:
			return fmt.Errorf("crop: rectangle %+v too large", *r)
		}
	}
	switch c.Flip {
	case FlipNone, FlipHorizontal, FlipVertical, FlipBoth:
	default:
		return fmt.Errorf("flip: unknown value %q (want none, horizontal, vertical or both)", c.Flip)
	}
	switch c.Channels {
	case RGB, BGR, Gray:
	default:
		return fmt.Errorf("channels: unknown value %q (want rgb, bgr or gray)", c.Channels)
	}
	if !(c.Scale > 0) || math.IsInf(c.Scale, 0) {
		return fmt.Errorf("scale: must be positive and finite, got %g", c.Scale)
	}
	n := c.Channels.Count()
	if len(c.Mean) != n {
		return fmt.Errorf("mean: %d values for %d channels (%s)", len(c.Mean), n, c.Channels)
	}
	if len(c.Std) != n {
		return fmt.Errorf("std: %d values for %d channels (%s)", len(c.Std), n, c.Channels)
	}
	for i, m := range c.Mean {
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("mean[%d]: must be finite, got %g", i, m)
		}
	}
	for i, s := range c.Std {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("std[%d]: must be positive and finite, got %g", i, s)
		}
	}
	return nil
}

// ParseConfig reads a Config from JSON over DefaultConfig, rejecting unknown keys and
// trailing data, and validates it.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	// Explicit lists replace the defaults rather than merging into them.
	c.Mean, c.Std = nil, nil
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("vision.ParseConfig: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, fmt.Errorf("vision.ParseConfig: data after the configuration")
	}
	// Absent lists default to mean 0 and std 1 for every channel.
	if c.Mean == nil {
		c.Mean = make([]float64, c.Channels.Count())
	}
	if c.Std == nil {
		c.Std = make([]float64, c.Channels.Count())
		for i := range c.Std {
			c.Std[i] = 1
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("vision.ParseConfig: %w", err)
	}
	return c, nil
}

// JSON is the stable form for a model manifest: every key, in a fixed order, compact;
// equal Configs give equal bytes. It fails only for values Validate rejects (NaN, ±Inf).
func (c Config) JSON() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("vision.Config.JSON: %w", err)
	}
	return b, nil
}

// Equal reports whether two Configs give the same numbers for every frame.
func (c Config) Equal(o Config) bool {
	if c.Version != o.Version || c.Width != o.Width || c.Height != o.Height || c.Flip != o.Flip ||
		c.Channels != o.Channels || c.Scale != o.Scale || !slices.Equal(c.Mean, o.Mean) || !slices.Equal(c.Std, o.Std) {
		return false
	}
	if c.Crop == nil || o.Crop == nil {
		return c.Crop == o.Crop
	}
	return *c.Crop == *o.Crop
}
