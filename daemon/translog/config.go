package translog

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"robodistill/control/episode"
)

// Config configures a Log. Zero values take the defaults named on each field; every
// validation error names the field's key.
type Config struct {
	// Dir is the log folder; it is created if missing (key dir, required).
	Dir string `yaml:"dir"`
	// Namespace is the ROS namespace the daemon's topics live under ("" or "/": the root).
	Namespace string `yaml:"namespace"`
	// Slots is the length of the queue between Record and the writer, in transitions
	// (default 128: 2.5 s at 50 Hz). Four slots are kept for StartEpisode and EndEpisode.
	Slots int `yaml:"slots"`
	// MaxFrameBytes sizes every slot's frame buffer at New (e.g. 224×224×3); 0 sizes each
	// buffer on its first use instead. A larger frame grows its slot's buffer once.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// FlushEvery bounds how long a recorded transition waits in memory: a chunk is written
	// and fsynced at least this often, full or not (default 1 s).
	FlushEvery time.Duration `yaml:"flush_every"`
	// ChunkSize is the size at which a chunk is written early (default episode.ChunkSize).
	ChunkSize int `yaml:"chunk_size"`
	// Rate is the control rate in Hz, written into each episode's metadata (default 50).
	Rate int `yaml:"rate"`
}

// Defaults.
const (
	DefaultSlots      = 128
	DefaultFlushEvery = time.Second
	DefaultRate       = 50
	// markerSlots are the slots only StartEpisode and EndEpisode may use, so that an
	// episode boundary is not lost to a full queue of transitions.
	markerSlots = 4
)

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Slots == 0 {
		c.Slots = DefaultSlots
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = DefaultFlushEvery
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = episode.ChunkSize
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	return c
}

// Validate checks a configuration with its defaults applied.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.Dir == "" {
		bad("dir", "the log folder is required")
	}
	if err := validNamespace(c.Namespace); err != nil {
		bad("namespace", "%v", err)
	}
	if c.Slots < 2*markerSlots || c.Slots > 1<<16 {
		bad("slots", "%d is out of range [%d, %d]", c.Slots, 2*markerSlots, 1<<16)
	}
	if c.MaxFrameBytes < 0 || c.MaxFrameBytes > 64<<20 {
		bad("max_frame_bytes", "%d is out of range [0, %d]", c.MaxFrameBytes, 64<<20)
	}
	if c.FlushEvery < 10*time.Millisecond || c.FlushEvery > time.Minute {
		bad("flush_every", "%v is out of range [10ms, 1m]", c.FlushEvery)
	}
	if c.ChunkSize < 4<<10 || c.ChunkSize > 64<<20 {
		bad("chunk_size", "%d bytes is out of range [%d, %d]", c.ChunkSize, 4<<10, 64<<20)
	}
	if c.Rate < 1 || c.Rate > 1000 {
		bad("rate", "%d Hz is out of range [1, 1000]", c.Rate)
	}
	return errors.Join(errs...)
}

// validNamespace accepts "", "/" or /name(/name)* (a name is a letter, then letters,
// digits and _), with or without the leading slash.
func validNamespace(ns string) error {
	s := strings.Trim(ns, "/")
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, "/") {
		if part == "" {
			return fmt.Errorf("%q has an empty name between slashes", ns)
		}
		for i, r := range part {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '_')) {
				return fmt.Errorf("%q: %q is not a ROS name (a letter, then letters, digits or _)", ns, part)
			}
		}
	}
	return nil
}
