package translog

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
)

// The writer serializes messages itself, appending to the chunk buffer, so that writing
// a step allocates nothing; TestEncodeMatchesGoroslib checks every encoder against
// goroslib's reflection encoder, and the round-trip tests decode the bags with
// control/episode.

func appendU8(b []byte, v uint8) []byte { return append(b, v) }

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func appendF32(b []byte, v float32) []byte { return appendU32(b, math.Float32bits(v)) }

func appendF64(b []byte, v float64) []byte { return appendU64(b, math.Float64bits(v)) }

func appendString(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// appendStamp encodes a ROS time as goroslib does: the zero time.Time is 0, anything
// else its Unix nanoseconds split into seconds and nanoseconds.
func appendStamp(b []byte, t time.Time) []byte {
	return appendNanos(b, stampNanos(t))
}

func stampNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func appendNanos(b []byte, ns int64) []byte {
	b = appendU32(b, uint32(ns/1e9))
	return appendU32(b, uint32(ns%1e9))
}

func appendHeader(b []byte, seq uint32, stamp time.Time, frame string) []byte {
	b = appendU32(b, seq)
	b = appendStamp(b, stamp)
	return appendString(b, frame)
}

func appendF64s(b []byte, v []float64) []byte {
	b = appendU32(b, uint32(len(v)))
	for _, x := range v {
		b = appendF64(b, x)
	}
	return b
}

// encImage encodes sensor_msgs/Image with packed rows.
func encImage(b []byte, seq uint32, im *Image) []byte {
	b = appendHeader(b, seq, im.Stamp, im.FrameID)
	b = appendU32(b, uint32(im.Height))
	b = appendU32(b, uint32(im.Width))
	b = appendString(b, im.Encoding)
	b = appendU8(b, 0) // is_bigendian
	b = appendU32(b, uint32(im.Step))
	b = appendU32(b, uint32(len(im.Data)))
	return append(b, im.Data...)
}

// encPose encodes geometry_msgs/PoseStamped (the quaternion goes x, y, z, w).
func encPose(b []byte, seq uint32, p *Pose) []byte {
	b = appendHeader(b, seq, p.Stamp, p.FrameID)
	for _, v := range p.Pos {
		b = appendF64(b, v)
	}
	b = appendF64(b, p.Quat[1])
	b = appendF64(b, p.Quat[2])
	b = appendF64(b, p.Quat[3])
	return appendF64(b, p.Quat[0])
}

// encJoints encodes sensor_msgs/JointState.
func encJoints(b []byte, seq uint32, j *Joints) []byte {
	b = appendHeader(b, seq, j.Stamp, j.FrameID)
	b = appendU32(b, uint32(len(j.Name)))
	for _, n := range j.Name {
		b = appendString(b, n)
	}
	b = appendF64s(b, j.Position)
	b = appendF64s(b, j.Velocity)
	return appendF64s(b, j.Effort)
}

// encTwist encodes geometry_msgs/TwistStamped with a linear velocity only.
func encTwist(b []byte, seq uint32, c *Command) []byte {
	b = appendHeader(b, seq, c.Stamp, c.FrameID)
	for _, v := range c.Vel {
		b = appendF64(b, v)
	}
	for range 3 {
		b = appendF64(b, 0)
	}
	return b
}

// policyLabel labels the policy action's Float64MultiArray.
const policyLabel = "action"

// encAction encodes std_msgs/Float64MultiArray with one dimension labelled "action".
func encAction(b []byte, a *[4]float64) []byte {
	b = appendU32(b, 1) // one dimension
	b = appendString(b, policyLabel)
	b = appendU32(b, uint32(len(a)))
	b = appendU32(b, uint32(len(a)))
	b = appendU32(b, 0) // data_offset
	return appendF64s(b, a[:])
}

// safetyName is the DiagnosticStatus name of the safety state.
const safetyName = "safety"

// encSafety encodes diagnostic_msgs/DiagnosticStatus: level, name "safety", the reason
// as message, and the key-values "state" (ok, limited, stopped, stale) and "estop".
func encSafety(b []byte, s *Safety) []byte {
	b = appendU8(b, uint8(s.Level))
	b = appendString(b, safetyName)
	b = appendString(b, s.Reason)
	b = appendString(b, "") // hardware_id
	b = appendU32(b, 2)
	b = appendString(b, "state")
	b = appendString(b, s.Level.String())
	b = appendString(b, "estop")
	if s.Estop {
		return appendString(b, "true")
	}
	return appendString(b, "false")
}

// msgType is what a connection record says about a message type.
type msgType struct {
	name, md5, def string
}

// message types of the logged topics, in a fixed order
const (
	typString = iota
	typImage
	typPose
	typJoints
	typTwist
	typFloat64
	typFloat32
	typMultiArray
	typDiagnostic
	numTypes
)

var msgTypes = sync.OnceValues(func() ([numTypes]msgType, error) {
	var out [numTypes]msgType
	for i, v := range [numTypes]any{
		std_msgs.String{}, sensor_msgs.Image{}, geometry_msgs.PoseStamped{}, sensor_msgs.JointState{},
		geometry_msgs.TwistStamped{}, std_msgs.Float64{}, std_msgs.Float32{}, std_msgs.Float64MultiArray{},
		diagnostic_msgs.DiagnosticStatus{},
	} {
		name, err := msgproc.Type(v)
		if err != nil {
			return out, fmt.Errorf("message type of %s: %w", reflect.TypeOf(v), err)
		}
		md5, err := msgproc.MD5(v)
		if err != nil {
			return out, fmt.Errorf("md5 of %s: %w", name, err)
		}
		def, err := msgproc.Definition(v)
		if err != nil {
			return out, fmt.Errorf("definition of %s: %w", name, err)
		}
		out[i] = msgType{name: name, md5: md5, def: def}
	}
	return out, nil
})
