package rosio

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/control/rosnode"
)

// publisher is what Outputs write to: a rosnode.Publisher (a fake in tests).
type publisher interface {
	Write(msg any) error
}

// slab hands out message structs that are never reused. goroslib keeps a published
// message (queued for each subscriber's writer goroutine, and as the latched message) and
// encodes it later, so reusing a struct would race with the encoder; taking them from a
// slab instead costs one allocation per slabSize messages.
type slab[T any] struct {
	buf []T
	i   int
}

const slabSize = 256

func (s *slab[T]) next() *T {
	if s.i == len(s.buf) {
		s.buf, s.i = make([]T, slabSize), 0
	}
	p := &s.buf[s.i]
	s.i++
	return p
}

// Outputs publishes the daemon's outputs. Command and Reward are for the control thread
// (one goroutine; they allocate once per 256 calls); Diagnostics and SafetyState may be
// called from any goroutine. Each returns rosnode.ErrNotConnected, having dropped the
// message, while the node is not registered with a master.
type Outputs struct {
	topics Topics
	frame  string

	cmdVel, gripper, reward, diag, safety publisher

	// Control thread.
	twists  slab[geometry_msgs.TwistStamped]
	floats  slab[std_msgs.Float64]
	rewards slab[std_msgs.Float32]
	cmdSeq  uint32

	mu         sync.Mutex // Diagnostics and SafetyState
	diagSeq    uint32
	lastSafety string
	haveSafety bool
}

// NewOutputs validates cfg and advertises the output topics on node: arm/cmd_vel
// (TwistStamped), gripper/command (Float64), reward (Float32), diagnostics
// (DiagnosticArray) and safety_state (String, latched, so a late subscriber gets the
// current state).
func NewOutputs(node *rosnode.Node, cfg Config) (*Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rosio.NewOutputs: %w", err)
	}
	t := cfg.ResolveTopics()
	o := &Outputs{topics: t, frame: cfg.Frame}
	for _, a := range []struct {
		dst   *publisher
		topic string
		msg   any
		latch bool
	}{
		{&o.cmdVel, t.CmdVel, &geometry_msgs.TwistStamped{}, false},
		{&o.gripper, t.Gripper, &std_msgs.Float64{}, false},
		{&o.reward, t.Reward, &std_msgs.Float32{}, false},
		{&o.diag, t.Diagnostics, &diagnostic_msgs.DiagnosticArray{}, false},
		{&o.safety, t.SafetyState, &std_msgs.String{}, true},
	} {
		p, err := node.Advertise(a.topic, a.msg, a.latch)
		if err != nil {
			return nil, fmt.Errorf("rosio.NewOutputs: %w", err)
		}
		*a.dst = p
	}
	return o, nil
}

// Topics are the resolved topic names.
func (o *Outputs) Topics() Topics { return o.topics }

// Command publishes one control cycle's command: the gripper effort on gripper/command,
// then the hand's linear velocity (m/s, in the configured frame) on arm/cmd_vel, stamped
// stamp. The gripper goes first because a lockstep sim bridge steps on the velocity and
// waits for the cycle's gripper command only briefly. Non-finite values are refused
// (nothing is published): the safety filter should never pass them.
func (o *Outputs) Command(stamp time.Time, vel [3]float64, grip float64) error {
	for i, v := range [4]float64{vel[0], vel[1], vel[2], grip} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &NonFiniteError{Field: commandFields[i], Value: v}
		}
	}
	g := o.floats.next()
	g.Data = grip
	errGrip := o.gripper.Write(g)
	o.cmdSeq++
	tw := o.twists.next()
	tw.Header = std_msgs.Header{Seq: o.cmdSeq, Stamp: stamp, FrameId: o.frame}
	tw.Twist.Linear = geometry_msgs.Vector3{X: vel[0], Y: vel[1], Z: vel[2]}
	if err := o.cmdVel.Write(tw); err != nil {
		return err
	}
	return errGrip
}

var commandFields = [4]string{"velocity x", "velocity y", "velocity z", "gripper"}

// NonFiniteError is a command value that is NaN or infinite.
type NonFiniteError struct {
	Field string
	Value float64
}

// Error names the field and its value.
func (e *NonFiniteError) Error() string {
	return "rosio: command " + e.Field + " is " + strconv.FormatFloat(e.Value, 'g', -1, 64) + "; not published"
}

// Reward publishes the cycle's distilled reward.
func (o *Outputs) Reward(r float32) error {
	m := o.rewards.next()
	m.Data = r
	return o.reward.Write(m)
}

// SafetyState publishes state on safety_state (latched) when it differs from the last
// state published; it reports whether it published.
func (o *Outputs) SafetyState(state string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.haveSafety && state == o.lastSafety {
		return false, nil
	}
	if err := o.safety.Write(&std_msgs.String{Data: state}); err != nil {
		return false, err
	}
	o.lastSafety, o.haveSafety = state, true
	return true, nil
}

// Diagnostics publishes d on diagnostics, stamped stamp (see DiagnosticArray). It
// allocates: publish it at a low rate (1 Hz is ROS's custom).
func (o *Outputs) Diagnostics(stamp time.Time, d *Diagnostics) error {
	o.mu.Lock()
	o.diagSeq++
	seq := o.diagSeq
	o.mu.Unlock()
	return o.diag.Write(DiagnosticArray(std_msgs.Header{Seq: seq, Stamp: stamp}, d))
}

// Level is a diagnostic status level.
type Level int8

// Levels, as diagnostic_msgs/DiagnosticStatus defines them.
const (
	LevelOK    = Level(diagnostic_msgs.DiagnosticStatus_OK)
	LevelWarn  = Level(diagnostic_msgs.DiagnosticStatus_WARN)
	LevelError = Level(diagnostic_msgs.DiagnosticStatus_ERROR)
	LevelStale = Level(diagnostic_msgs.DiagnosticStatus_STALE)
)

// Diagnostics is what the daemon reports on diagnostics, as plain values.
type Diagnostics struct {
	// HardwareID names the robot (DiagnosticStatus.hardware_id).
	HardwareID string
	Loop       LoopTiming
	Safety     SafetyStatus
	Models     []ModelID
	// Inputs are Inputs.Stats; Ages Inputs.Ages at the same moment (nil: not reported).
	Inputs []InputStats
	Ages   *Ages
}

// LoopTiming is the control loop's timing over the reporting window.
type LoopTiming struct {
	RateHz           float64 // configured rate
	Cycles, Overruns uint64  // since start
	// Period is the time between cycle starts, Work the time a cycle takes.
	PeriodP50, PeriodP99, WorkP50, WorkP99, WorkMax time.Duration
	Level                                           Level
	Message                                         string
}

// SafetyStatus is the safety filter's state.
type SafetyStatus struct {
	State  string // e.g. "ok", "estop", "stale_inputs"
	Reason string
	Level  Level
}

// ModelID identifies a loaded model.
type ModelID struct {
	Role    string // "reward", "policy"
	Name    string
	SHA256  string
	Version string
}

// Diagnostic status names, "node: part" as ROS's diagnostic aggregators expect.
const (
	StatusLoop   = "robodistilld: control loop"
	StatusSafety = "robodistilld: safety"
	StatusModels = "robodistilld: models"
	StatusInputs = "robodistilld: inputs"
)

// DiagnosticArray turns d into a DiagnosticArray with four statuses: control loop,
// safety, models and inputs. The inputs' level is WARN while an input has never been
// received or has dropped malformed messages, OK otherwise.
func DiagnosticArray(h std_msgs.Header, d *Diagnostics) *diagnostic_msgs.DiagnosticArray {
	ms := func(v time.Duration) string { return strconv.FormatFloat(v.Seconds()*1e3, 'f', 3, 64) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	kv := func(k, v string) diagnostic_msgs.KeyValue { return diagnostic_msgs.KeyValue{Key: k, Value: v} }
	l := d.Loop
	loopMsg := l.Message
	if loopMsg == "" {
		loopMsg = fmt.Sprintf("%d cycles at %g Hz, %d overruns", l.Cycles, l.RateHz, l.Overruns)
	}
	loop := diagnostic_msgs.DiagnosticStatus{
		Level: int8(l.Level), Name: StatusLoop, Message: loopMsg, HardwareId: d.HardwareID,
		Values: []diagnostic_msgs.KeyValue{
			kv("rate_hz", strconv.FormatFloat(l.RateHz, 'g', -1, 64)), kv("cycles", u(l.Cycles)), kv("overruns", u(l.Overruns)),
			kv("period_p50_ms", ms(l.PeriodP50)), kv("period_p99_ms", ms(l.PeriodP99)),
			kv("work_p50_ms", ms(l.WorkP50)), kv("work_p99_ms", ms(l.WorkP99)), kv("work_max_ms", ms(l.WorkMax)),
		},
	}
	s := d.Safety
	safetyMsg := s.State
	if s.Reason != "" {
		safetyMsg += ": " + s.Reason
	}
	safety := diagnostic_msgs.DiagnosticStatus{
		Level: int8(s.Level), Name: StatusSafety, Message: safetyMsg, HardwareId: d.HardwareID,
		Values: []diagnostic_msgs.KeyValue{kv("state", s.State), kv("reason", s.Reason)},
	}
	models := diagnostic_msgs.DiagnosticStatus{Level: int8(LevelOK), Name: StatusModels, HardwareId: d.HardwareID,
		Message: fmt.Sprintf("%d models loaded", len(d.Models))}
	for _, m := range d.Models {
		models.Values = append(models.Values, kv(m.Role+".name", m.Name), kv(m.Role+".sha256", m.SHA256), kv(m.Role+".version", m.Version))
	}
	inputs := diagnostic_msgs.DiagnosticStatus{Level: int8(LevelOK), Name: StatusInputs, HardwareId: d.HardwareID, Message: "all inputs received"}
	var never, malformed []string
	for _, in := range d.Inputs {
		inputs.Values = append(inputs.Values, kv(in.Topic+".received", u(in.Received)), kv(in.Topic+".malformed", u(in.Malformed)))
		if in.LastError != "" {
			inputs.Values = append(inputs.Values, kv(in.Topic+".last_error", in.LastError))
		}
		if in.Received == 0 {
			never = append(never, in.Topic)
		}
		if in.Malformed > 0 {
			malformed = append(malformed, in.Topic)
		}
	}
	if a := d.Ages; a != nil {
		age := func(k string, v time.Duration) {
			if v == Never {
				inputs.Values = append(inputs.Values, kv(k+"_age_ms", "never"))
				return
			}
			inputs.Values = append(inputs.Values, kv(k+"_age_ms", ms(v)))
		}
		age("image", a.Image)
		age("ee_pose", a.EEPose)
		age("joint_states", a.Joints)
		age("goal", a.Goal)
		age("estop", a.Estop)
		for i, v := range a.Objects {
			if v != Never {
				age("object"+strconv.Itoa(i), v)
			}
		}
	}
	switch {
	case len(never) > 0:
		inputs.Level, inputs.Message = int8(LevelWarn), fmt.Sprintf("nothing received on %v", never)
	case len(malformed) > 0:
		inputs.Level, inputs.Message = int8(LevelWarn), fmt.Sprintf("malformed messages dropped on %v", malformed)
	}
	return &diagnostic_msgs.DiagnosticArray{Header: h, Status: []diagnostic_msgs.DiagnosticStatus{loop, safety, models, inputs}}
}
