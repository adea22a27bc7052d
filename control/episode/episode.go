// Package episode is robodistill's recorded-episode format (docs/episodes.md): ROS bag v2.0
// files carrying the topics of the ROS interface (control/rosiface), one bag per episode,
// plus a crash-safe collection folder with an index that finds a frame by its content hash.
//
// The same format serves simulated collection (`robodistill collect`), the daemon's
// transition logs and bags recorded with `rosbag record` from the sim bridge: the reader
// assembles steps from the topics alone, one step per camera image, so a bag that lacks the
// simulator-only topics (metadata, observation, episode status) still reads as an episode.
//
// Writing: Writer (one bag) and Store (a collection folder: temporary file, fsync, rename,
// then an fsynced index line). Reading: OpenBag (any bag) and OpenCollection (a folder,
// with Locate and Frame to fetch a frame by hash).
package episode

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Format and Version name the format. Version changes when a reader of the previous
// version would misread a file; additions that old readers can ignore keep the version.
const (
	Format  = "robodistill.episode"
	Version = 1
)

// MetaTopic carries the metadata message (std_msgs/String, JSON of Meta) at the start of
// each bag that robodistill writes. It is optional for readers.
const MetaTopic = "/robodistill/episode"

// Meta describes one recorded episode. It is written as JSON in a std_msgs/String on
// MetaTopic, first in the bag, at the time of the episode's first step.
type Meta struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Source is "sim" for simulated collection or "robot" for a robot's log.
	Source string `json:"source"`
	Task   string `json:"task,omitempty"`
	Goal   string `json:"goal,omitempty"` // the task's goal text
	// Episode is the episode's number in its collection; Seed the simulator's reset seed.
	Episode int    `json:"episode"`
	Seed    uint64 `json:"seed"`
	Policy  string `json:"policy,omitempty"`
	Camera  string `json:"camera,omitempty"`
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
	// Rate is the control rate in Hz and ActionScale the hand displacement of a unit
	// action per control period (m); together they convert velocity commands to actions.
	Rate        int     `json:"rate,omitempty"`
	ActionScale float64 `json:"action_scale,omitempty"`
	MaxSteps    int     `json:"max_steps,omitempty"`
	Namespace   string  `json:"namespace"`
}

// Check reports whether m names this format at a version this reader understands.
func (m *Meta) Check() error {
	if m.Format != Format {
		return fmt.Errorf("metadata names format %q, want %q", m.Format, Format)
	}
	if m.Version < 1 || m.Version > Version {
		return fmt.Errorf("format version %d is not supported (this reader knows 1..%d)", m.Version, Version)
	}
	return nil
}

// Hash is a frame's content hash (see Frame.Hash).
type Hash [32]byte

// String is the lowercase hex form labels use.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero value.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses the 64-digit hex form of a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("frame hash %q: want %d hex digits, got %d", s, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("frame hash %q: %w", s, err)
	}
	return h, nil
}

// Frame is a camera image with its rows packed (no padding).
type Frame struct {
	Width, Height int
	Encoding      string // rgb8, bgr8 or mono8
	Data          []byte // Height rows of Width × BytesPerPixel(Encoding) bytes
}

// hashPrefix starts every frame hash's input; it names the hash's definition.
const hashPrefix = "robodistill/frame/v1\x00"

// Hash is the frame's content hash: SHA-256 of
//
//	"robodistill/frame/v1" 0x00 encoding 0x00 uint32le(width) uint32le(height) pixels
//
// where pixels are the packed rows as in Data (a ROS image's row padding is dropped).
func (f *Frame) Hash() Hash {
	return hashPixels(f.Encoding, f.Width, f.Height, f.Data)
}

func hashPixels(enc string, w, h int, pix []byte) Hash {
	d := sha256.New()
	d.Write([]byte(hashPrefix))
	d.Write([]byte(enc))
	var b [9]byte
	binary.LittleEndian.PutUint32(b[1:], uint32(w))
	binary.LittleEndian.PutUint32(b[5:], uint32(h))
	d.Write(b[:])
	d.Write(pix)
	var out Hash
	d.Sum(out[:0])
	return out
}

// RGBFrameHash is the hash of a packed rgb8 frame, as a writer that holds the rendered
// pixels computes it.
func RGBFrameHash(w, h int, rgb []byte) Hash { return hashPixels("rgb8", w, h, rgb) }

// BytesPerPixel is the pixel size of the supported encodings (0 for others).
func BytesPerPixel(encoding string) int {
	switch encoding {
	case "rgb8", "bgr8":
		return 3
	case "mono8":
		return 1
	}
	return 0
}

// RGB returns the frame as packed rgb8 (a copy for bgr8 and mono8, Data itself for rgb8).
func (f *Frame) RGB() []byte {
	switch f.Encoding {
	case "rgb8":
		return f.Data
	case "bgr8":
		out := make([]byte, len(f.Data))
		for i := 0; i+2 < len(f.Data); i += 3 {
			out[i], out[i+1], out[i+2] = f.Data[i+2], f.Data[i+1], f.Data[i]
		}
		return out
	case "mono8":
		out := make([]byte, 3*len(f.Data))
		for i, v := range f.Data {
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
		return out
	}
	return nil
}
