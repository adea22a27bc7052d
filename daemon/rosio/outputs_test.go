package rosio

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/control/rosnode"
)

// recorder is a fake publisher that keeps every message written to it, in one log shared
// by all topics, as goroslib keeps a message it was given.
type recorder struct {
	topic string
	log   *[]written
	err   error
}

type written struct {
	topic string
	msg   any
}

func (r *recorder) Write(msg any) error {
	if r.err != nil {
		return r.err
	}
	*r.log = append(*r.log, written{r.topic, msg})
	return nil
}

func fakeOutputs(cfg Config) (*Outputs, *[]written) {
	log := &[]written{}
	t := cfg.ResolveTopics()
	rec := func(topic string) *recorder { return &recorder{topic: topic, log: log} }
	return &Outputs{topics: t, frame: cfg.Frame, cmdVel: rec(t.CmdVel), gripper: rec(t.Gripper), reward: rec(t.Reward),
		diag: rec(t.Diagnostics), safety: rec(t.SafetyState)}, log
}

func TestCommand(t *testing.T) {
	o, log := fakeOutputs(DefaultConfig())
	const n = 3 * slabSize // crosses slab boundaries
	for i := 0; i < n; i++ {
		v := float64(i)
		if err := o.Command(t0.Add(time.Duration(i)*20*time.Millisecond), [3]float64{v, -v, 2 * v}, v/n); err != nil {
			t.Fatal(err)
		}
	}
	if len(*log) != 2*n {
		t.Fatalf("%d messages, want %d", len(*log), 2*n)
	}
	// Every message published is still what it was when published: structs are not
	// reused (goroslib encodes them later).
	seen := map[any]bool{}
	for i := 0; i < n; i++ {
		g, tw := (*log)[2*i], (*log)[2*i+1]
		v := float64(i)
		if g.topic != "/gripper/command" || g.msg.(*std_msgs.Float64).Data != v/n {
			t.Fatalf("cycle %d: gripper %+v first", i, g)
		}
		m := tw.msg.(*geometry_msgs.TwistStamped)
		if tw.topic != "/arm/cmd_vel" || m.Twist.Linear != (geometry_msgs.Vector3{X: v, Y: -v, Z: 2 * v}) ||
			m.Header.Seq != uint32(i+1) || m.Header.FrameId != "world" || !m.Header.Stamp.Equal(t0.Add(time.Duration(i)*20*time.Millisecond)) {
			t.Fatalf("cycle %d: twist %+v", i, m)
		}
		if seen[g.msg] || seen[tw.msg] {
			t.Fatalf("cycle %d: a message struct was reused", i)
		}
		seen[g.msg], seen[tw.msg] = true, true
	}

	*log = nil
	err := o.Command(t0, [3]float64{0, math.NaN(), 0}, 0)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Field != "velocity y" || len(*log) != 0 {
		t.Fatalf("NaN command: %v, %d published", err, len(*log))
	}
	if err := o.Command(t0, [3]float64{}, math.Inf(1)); err == nil || !strings.Contains(err.Error(), "gripper is +Inf") {
		t.Fatalf("infinite gripper: %v", err)
	}

	o.cmdVel.(*recorder).err = rosnode.ErrNotConnected
	o.gripper.(*recorder).err = rosnode.ErrNotConnected
	if err := o.Command(t0, [3]float64{}, 0); !errors.Is(err, rosnode.ErrNotConnected) {
		t.Fatalf("while disconnected: %v", err)
	}
}

func TestCommandAndRewardAllocs(t *testing.T) {
	o, log := fakeOutputs(DefaultConfig())
	*log = make([]written, 0, 1<<20)
	// AllocsPerRun truncates to whole allocations; count exactly instead.
	const runs = 100 * slabSize
	per := allocsPer(runs, func() {
		if err := o.Command(t0, [3]float64{0.1, 0.2, 0.3}, 1); err != nil {
			t.Fatal(err)
		}
		if err := o.Reward(0.5); err != nil {
			t.Fatal(err)
		}
	})
	// Three slabs (twists, gripper floats, rewards) per slabSize cycles.
	if want := 3.0 / slabSize; per > want*1.05 {
		t.Fatalf("%.4f allocations per Command+Reward, want at most %.4f", per, want)
	}
	t.Logf("Command+Reward: %.4f allocations per cycle (fake publisher)", per)
}

func TestSafetyState(t *testing.T) {
	o, log := fakeOutputs(DefaultConfig())
	for _, s := range []string{"ok", "ok", "estop", "estop", "ok"} {
		if _, err := o.SafetyState(s); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, w := range *log {
		got = append(got, w.msg.(*std_msgs.String).Data)
	}
	if strings.Join(got, ",") != "ok,estop,ok" {
		t.Fatalf("published %v", got)
	}
}

func TestDiagnosticArray(t *testing.T) {
	ages := Ages{Image: 25 * time.Millisecond, EEPose: 20 * time.Millisecond, Joints: 20 * time.Millisecond, Goal: time.Second,
		Estop: Never, Objects: [MaxObjects]time.Duration{20 * time.Millisecond, Never}}
	d := &Diagnostics{
		HardwareID: "sawyer1",
		Loop: LoopTiming{RateHz: 50, Cycles: 500, Overruns: 2, PeriodP50: 20 * time.Millisecond, PeriodP99: 21500 * time.Microsecond,
			WorkP50: 3 * time.Millisecond, WorkP99: 6 * time.Millisecond, WorkMax: 9 * time.Millisecond},
		Safety: SafetyStatus{State: "estop", Reason: "estop engaged", Level: LevelError},
		Models: []ModelID{{Role: "reward", Name: "reach-reward", SHA256: "ab12", Version: "3"}, {Role: "policy", Name: "reach-sac", SHA256: "cd34", Version: "1"}},
		Inputs: []InputStats{{Topic: "/camera/image_raw", Received: 10}, {Topic: "/estop", Received: 0}, {Topic: "/arm/ee_pose", Received: 9, Malformed: 1, LastError: "position.x is NaN"}},
		Ages:   &ages,
	}
	a := DiagnosticArray(std_msgs.Header{Seq: 4, Stamp: t0}, d)
	if a.Header.Seq != 4 || len(a.Status) != 4 {
		t.Fatalf("array %+v", a)
	}
	get := func(s diagnostic_msgs.DiagnosticStatus, k string) string {
		for _, kv := range s.Values {
			if kv.Key == k {
				return kv.Value
			}
		}
		t.Fatalf("%s: no key %q in %+v", s.Name, k, s.Values)
		return ""
	}
	loop, safety, models, inputs := a.Status[0], a.Status[1], a.Status[2], a.Status[3]
	if loop.Name != StatusLoop || loop.Level != 0 || loop.HardwareId != "sawyer1" || loop.Message != "500 cycles at 50 Hz, 2 overruns" ||
		get(loop, "period_p99_ms") != "21.500" || get(loop, "work_max_ms") != "9.000" || get(loop, "overruns") != "2" {
		t.Errorf("loop %+v", loop)
	}
	if safety.Name != StatusSafety || safety.Level != diagnostic_msgs.DiagnosticStatus_ERROR || safety.Message != "estop: estop engaged" || get(safety, "state") != "estop" {
		t.Errorf("safety %+v", safety)
	}
	if models.Name != StatusModels || get(models, "reward.sha256") != "ab12" || get(models, "policy.name") != "reach-sac" {
		t.Errorf("models %+v", models)
	}
	if inputs.Name != StatusInputs || inputs.Level != diagnostic_msgs.DiagnosticStatus_WARN || inputs.Message != "nothing received on [/estop]" ||
		get(inputs, "/arm/ee_pose.last_error") != "position.x is NaN" || get(inputs, "image_age_ms") != "25.000" ||
		get(inputs, "estop_age_ms") != "never" || get(inputs, "object0_age_ms") != "20.000" {
		t.Errorf("inputs %+v", inputs)
	}
}
