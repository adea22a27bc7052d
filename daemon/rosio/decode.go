package rosio

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/vision"
)

// Never is the age of an input that has not been received.
const Never = time.Duration(math.MaxInt64)

// Stamp says when an input's value arrived.
type Stamp struct {
	// Received is the local time the callback got the message (with the monotonic clock
	// reading of time.Now); zero when nothing was received.
	Received time.Time
	// Header is the message's header stamp and Seq its header seq (zero for std_msgs/Bool,
	// which has no header).
	Header time.Time
	Seq    uint32
}

// Valid reports whether a value was received.
func (s Stamp) Valid() bool { return !s.Received.IsZero() }

// Age is how long ago the value was received, or Never.
func (s Stamp) Age(now time.Time) time.Duration {
	if s.Received.IsZero() {
		return Never
	}
	return now.Sub(s.Received)
}

func stampOf(h *std_msgs.Header, received time.Time) Stamp {
	return Stamp{Received: received, Header: h.Stamp, Seq: h.Seq}
}

// Pose is a decoded geometry_msgs/PoseStamped.
type Pose struct {
	Pos [3]float64
	// Quat is the orientation (w, x, y, z): a unit quaternion, or all zeros when the
	// sender gave none.
	Quat  [4]float64
	Stamp Stamp
}

// quatTolerance is how far from 1 a quaternion's norm may be (float32 round trips and
// sloppy normalisation stay well inside it).
const quatTolerance = 1e-3

// DecodePose validates a PoseStamped and writes it to dst; on error dst is unchanged.
// Every value must be finite, the orientation a unit quaternion (or all zeros: no
// orientation) and the frame_id frame, or empty; frame "" accepts any frame.
func DecodePose(m *geometry_msgs.PoseStamped, frame string, received time.Time, dst *Pose) error {
	p, q := m.Pose.Position, m.Pose.Orientation
	vals := [7]float64{p.X, p.Y, p.Z, q.W, q.X, q.Y, q.Z}
	for i, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s is %v", poseFields[i], v)
		}
	}
	if n := math.Sqrt(q.W*q.W + q.X*q.X + q.Y*q.Y + q.Z*q.Z); n != 0 && math.Abs(n-1) > quatTolerance {
		return fmt.Errorf("orientation (w %g, x %g, y %g, z %g) has norm %g, want a unit quaternion (or all zeros)", q.W, q.X, q.Y, q.Z, n)
	}
	if f := m.Header.FrameId; frame != "" && f != "" && f != frame {
		return fmt.Errorf("frame_id %q, want %q", f, frame)
	}
	*dst = Pose{Pos: [3]float64{p.X, p.Y, p.Z}, Quat: [4]float64{q.W, q.X, q.Y, q.Z}, Stamp: stampOf(&m.Header, received)}
	return nil
}

var poseFields = [7]string{"position.x", "position.y", "position.z", "orientation.w", "orientation.x", "orientation.y", "orientation.z"}

// Joints are the configured joints of a sensor_msgs/JointState, in configured order.
type Joints struct {
	// Names are the configured joint names (shared; do not modify).
	Names    []string
	Position []float64
	// Velocity is zero when the message carried no velocities (HasVelocity false).
	Velocity    []float64
	HasVelocity bool
	Stamp       Stamp
}

// NewJoints returns a Joints with room for names.
func NewJoints(names []string) Joints {
	return Joints{Names: names, Position: make([]float64, len(names)), Velocity: make([]float64, len(names))}
}

// copyTo copies j into dst, reusing dst's buffers.
func (j *Joints) copyTo(dst *Joints) {
	dst.Names = j.Names
	dst.Position = append(dst.Position[:0], j.Position...)
	dst.Velocity = append(dst.Velocity[:0], j.Velocity...)
	dst.HasVelocity = j.HasVelocity
	dst.Stamp = j.Stamp
}

// DecodeJointState validates a JointState and writes the joints dst.Names lists to dst
// (whose Position and Velocity must have len(dst.Names) values). Every configured joint
// must appear exactly once; position (and velocity, unless empty) must have one value
// per name, finite for the configured joints. Effort is ignored. On error dst is
// unchanged.
func DecodeJointState(m *sensor_msgs.JointState, received time.Time, dst *Joints) error {
	n := len(m.Name)
	if len(m.Position) != n {
		return fmt.Errorf("%d names but %d positions", n, len(m.Position))
	}
	hasVel := len(m.Velocity) > 0
	if hasVel && len(m.Velocity) != n {
		return fmt.Errorf("%d names but %d velocities", n, len(m.Velocity))
	}
	if len(dst.Position) != len(dst.Names) || len(dst.Velocity) != len(dst.Names) {
		return fmt.Errorf("rosio: Joints buffers hold %d positions and %d velocities for %d names", len(dst.Position), len(dst.Velocity), len(dst.Names))
	}
	// Check everything first so that dst stays unchanged on error.
	for _, want := range dst.Names {
		at := -1
		for i, name := range m.Name {
			if name != want {
				continue
			}
			if at >= 0 {
				return fmt.Errorf("joint %q appears twice", want)
			}
			at = i
		}
		if at < 0 {
			return fmt.Errorf("joint %q missing (message has %d joints)", want, n)
		}
		if v := m.Position[at]; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("joint %q position is %v", want, v)
		}
		if hasVel {
			if v := m.Velocity[at]; math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("joint %q velocity is %v", want, v)
			}
		}
	}
	for k, want := range dst.Names {
		for i, name := range m.Name {
			if name == want {
				dst.Position[k] = m.Position[i]
				dst.Velocity[k] = 0
				if hasVel {
					dst.Velocity[k] = m.Velocity[i]
				}
				break
			}
		}
	}
	dst.HasVelocity = hasVel
	dst.Stamp = stampOf(&m.Header, received)
	return nil
}

// Frame is a camera frame with its rows packed (Step = Width × channels).
type Frame struct {
	Encoding      string // "rgb8", "bgr8" or "mono8"
	Width, Height int
	Step          int
	Data          []byte // Step × Height bytes
	Stamp         Stamp
}

// View is the frame as package vision takes it (no copy).
func (f *Frame) View() vision.ImageView {
	return vision.ImageView{Encoding: f.Encoding, Width: f.Width, Height: f.Height, Step: f.Step, Data: f.Data}
}

// copyTo copies f into dst, reusing dst.Data when it is large enough.
func (f *Frame) copyTo(dst *Frame) {
	data := append(dst.Data[:0], f.Data...)
	*dst = *f
	dst.Data = data
}

// Image limits: far above any camera's, small enough that sizes cannot overflow and a
// single message cannot make the daemon allocate more than MaxImageBytes.
const (
	MaxImageSide  = 1 << 14
	MaxImageBytes = 1 << 27
)

// ErrImage is wrapped by DecodeImage's errors.
var ErrImage = errors.New("bad image")

// encodings interns the accepted encodings so a stored Frame does not keep a message's
// string alive.
var encodings = [...]struct {
	name string
	ch   int
}{{"rgb8", 3}, {"bgr8", 3}, {"mono8", 1}}

// DecodeImage validates an Image and copies its pixels into dst with the rows packed,
// reusing dst.Data when it is large enough. The encoding must be rgb8, bgr8 or mono8,
// the size non-zero and at most MaxImageSide per side, step at least width × channels,
// and the data exactly step × height bytes (is_bigendian does not matter for 8-bit
// data). On error dst is unchanged.
func DecodeImage(m *sensor_msgs.Image, received time.Time, dst *Frame) error {
	enc, ch := "", 0
	for _, e := range encodings {
		if m.Encoding == e.name {
			enc, ch = e.name, e.ch
		}
	}
	w, h, step := uint64(m.Width), uint64(m.Height), uint64(m.Step)
	switch {
	case enc == "":
		return fmt.Errorf("%w: encoding %q, want rgb8, bgr8 or mono8", ErrImage, m.Encoding)
	case w == 0 || h == 0:
		return fmt.Errorf("%w: size %dx%d is empty", ErrImage, w, h)
	case w > MaxImageSide || h > MaxImageSide:
		return fmt.Errorf("%w: size %dx%d above %d per side", ErrImage, w, h, MaxImageSide)
	case step < w*uint64(ch):
		return fmt.Errorf("%w: step %d is less than width %d × %d channels", ErrImage, step, w, ch)
	case step*h > MaxImageBytes:
		return fmt.Errorf("%w: step %d × height %d is above %d bytes", ErrImage, step, h, MaxImageBytes)
	case uint64(len(m.Data)) != step*h:
		return fmt.Errorf("%w: %d data bytes, want step %d × height %d = %d", ErrImage, len(m.Data), step, h, step*h)
	}
	row := int(w) * ch
	n := row * int(h)
	data := dst.Data[:0]
	if cap(data) < n {
		data = make([]byte, 0, n)
	}
	if int(step) == row {
		data = append(data, m.Data...)
	} else {
		for y := 0; y < int(h); y++ {
			off := y * int(step)
			data = append(data, m.Data[off:off+row]...)
		}
	}
	*dst = Frame{Encoding: enc, Width: int(w), Height: int(h), Step: row, Data: data, Stamp: stampOf(&m.Header, received)}
	return nil
}

// Estop is the emergency stop input.
type Estop struct {
	Engaged bool
	Stamp   Stamp // Header and Seq stay zero: std_msgs/Bool has no header
}

// DecodeEstop reads a std_msgs/Bool; every value is valid.
func DecodeEstop(m *std_msgs.Bool, received time.Time) Estop {
	return Estop{Engaged: m.Data, Stamp: Stamp{Received: received}}
}
