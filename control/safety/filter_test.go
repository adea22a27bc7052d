package safety_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"robodistill/control/safety"
)

// Dyadic numbers throughout, so that expected commands are exact.
const scale = 1.0 / 64 // m per unit action per cycle

func testConfig() safety.Config {
	c := safety.Defaults()
	c.WorkspaceMin = [3]float64{-0.5, 0.25, 0}
	c.WorkspaceMax = [3]float64{0.5, 1, 0.75}
	c.Scale = scale
	return c
}

var (
	t0     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	center = [3]float64{0, 0.5, 0.375}
	nan    = math.NaN()
)

func TestConfigErrors(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	if err := safety.Defaults().Validate(); err == nil || !strings.Contains(err.Error(), "safety.action_scale_m:") ||
		!strings.Contains(err.Error(), "safety.workspace_max[0]:") {
		t.Errorf("Defaults() must fail on the unset workspace and scale, got %v", err)
	}
	for _, tc := range []struct {
		mod  func(*safety.Config)
		want string
	}{
		{func(c *safety.Config) { c.ActionLow[1] = -1.5 }, "safety.action_low[1]: must be in [-1, 1], got -1.5"},
		{func(c *safety.Config) { c.ActionLow[0] = nan }, "safety.action_low[0]: must be in [-1, 1], got NaN"},
		{func(c *safety.Config) { c.ActionHigh[3] = 2 }, "safety.action_high[3]: must be in [-1, 1], got 2"},
		{func(c *safety.Config) { c.ActionHigh[2] = -1 }, "safety.action_high[2]: must be > action_low[2] (-1), got -1"},
		{func(c *safety.Config) { c.ActionLow[0] = 0.25 }, "safety.action_low[0]: velocity range [0.25, 1] must contain 0"},
		{func(c *safety.Config) { c.ActionHigh[1] = -0.5 }, "safety.action_low[1]: velocity range [-1, -0.5] must contain 0"},
		{func(c *safety.Config) { c.MaxDelta[2] = 0 }, "safety.max_delta[2]: must be > 0 and finite, got 0"},
		{func(c *safety.Config) { c.MaxDelta[3] = math.Inf(1) }, "safety.max_delta[3]: must be > 0 and finite, got +Inf"},
		{func(c *safety.Config) { c.WorkspaceMin[1] = math.Inf(-1) }, "safety.workspace_min[1]: must be finite, got -Inf"},
		{func(c *safety.Config) { c.WorkspaceMax[2] = nan }, "safety.workspace_max[2]: must be finite, got NaN"},
		{func(c *safety.Config) { c.WorkspaceMax[0] = -0.5 }, "safety.workspace_max[0]: must be > workspace_min[0] (-0.5), got -0.5"},
		{func(c *safety.Config) { c.Scale = 0 }, "safety.action_scale_m: must be > 0 and ≤ 1 m, got 0"},
		{func(c *safety.Config) { c.Scale = 1.5 }, "safety.action_scale_m: must be > 0 and ≤ 1 m, got 1.5"},
		{func(c *safety.Config) { c.CameraMaxAge = 0 }, "safety.camera_max_age: must be > 0, got 0s"},
		{func(c *safety.Config) { c.StateMaxAge = -time.Millisecond }, "safety.state_max_age: must be > 0, got -1ms"},
		{func(c *safety.Config) { c.StopAfter = 0 }, "safety.stop_after: must be > 0, got 0s"},
		{func(c *safety.Config) { c.MaxDelta[0], c.StopAfter = -1, 0 },
			"safety.max_delta[0]: must be > 0 and finite, got -1\nsafety.stop_after: must be > 0, got 0s"},
	} {
		c := testConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
		if f, err2 := safety.New(c); f != nil || err2 == nil || err2.Error() != tc.want {
			t.Errorf("New: got %v, %v; want the validation error", f, err2)
		}
	}
}

func TestNames(t *testing.T) {
	states := map[safety.State]string{safety.OK: "ok", safety.Clipped: "clipped", safety.Hold: "hold",
		safety.Stop: "stop", safety.EStop: "estop", 9: "State(9)"}
	for s, want := range states {
		if s.String() != want {
			t.Errorf("State %d: %q, want %q", s, s.String(), want)
		}
	}
	reasons := []string{"none", "clipped_range", "workspace", "rate_limit", "non_finite",
		"stale_camera", "stale_state", "estop", "stopped", "Reason(9)"}
	for r, want := range reasons {
		if got := safety.Reason(r).String(); got != want {
			t.Errorf("Reason %d: %q, want %q", r, got, want)
		}
	}
}

// step is one call in a scenario: Filter (op ""), Stop ("stop") or Reset ("reset").
type step struct {
	at      time.Duration // Now = t0 + at
	action  [4]float64
	mod     func(*safety.Input)
	op      string
	wantErr error // Reset's

	cmd     [4]float64
	state   safety.State
	reason  safety.Reason
	changed bool
}

func eeAt(ee [3]float64) func(*safety.Input) { return func(in *safety.Input) { in.EEPos = ee } }
func camAge(d time.Duration) func(*safety.Input) {
	return func(in *safety.Input) { in.CameraStamp = in.Now.Add(-d) }
}
func stateAge(d time.Duration) func(*safety.Input) {
	return func(in *safety.Input) { in.StateStamp = in.Now.Add(-d) }
}
func estop(in *safety.Input) { in.Estop = true }

func TestScenarios(t *testing.T) {
	ms := time.Millisecond
	a := [4]float64{0.25, -0.375, 0.125, 0.5}
	hold := [4]float64{0, 0, 0, 0.5}                      // zero velocity, a's gripper kept
	nearWallX := [3]float64{0.5 - 0.25*scale, 0.5, 0.375} // room for +0.25 along x
	for _, tc := range []struct {
		name  string
		cfg   func(*safety.Config)
		steps []step
	}{
		{name: "ok passes the action unchanged", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true}, // a new filter starts in Hold
			{at: 20 * ms, action: a, cmd: a, state: safety.OK},
		}},
		{name: "range clip", cfg: func(c *safety.Config) { c.ActionHigh[0], c.ActionLow[3] = 0.125, 0.75 }, steps: []step{
			// the gripper starts at 0 clamped into [0.75, 1]
			{action: a, cmd: [4]float64{0.125, -0.375, 0.125, 0.75}, state: safety.Clipped, reason: safety.ReasonRange, changed: true},
			{at: 20 * ms, action: [4]float64{-2, 0, 0, 1}, cmd: [4]float64{-0.375, 0, 0, 1}, state: safety.Clipped, reason: safety.ReasonRateLimit},
		}},
		{name: "workspace upper and lower", steps: []step{
			{action: [4]float64{0.5, 0, 0, 0}, mod: eeAt(nearWallX), cmd: [4]float64{0.25, 0, 0, 0}, state: safety.Clipped, reason: safety.ReasonWorkspace, changed: true},
			{at: 20 * ms, action: [4]float64{0, 0, -0.5, 0}, mod: eeAt([3]float64{0, 0.5, 0.125 * scale}),
				cmd: [4]float64{0, 0, -0.125, 0}, state: safety.Clipped, reason: safety.ReasonWorkspace},
			{at: 40 * ms, action: [4]float64{0, 0.5, 0, 0}, mod: eeAt([3]float64{0, 1, 0.375}),
				cmd: [4]float64{0, 0, 0, 0}, state: safety.Clipped, reason: safety.ReasonWorkspace},
			{at: 60 * ms, action: [4]float64{0, -0.5, 0, 0}, mod: eeAt([3]float64{0, 1, 0.375}),
				cmd: [4]float64{0, -0.5, 0, 0}, state: safety.OK, changed: true},
		}},
		{name: "outside the workspace the hand may stop or come back, never go further", steps: []step{
			{action: [4]float64{0.5, 0, 0, 0}, mod: eeAt([3]float64{0.5 + scale, 0.5, 0.375}), cmd: [4]float64{}, state: safety.Clipped, reason: safety.ReasonWorkspace, changed: true},
			{at: 20 * ms, action: [4]float64{-0.5, 0, 0, 0}, mod: eeAt([3]float64{0.5 + scale, 0.5, 0.375}), cmd: [4]float64{-0.5, 0, 0, 0}, state: safety.OK, changed: true},
		}},
		{name: "rate limit relative to the last command", steps: []step{
			{action: [4]float64{0.5, 0, 0, -1}, cmd: [4]float64{0.5, 0, 0, -1}, state: safety.OK, changed: true},
			{at: 20 * ms, action: [4]float64{-0.5, 1, 0, 1}, cmd: [4]float64{0, 0.5, 0, 1}, state: safety.Clipped, reason: safety.ReasonRateLimit, changed: true},
			{at: 40 * ms, action: [4]float64{-0.5, 1, 0, 1}, cmd: [4]float64{-0.5, 1, 0, 1}, state: safety.OK, changed: true},
		}},
		{name: "workspace beats the rate limit: braking harder than max_delta", steps: []step{
			{action: [4]float64{1, 0, 0, 0}, cmd: [4]float64{0.5, 0, 0, 0}, state: safety.Clipped, reason: safety.ReasonRateLimit, changed: true},
			{at: 20 * ms, action: [4]float64{1, 0, 0, 0}, cmd: [4]float64{1, 0, 0, 0}, state: safety.OK, changed: true},
			{at: 40 * ms, action: [4]float64{1, 0, 0, 0}, mod: eeAt(nearWallX), cmd: [4]float64{0.25, 0, 0, 0}, state: safety.Clipped, reason: safety.ReasonWorkspace, changed: true},
		}},
		{name: "non-finite action holds, keeps the gripper, then ramps from zero", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{at: 20 * ms, action: [4]float64{nan, 0, 0, 0}, cmd: hold, state: safety.Hold, reason: safety.ReasonNonFinite, changed: true},
			{at: 40 * ms, action: [4]float64{0, 0, 0, math.Inf(-1)}, cmd: hold, state: safety.Hold, reason: safety.ReasonNonFinite},
			{at: 60 * ms, action: [4]float64{1, -1, 1, 0.5}, cmd: [4]float64{0.5, -0.5, 0.5, 0.5}, state: safety.Clipped, reason: safety.ReasonRateLimit, changed: true},
		}},
		{name: "non-finite ee position holds", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{at: 20 * ms, action: a, mod: eeAt([3]float64{0, math.Inf(1), 0}), cmd: hold, state: safety.Hold, reason: safety.ReasonNonFinite, changed: true},
			{at: 40 * ms, action: a, mod: eeAt([3]float64{0, 0.5, nan}), cmd: hold, state: safety.Hold, reason: safety.ReasonNonFinite},
		}},
		{name: "stale camera and state", steps: []step{
			{action: a, mod: camAge(150 * ms), cmd: a, state: safety.OK, changed: true}, // exactly camera_max_age is fresh
			{at: 20 * ms, action: a, mod: camAge(151 * ms), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera, changed: true},
			{at: 40 * ms, action: a, mod: camAge(-151 * ms), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: 60 * ms, action: a, mod: func(in *safety.Input) { in.CameraStamp = time.Time{} }, cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: 80 * ms, action: a, mod: stateAge(101 * ms), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleState},
			{at: 100 * ms, action: a, mod: stateAge(100 * ms), cmd: a, state: safety.OK, changed: true},
		}},
		{name: "waiting for inputs before the first motion never latches stop", steps: []step{
			{action: a, mod: camAge(time.Second), state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: time.Minute, action: a, mod: func(in *safety.Input) { in.CameraStamp = time.Time{} }, state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: time.Minute + 20*ms, action: a, cmd: a, state: safety.OK, changed: true},
		}},
		{name: "after a reset, too", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{op: "stop", cmd: hold, state: safety.Stop, reason: safety.ReasonStopped, changed: true},
			{op: "reset", state: safety.Hold},
			{at: 20 * ms, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleState},
			{at: 5 * time.Second, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleState},
			{at: 5*time.Second + 20*ms, action: a, cmd: a, state: safety.OK, changed: true},
			{at: 5*time.Second + 40*ms, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleState, changed: true},
			{at: 6*time.Second + 40*ms, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Stop, reason: safety.ReasonStaleState, changed: true},
		}},
		{name: "a hold lasting stop_after latches stop until reset", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{at: 20 * ms, action: a, mod: camAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera, changed: true},
			{at: 520 * ms, action: a, mod: func(in *safety.Input) { in.Action[0] = nan }, cmd: hold, state: safety.Hold, reason: safety.ReasonNonFinite},
			{at: 1019 * ms, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleState},
			{at: 1020 * ms, action: a, mod: stateAge(time.Second), cmd: hold, state: safety.Stop, reason: safety.ReasonStaleState, changed: true},
			{at: 1040 * ms, action: a, cmd: hold, state: safety.Stop, reason: safety.ReasonStaleState}, // inputs fine again: latched
			{op: "reset", state: safety.Hold},
			{at: 1060 * ms, action: a, cmd: a, state: safety.OK, changed: true},
		}},
		{name: "recovering restarts the stop_after timer", steps: []step{
			{action: a, mod: camAge(time.Second), state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: 900 * ms, action: a, cmd: a, state: safety.OK, changed: true},
			{at: 920 * ms, action: a, mod: camAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera, changed: true},
			{at: 1500 * ms, action: a, mod: camAge(time.Second), cmd: hold, state: safety.Hold, reason: safety.ReasonStaleCamera},
			{at: 1920 * ms, action: a, mod: camAge(time.Second), cmd: hold, state: safety.Stop, reason: safety.ReasonStaleCamera, changed: true},
		}},
		{name: "estop in the same cycle, stop on release, reset to move", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{at: 20 * ms, action: a, mod: estop, cmd: hold, state: safety.EStop, reason: safety.ReasonEstop, changed: true},
			{at: 40 * ms, action: a, mod: estop, cmd: hold, state: safety.EStop, reason: safety.ReasonEstop},
			{op: "reset", wantErr: safety.ErrEstop, state: safety.EStop},
			{op: "stop", cmd: hold, state: safety.EStop, reason: safety.ReasonEstop},
			{at: 60 * ms, action: a, cmd: hold, state: safety.Stop, reason: safety.ReasonEstop, changed: true},
			{at: 80 * ms, action: a, cmd: hold, state: safety.Stop, reason: safety.ReasonEstop},
			{at: 100 * ms, action: a, mod: estop, cmd: hold, state: safety.EStop, reason: safety.ReasonEstop, changed: true},
			{at: 120 * ms, action: a, cmd: hold, state: safety.Stop, reason: safety.ReasonEstop, changed: true},
			{op: "reset", state: safety.Hold},
			{at: 140 * ms, action: a, cmd: a, state: safety.OK, changed: true},
		}},
		{name: "estop beats stale input and a latched stop", steps: []step{
			{action: a, mod: func(in *safety.Input) { camAge(time.Second)(in); estop(in) }, state: safety.EStop, reason: safety.ReasonEstop, changed: true},
			{at: 20 * ms, action: a, mod: camAge(time.Second), state: safety.Stop, reason: safety.ReasonEstop, changed: true},
			{op: "stop", state: safety.Stop, reason: safety.ReasonEstop},
			{at: 40 * ms, action: a, mod: estop, state: safety.EStop, reason: safety.ReasonEstop, changed: true},
		}},
		{name: "Stop latches, Reset releases", steps: []step{
			{action: a, cmd: a, state: safety.OK, changed: true},
			{op: "reset", state: safety.OK}, // a no-op outside Stop
			{op: "stop", cmd: hold, state: safety.Stop, reason: safety.ReasonStopped, changed: true},
			{at: 20 * ms, action: a, cmd: hold, state: safety.Stop, reason: safety.ReasonStopped},
			{op: "reset", state: safety.Hold},
			{op: "reset", state: safety.Hold},
			{at: 40 * ms, action: [4]float64{1, 1, 1, 1}, cmd: [4]float64{0.5, 0.5, 0.5, 1}, state: safety.Clipped, reason: safety.ReasonRateLimit, changed: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			f, err := safety.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			prev := safety.Hold
			for i, s := range tc.steps {
				var out safety.Output
				switch s.op {
				case "reset":
					if err := f.Reset(); !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: Reset() = %v, want %v", i, err, s.wantErr)
					}
					if f.State() != s.state {
						t.Fatalf("step %d: after Reset: %v, want %v", i, f.State(), s.state)
					}
					prev = f.State()
					continue
				case "stop":
					out = f.Stop()
				default:
					now := t0.Add(s.at)
					in := safety.Input{Now: now, Action: s.action, EEPos: center, CameraStamp: now, StateStamp: now}
					if s.mod != nil {
						s.mod(&in)
					}
					out = f.Filter(in)
				}
				want := safety.Output{Command: s.cmd, State: s.state, Reason: s.reason, Prev: prev, Changed: s.changed}
				if out != want {
					t.Fatalf("step %d:\n got %+v\nwant %+v", i, out, want)
				}
				if f.State() != out.State {
					t.Fatalf("step %d: State() = %v, output %v", i, f.State(), out.State)
				}
				prev = out.State
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	f, err := safety.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	in := safety.Input{Action: [4]float64{0.25, 1, -1, 0.5}, EEPos: center}
	k := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k++
		now = now.Add(20 * time.Millisecond)
		in.Now, in.CameraStamp, in.StateStamp, in.Estop = now, now, now, k%50 == 0
		if k%7 == 0 {
			in.CameraStamp = time.Time{}
		}
		f.Filter(in)
		if k%100 == 0 {
			f.Stop()
			_ = f.Reset()
		}
	})
	if allocs != 0 {
		t.Errorf("Filter allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkFilter(b *testing.B) {
	f, err := safety.New(testConfig())
	if err != nil {
		b.Fatal(err)
	}
	in := safety.Input{Now: t0, CameraStamp: t0, StateStamp: t0, EEPos: center}
	for i := 0; b.Loop(); i++ {
		in.Action[0] = float64(i%3) - 1 // alternates clipped and ok cycles
		f.Filter(in)
	}
}
