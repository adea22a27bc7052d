package safety

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Dims is the length of an action: end-effector velocity along x, y, z in action units
// (rosiface.Motion turns one unit into Scale×rate m/s) and the gripper effort.
const Dims = 4

// Config holds the filter's limits. The yaml keys are the names Validate reports, under
// the daemon's "safety" section.
type Config struct {
	// ActionLow and ActionHigh bound every action dimension; all within [-1, 1], and the
	// velocity range must contain 0 so that Hold's zero velocity is a valid command.
	ActionLow  [Dims]float64 `yaml:"action_low"`
	ActionHigh [Dims]float64 `yaml:"action_high"`
	// WorkspaceMin and WorkspaceMax bound the end-effector target, EEPos + action·Scale,
	// in metres in the frame of Input.EEPos.
	WorkspaceMin [3]float64 `yaml:"workspace_min"`
	WorkspaceMax [3]float64 `yaml:"workspace_max"`
	// Scale is how far one unit of action moves the hand target in one cycle, in metres
	// (the model manifest's control.action_scale_m, e.g. 0.016 at 50 Hz).
	Scale float64 `yaml:"action_scale_m"`
	// MaxDelta is the largest change of each dimension from one command to the next.
	MaxDelta [Dims]float64 `yaml:"max_delta"`
	// CameraMaxAge and StateMaxAge are how old the latest camera frame and robot state
	// may be before the filter holds.
	CameraMaxAge time.Duration `yaml:"camera_max_age"`
	StateMaxAge  time.Duration `yaml:"state_max_age"`
	// StopAfter is how long a Hold may last before the filter latches Stop.
	StopAfter time.Duration `yaml:"stop_after"`
}

// Defaults returns limits for a MetaWorld policy at 50 Hz. The workspace and Scale
// depend on the robot and the model, so they are left zero and Validate fails until
// they are set.
func Defaults() Config {
	return Config{
		ActionLow:    [Dims]float64{-1, -1, -1, -1},
		ActionHigh:   [Dims]float64{1, 1, 1, 1},
		MaxDelta:     [Dims]float64{0.5, 0.5, 0.5, 2},
		CameraMaxAge: 150 * time.Millisecond,
		StateMaxAge:  100 * time.Millisecond,
		StopAfter:    time.Second,
	}
}

// Validate checks c; every error names its key, e.g. "safety.max_delta[2]: must be > 0, got 0".
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("safety.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	at := func(key string, i int) string { return fmt.Sprintf("%s[%d]", key, i) }
	for i := range Dims {
		lo, hi := c.ActionLow[i], c.ActionHigh[i]
		switch {
		case !(lo >= -1 && lo <= 1):
			bad(at("action_low", i), "must be in [-1, 1], got %v", lo)
		case !(hi >= -1 && hi <= 1):
			bad(at("action_high", i), "must be in [-1, 1], got %v", hi)
		case hi <= lo:
			bad(at("action_high", i), "must be > action_low[%d] (%v), got %v", i, lo, hi)
		case i < 3 && (lo > 0 || hi < 0):
			// Hold commands zero velocity; it must be inside the range.
			bad(at("action_low", i), "velocity range [%v, %v] must contain 0", lo, hi)
		}
		if d := c.MaxDelta[i]; !(d > 0) || math.IsInf(d, 0) {
			bad(at("max_delta", i), "must be > 0 and finite, got %v", d)
		}
	}
	for i := range 3 {
		lo, hi := c.WorkspaceMin[i], c.WorkspaceMax[i]
		if !finite(lo) {
			bad(at("workspace_min", i), "must be finite, got %v", lo)
		}
		switch {
		case !finite(hi):
			bad(at("workspace_max", i), "must be finite, got %v", hi)
		case hi <= lo:
			bad(at("workspace_max", i), "must be > workspace_min[%d] (%v), got %v", i, lo, hi)
		}
	}
	if !(c.Scale > 0 && c.Scale <= 1) {
		bad("action_scale_m", "must be > 0 and ≤ 1 m, got %v", c.Scale)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"camera_max_age", c.CameraMaxAge}, {"state_max_age", c.StateMaxAge}, {"stop_after", c.StopAfter}} {
		if d.v <= 0 {
			bad(d.key, "must be > 0, got %v", d.v)
		}
	}
	return errors.Join(errs...)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
