package bridge

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
)

// ParseTwist validates a velocity command and returns its linear velocity. Every field
// must be finite; the frame must be "world" (or empty, as `rostopic pub` leaves it). The
// angular part is ignored: the simulated hand holds its orientation, as MetaWorld's does.
func ParseTwist(m *geometry_msgs.TwistStamped) ([3]float64, error) {
	l, a := m.Twist.Linear, m.Twist.Angular
	for _, v := range [6]float64{l.X, l.Y, l.Z, a.X, a.Y, a.Z} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return [3]float64{}, fmt.Errorf("velocity %v/%v is not finite", l, a)
		}
	}
	if f := m.Header.FrameId; f != "" && f != "world" {
		return [3]float64{}, fmt.Errorf("frame %q: velocities are taken in \"world\"", f)
	}
	return [3]float64{l.X, l.Y, l.Z}, nil
}

// ParseGripper validates a gripper effort. It must be finite; values outside [-1, 1] are
// clipped later, as MetaWorld clips actions.
func ParseGripper(m *std_msgs.Float64) (float64, error) {
	if math.IsNaN(m.Data) || math.IsInf(m.Data, 0) {
		return 0, fmt.Errorf("gripper effort %v is not finite", m.Data)
	}
	return m.Data, nil
}

// DecodeTwist decodes a serialized geometry_msgs/TwistStamped (as it arrives on the wire,
// length-prefixed) and validates it.
func DecodeTwist(b []byte) ([3]float64, error) {
	var m geometry_msgs.TwistStamped
	if err := protocommon.MessageDecode(bytes.NewReader(b), &m); err != nil {
		return [3]float64{}, fmt.Errorf("decode TwistStamped: %w", err)
	}
	return ParseTwist(&m)
}

// DecodeGripper decodes a serialized std_msgs/Float64 and validates it.
func DecodeGripper(b []byte) (float64, error) {
	var m std_msgs.Float64
	if err := protocommon.MessageDecode(bytes.NewReader(b), &m); err != nil {
		return 0, fmt.Errorf("decode Float64: %w", err)
	}
	return ParseGripper(&m)
}

// DecodeTrigger decodes a serialized std_srvs/Trigger request (which has no fields).
func DecodeTrigger(b []byte) error {
	var m std_srvs.TriggerReq
	if err := protocommon.MessageDecode(bytes.NewReader(b), &m); err != nil {
		return fmt.Errorf("decode Trigger request: %w", err)
	}
	return nil
}

// inputs are latest-value slots for the commands: subscriber callbacks store into them
// and return at once, so a callback never waits for the simulator and the simulator
// never waits for a callback.
type inputs struct {
	mu      sync.Mutex
	vel     [3]float64
	velAt   time.Time
	velSeq  uint64
	grip    float64
	gripAt  time.Time
	gripSeq uint64
	notify  chan struct{} // one pending wake-up for the lockstep loop
}

func newInputs() *inputs { return &inputs{notify: make(chan struct{}, 1)} }

func (in *inputs) setVel(v [3]float64, at time.Time) {
	in.mu.Lock()
	in.vel, in.velAt = v, at
	in.velSeq++
	in.mu.Unlock()
	in.wake()
}

func (in *inputs) setGrip(g float64, at time.Time) {
	in.mu.Lock()
	in.grip, in.gripAt = g, at
	in.gripSeq++
	in.mu.Unlock()
	in.wake()
}

func (in *inputs) wake() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// snapshot is the slots' content at one moment.
type snapshot struct {
	vel     [3]float64
	velAt   time.Time
	velSeq  uint64
	grip    float64
	gripAt  time.Time
	gripSeq uint64
}

func (in *inputs) snapshot() snapshot {
	in.mu.Lock()
	defer in.mu.Unlock()
	return snapshot{in.vel, in.velAt, in.velSeq, in.grip, in.gripAt, in.gripSeq}
}

// clear forgets the commands (at a reset): no velocity, zero gripper effort. Sequence
// numbers keep counting so a loop can tell new commands from old ones.
func (in *inputs) clear() {
	in.mu.Lock()
	in.vel, in.velAt, in.grip, in.gripAt = [3]float64{}, time.Time{}, 0, time.Time{}
	in.mu.Unlock()
}
