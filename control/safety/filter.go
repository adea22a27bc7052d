package safety

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// State is the filter's state after a cycle.
type State uint8

// States, from least to most restrictive.
const (
	// OK: the policy's action is commanded unchanged.
	OK State = iota
	// Clipped: the action was changed by the range, workspace or rate limit.
	Clipped
	// Hold: zero velocity and the last commanded gripper value, because an input is
	// stale or not finite. The filter leaves Hold by itself when the inputs recover.
	Hold
	// Stop: zero velocity and the last gripper value, latched until Reset.
	Stop
	// EStop: zero velocity and the last gripper value while the estop input is true. On
	// release the filter goes to Stop, so the robot moves again only after Reset.
	EStop
)

var stateNames = [...]string{OK: "ok", Clipped: "clipped", Hold: "hold", Stop: "stop", EStop: "estop"}

// String returns the state's name as logged and published: ok, clipped, hold, stop, estop.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Reason says which rule decided a cycle's command.
type Reason uint8

// Reasons. In Clipped several rules may change one action; the reason is the most
// telling one: workspace, else rate_limit, else clipped_range. In Stop it is the cause of
// the latch.
const (
	ReasonNone        Reason = iota // OK, or a fresh filter / a Reset that has not run a cycle yet
	ReasonRange                     // clipped_range: outside ActionLow..ActionHigh
	ReasonWorkspace                 // workspace: the target would leave the workspace
	ReasonRateLimit                 // rate_limit: changed by more than MaxDelta since the last command
	ReasonNonFinite                 // non_finite: NaN or ±Inf in the action or the ee position
	ReasonStaleCamera               // stale_camera: the camera frame is older than CameraMaxAge
	ReasonStaleState                // stale_state: the robot state is older than StateMaxAge
	ReasonEstop                     // estop: the estop input is (or was, for Stop) engaged
	ReasonStopped                   // stopped: Filter.Stop was called
)

var reasonNames = [...]string{
	ReasonNone: "none", ReasonRange: "clipped_range", ReasonWorkspace: "workspace",
	ReasonRateLimit: "rate_limit", ReasonNonFinite: "non_finite", ReasonStaleCamera: "stale_camera",
	ReasonStaleState: "stale_state", ReasonEstop: "estop", ReasonStopped: "stopped",
}

// String returns the reason's name as logged and published, e.g. "rate_limit".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Input is what the filter sees in one cycle. All times are on the caller's clock (the
// loop's wake time and the receive times of the latest messages, or header stamps on a
// clock synchronised with it).
type Input struct {
	Now         time.Time
	Action      [Dims]float64 // the policy's action
	EEPos       [3]float64    // end-effector position, metres, workspace frame
	CameraStamp time.Time     // the latest camera frame; zero = none yet (stale)
	StateStamp  time.Time     // the latest robot state; zero = none yet (stale)
	Estop       bool
}

// Output is the command to send and what the filter did.
type Output struct {
	Command [Dims]float64
	State   State
	Reason  Reason
	// Prev is the state of the previous output (Hold for a fresh filter); Changed is
	// State != Prev, so that the caller can log and publish every transition.
	Prev    State
	Changed bool
}

// ErrEstop is returned by Reset while the last input had the estop engaged.
var ErrEstop = errors.New("safety: estop engaged")

// Filter turns policy actions into safe commands. It is deterministic: no clock, no
// goroutines, no allocation. It is not safe for concurrent use; the control loop owns it.
type Filter struct {
	cfg       Config
	state     State
	reason    Reason
	last      [Dims]float64 // the last command; the rate limit is relative to it
	moved     bool          // OK or Clipped since New or Reset: only then can a Hold turn into Stop
	holding   bool          // the last cycle held for a stale or non-finite input
	holdSince time.Time
}

// New returns a filter in Hold with zero velocity and the gripper at 0 (clamped into
// its range), or the config's validation error.
func New(cfg Config) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Filter{cfg: cfg, state: Hold}
	f.last[3] = min(max(0, cfg.ActionLow[3]), cfg.ActionHigh[3])
	return f, nil
}

// State returns the state of the last output.
func (f *Filter) State() State { return f.state }

// Filter runs one cycle. Rules by priority: estop; a latched Stop; a stale camera, a
// stale state or a non-finite value (Hold, then Stop once the Hold has lasted
// StopAfter); then range, workspace and rate limits.
//
// A Hold turns into Stop only if the filter has let the arm move since New or Reset:
// waiting for the first inputs at start-up is not an outage, and latching Stop there
// would make every slow start need a Reset.
func (f *Filter) Filter(in Input) Output {
	prev := f.state
	switch {
	case in.Estop:
		f.state, f.reason = EStop, ReasonEstop
	case f.state == EStop: // released: stay stopped until Reset
		f.state, f.reason = Stop, ReasonEstop
	case f.state == Stop:
	default:
		if r := f.check(in); r != ReasonNone {
			if !f.holding {
				f.holding, f.holdSince = true, in.Now
			}
			f.state, f.reason = Hold, r
			if f.moved && in.Now.Sub(f.holdSince) >= f.cfg.StopAfter {
				f.state = Stop
			}
		} else {
			f.holding, f.moved = false, true
			f.state, f.reason = f.limit(in.Action, in.EEPos)
		}
	}
	if f.state >= Hold {
		f.last[0], f.last[1], f.last[2] = 0, 0, 0
	}
	return f.output(prev)
}

// Stop latches Stop (e.g. on SIGTERM) and returns the command to send now. In EStop it
// changes nothing: the release leads to Stop anyway.
func (f *Filter) Stop() Output {
	prev := f.state
	if f.state < Stop {
		f.state, f.reason = Stop, ReasonStopped
		f.last[0], f.last[1], f.last[2] = 0, 0, 0
	}
	return f.output(prev)
}

// Reset clears a latched Stop: the filter goes to Hold, as if new, and the next cycle
// decides again, with velocities ramping up from zero. It fails with ErrEstop while the
// last input had the estop engaged, and does nothing in other states.
func (f *Filter) Reset() error {
	switch f.state {
	case EStop:
		return ErrEstop
	case Stop:
		f.state, f.reason, f.holding, f.moved = Hold, ReasonNone, false, false
	}
	return nil
}

func (f *Filter) output(prev State) Output {
	return Output{Command: f.last, State: f.state, Reason: f.reason, Prev: prev, Changed: f.state != prev}
}

// check returns why the inputs cannot be used, or ReasonNone.
func (f *Filter) check(in Input) Reason {
	if stale(in.Now, in.CameraStamp, f.cfg.CameraMaxAge) {
		return ReasonStaleCamera
	}
	if stale(in.Now, in.StateStamp, f.cfg.StateMaxAge) {
		return ReasonStaleState
	}
	for _, v := range in.Action {
		if !finite(v) {
			return ReasonNonFinite
		}
	}
	for _, v := range in.EEPos {
		if !finite(v) {
			return ReasonNonFinite
		}
	}
	return ReasonNone
}

// stale reports a missing stamp, or one more than maxAge in the past or in the future (a
// stamp from a broken clock must not keep the filter going).
func stale(now, stamp time.Time, maxAge time.Duration) bool {
	age := now.Sub(stamp)
	return stamp.IsZero() || age > maxAge || age < -maxAge
}

// limit applies the range, workspace and rate limits to a finite action, stores the
// command in f.last and returns the resulting state.
//
// Zero velocity is always inside the workspace limit, so a hand outside the workspace may
// stop or move back but never further out. When the rate limit and the workspace
// disagree (the hand has come close to a wall faster than MaxDelta allows braking), the
// workspace wins: the command then lies between 0 and the last command, braking harder
// than MaxDelta.
func (f *Filter) limit(a [Dims]float64, ee [3]float64) (State, Reason) {
	var ranged, walled, rated bool
	c := &f.cfg
	for i, v := range a {
		if u := clamp(v, c.ActionLow[i], c.ActionHigh[i]); u != v {
			v, ranged = u, true
		}
		lo, hi := math.Inf(-1), math.Inf(1) // the gripper has no workspace limit
		if i < 3 {
			lo = min((c.WorkspaceMin[i]-ee[i])/c.Scale, 0)
			hi = max((c.WorkspaceMax[i]-ee[i])/c.Scale, 0)
		}
		if u := clamp(v, lo, hi); u != v {
			v, walled = u, true
		}
		if u := clamp(v, f.last[i]-c.MaxDelta[i], f.last[i]+c.MaxDelta[i]); u != v {
			v, rated = u, true
			if u := clamp(v, lo, hi); u != v {
				v, walled = u, true
			}
		}
		f.last[i] = v
	}
	switch {
	case walled:
		return Clipped, ReasonWorkspace
	case rated:
		return Clipped, ReasonRateLimit
	case ranged:
		return Clipped, ReasonRange
	}
	return OK, ReasonNone
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
