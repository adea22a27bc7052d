// Package vision is robodistill's one image path: a camera frame as ROS carries it
// (sensor_msgs/Image bytes: rgb8, bgr8 or mono8, rows possibly padded to `step`) becomes
// the float32 CHW tensor a model takes. Training prepares recorded frames with it and the
// daemon prepares live frames with it, with the same Config, which is stored in the
// model's manifest.
//
// The work is done by OpenCV 4.6 through gocv: the frame's bytes are wrapped, not copied;
// the crop is a view; the resize (INTER_AREA) writes into a Mat the Preprocessor reuses;
// a lookup table turns bytes into normalised floats. In steady state Process makes no Go
// allocations and leaves no Mat open.
package vision

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// ImageView is a camera frame: the fields of a sensor_msgs/Image, so that a ROS message
// maps onto it without copying its data.
type ImageView struct {
	Encoding string // "rgb8", "bgr8" or "mono8"
	Width    int
	Height   int
	Step     int    // bytes per row, at least Width × channels
	Data     []byte // at least Step × Height bytes
}

// Limits on input frames, far above any camera's, so that sizes cannot overflow OpenCV's
// int arithmetic.
const (
	MaxInputSide = 1 << 15
	MaxInputStep = 1 << 20
)

// ErrImage is wrapped by every error about a frame Process cannot use.
var ErrImage = errors.New("bad image")

// Preprocessor turns frames into tensors for one Config. It is not safe for concurrent
// use: it reuses its buffers from frame to frame.
type Preprocessor struct {
	cfg     Config
	lut     [3][256]float32 // byte value → normalised value, per output channel
	raw     []float32       // ProcessBytes's scratch, made on first use
	resized gocv.Mat        // Width×Height, 8-bit, the input's channel count
	open    bool
}

// New returns a Preprocessor for cfg. Close it to free its OpenCV memory.
func New(cfg Config) (*Preprocessor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vision.New: %w", err)
	}
	cfg.Mean = append([]float64(nil), cfg.Mean...)
	cfg.Std = append([]float64(nil), cfg.Std...)
	if cfg.Crop != nil {
		r := *cfg.Crop
		cfg.Crop = &r
	}
	p := &Preprocessor{cfg: cfg, resized: gocv.NewMat(), open: true}
	for c := 0; c < cfg.Channels.Count(); c++ {
		for v := 0; v < 256; v++ {
			p.lut[c][v] = normalize(float64(v), cfg, c)
		}
	}
	return p, nil
}

func normalize(v float64, cfg Config, c int) float32 {
	return float32((v*cfg.Scale - cfg.Mean[c]) / cfg.Std[c])
}

// Config returns the configuration.
func (p *Preprocessor) Config() Config { return p.cfg }

// Shape is the output tensor's shape: channels, height, width.
func (p *Preprocessor) Shape() [3]int {
	return [3]int{p.cfg.Channels.Count(), p.cfg.Height, p.cfg.Width}
}

// Len is the number of values Process writes.
func (p *Preprocessor) Len() int {
	s := p.Shape()
	return s[0] * s[1] * s[2]
}

// Close frees the reused Mat. It is safe to call more than once.
func (p *Preprocessor) Close() error {
	if p.open {
		p.open = false
		return p.resized.Close()
	}
	return nil
}

func encodingChannels(enc string) int {
	switch enc {
	case "rgb8", "bgr8":
		return 3
	case "mono8":
		return 1
	}
	return 0
}

// check validates a frame against the crop and returns the region to read, in pixels.
func (p *Preprocessor) check(img ImageView) (ch int, crop image.Rectangle, err error) {
	ch = encodingChannels(img.Encoding)
	switch {
	case ch == 0:
		return 0, crop, fmt.Errorf("%w: unknown encoding %q (want rgb8, bgr8 or mono8)", ErrImage, img.Encoding)
	case img.Width <= 0 || img.Height <= 0:
		return 0, crop, fmt.Errorf("%w: zero size %dx%d", ErrImage, img.Width, img.Height)
	case img.Width > MaxInputSide || img.Height > MaxInputSide || img.Step > MaxInputStep:
		return 0, crop, fmt.Errorf("%w: %dx%d with step %d is larger than this package accepts", ErrImage, img.Width, img.Height, img.Step)
	case img.Step < img.Width*ch:
		return 0, crop, fmt.Errorf("%w: step %d is smaller than width %d × %d channels", ErrImage, img.Step, img.Width, ch)
	case len(img.Data) < img.Step*img.Height:
		return 0, crop, fmt.Errorf("%w: %d bytes of data, want step %d × height %d = %d", ErrImage, len(img.Data), img.Step, img.Height, img.Step*img.Height)
	}
	crop = image.Rect(0, 0, img.Width, img.Height)
	if r := p.cfg.Crop; r != nil {
		crop = image.Rect(r.X, r.Y, r.X+r.Width, r.Y+r.Height)
		if r.X+r.Width > img.Width || r.Y+r.Height > img.Height {
			return 0, crop, fmt.Errorf("%w: crop %dx%d at (%d,%d) is outside the %dx%d image", ErrImage, r.Width, r.Height, r.X, r.Y, img.Width, img.Height)
		}
	}
	return ch, crop, nil
}

// Process writes the tensor for img into dst, which must have Len() values. Errors about
// the frame wrap ErrImage; dst is then unchanged.
func (p *Preprocessor) Process(img ImageView, dst []float32) error {
	return p.process(img, false, dst)
}

// process is Process; unnormalised leaves the values on the 0–255 scale.
func (p *Preprocessor) process(img ImageView, unnormalised bool, dst []float32) error {
	if !p.open {
		return errors.New("vision: Process after Close")
	}
	if len(dst) != p.Len() {
		return fmt.Errorf("vision: destination has %d values, want %d (%v)", len(dst), p.Len(), p.Shape())
	}
	ch, crop, err := p.check(img)
	if err != nil {
		return err
	}
	// The rows as one byte matrix (step wide), the crop as a view of it in bytes, then the
	// same view with ch channels per element: three headers, no copy.
	raw, err := gocv.NewMatFromBytes(img.Height, img.Step, gocv.MatTypeCV8UC1, img.Data[:img.Step*img.Height])
	if err != nil {
		return fmt.Errorf("vision: %w", err)
	}
	defer raw.Close()
	roi := raw.Region(image.Rect(crop.Min.X*ch, crop.Min.Y, crop.Max.X*ch, crop.Max.Y))
	defer roi.Close()
	src := roi.Reshape(ch, 0)
	defer src.Close()
	gocv.Resize(src, &p.resized, image.Pt(p.cfg.Width, p.cfg.Height), 0, 0, gocv.InterpolationArea)
	pix, err := p.resized.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("vision: %w", err)
	}
	p.toTensor(pix, ch, img.Encoding == "bgr8", unnormalised, dst)
	return nil
}

// ProcessBytes writes the tensor for img before normalisation into dst (Len() bytes,
// CHW): cropped, resized, flipped and with the configured channels, each value the
// 0–255 byte that Process would normalise. Normalize then gives exactly Process's
// tensor, except for a gray tensor made from a colour frame, whose luma ProcessBytes
// rounds to a byte. A replay buffer that keeps model inputs for later rescoring
// stores these, a quarter of the floats' size.
func (p *Preprocessor) ProcessBytes(img ImageView, dst []byte) error {
	if len(dst) != p.Len() {
		return fmt.Errorf("vision: destination has %d bytes, want %d (%v)", len(dst), p.Len(), p.Shape())
	}
	if p.raw == nil {
		p.raw = make([]float32, p.Len())
	}
	if err := p.process(img, true, p.raw); err != nil {
		return err
	}
	for i, v := range p.raw {
		dst[i] = byte(v + 0.5)
	}
	return nil
}

// Normalize turns ProcessBytes's output into the model's tensor (Len() values each).
func (p *Preprocessor) Normalize(src []byte, dst []float32) {
	plane := p.cfg.Width * p.cfg.Height
	for i, v := range src[:len(dst)] {
		dst[i] = p.lut[i/plane][v]
	}
}

// identity maps every byte to its own value: ProcessBytes's table.
var identity = func() (t [3][256]float32) {
	for c := range t {
		for v := range t[c] {
			t[c][v] = float32(v)
		}
	}
	return t
}()

// toTensor flips, selects channels and normalises the resized pixels into dst (CHW).
// Flipping after the resize equals flipping before it: area resampling is symmetric.
func (p *Preprocessor) toTensor(pix []byte, ch int, bgr bool, raw bool, dst []float32) {
	w, h := p.cfg.Width, p.cfg.Height
	plane := w * h
	flipX := p.cfg.Flip == FlipHorizontal || p.cfg.Flip == FlipBoth
	flipY := p.cfg.Flip == FlipVertical || p.cfg.Flip == FlipBoth
	// src[c] is the input byte offset of output channel c within a pixel.
	r, b := 0, 2
	if bgr {
		r, b = 2, 0
	}
	var src [3]int
	switch p.cfg.Channels {
	case RGB:
		src = [3]int{r, 1, b}
	case BGR:
		src = [3]int{b, 1, r}
	}
	gray := p.cfg.Channels == Gray && ch == 3
	nc := p.cfg.Channels.Count()
	lut := &p.lut
	if raw {
		lut = &identity
	}
	for y := 0; y < h; y++ {
		sy := y
		if flipY {
			sy = h - 1 - y
		}
		row := pix[sy*w*ch : (sy+1)*w*ch]
		for x := 0; x < w; x++ {
			sx := x
			if flipX {
				sx = w - 1 - x
			}
			px := row[sx*ch : sx*ch+ch]
			o := y*w + x
			switch {
			case gray:
				luma := 0.299*float64(px[r]) + 0.587*float64(px[1]) + 0.114*float64(px[b])
				if raw {
					dst[o] = float32(luma)
				} else {
					dst[o] = normalize(luma, p.cfg, 0)
				}
			case ch == 1:
				for c := 0; c < nc; c++ {
					dst[c*plane+o] = lut[c][px[0]]
				}
			default:
				for c := 0; c < nc; c++ {
					dst[c*plane+o] = lut[c][px[src[c]]]
				}
			}
		}
	}
}
