package bridge

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/sim/metaworld"
	"robodistill/sim/rollout"
)

func mustTask(t testing.TB, name string) *metaworld.Task {
	t.Helper()
	task, err := metaworld.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestConfigErrors(t *testing.T) {
	node := rosnode.Config{Name: "sim_bridge", MasterURI: "http://127.0.0.1:11311/"}
	reach, _ := metaworld.Lookup("reach")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Task: reach, Camera: "corner", Size: 64, Node: node}, ""},
		{"no camera needs no size", Config{Task: reach, Node: node}, ""},
		{"no task", Config{Camera: "corner", Size: 64, Node: node}, "task: required"},
		{"rate", Config{Task: reach, Env: metaworld.Options{Rate: 60}, Node: node}, "rate: 60 Hz not supported (50 or 80)"},
		{"size", Config{Task: reach, Camera: "corner", Size: 481, Node: node}, "size: 481 outside 1..480"},
		{"timeout", Config{Task: reach, CommandTimeout: -time.Second, Node: node}, "cmd-timeout: -1s is negative"},
		{"seed", Config{Task: reach, Seed: 1 << 31, Node: node}, "seed: 2147483648 above 2147483647 (~seed is a ROS integer parameter)"},
		{"camera rate", Config{Task: reach, Camera: "corner", Size: 64, CameraRate: 30, Node: node}, ""},
		{"camera rate above the control rate", Config{Task: reach, Camera: "corner", Size: 64, CameraRate: 60, Node: node},
			"camera-rate: 60 Hz outside 1..50 (the control rate)"},
		{"negative camera rate", Config{Task: reach, Env: metaworld.Options{Rate: 80}, CameraRate: -1, Node: node},
			"camera-rate: -1 Hz outside 1..80 (the control rate)"},
		{"camera rate in lockstep", Config{Task: reach, Camera: "corner", Size: 64, CameraRate: 30, Lockstep: true, Node: node},
			"camera-rate: 30 Hz with lockstep, which publishes an image with every step"},
		{"node", Config{Task: reach, Node: rosnode.Config{Name: "sim-bridge", MasterURI: node.MasterURI}},
			`node: name: "sim-bridge" is not a ROS name (a letter, then letters, digits or _)`},
	} {
		err := tc.cfg.withDefaults().Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
	if c := (Config{Namespace: "robot1"}).withDefaults(); c.Node.Namespace != "/robot1" || c.Node.Name != "sim_bridge" || c.Env.Rate != 50 || c.CameraRate != 50 {
		t.Errorf("defaults %+v", c)
	}
}

// The grid stays start + k·period whatever the work takes; late ticks are counted and
// caught up back to back, and a loop too far behind skips to the current grid point.
func TestPacer(t *testing.T) {
	start := time.Unix(100, 0)
	const T = 20 * time.Millisecond
	p := newPacer(start, T)
	now := start
	for k := 1; k <= 1000; k++ {
		now = now.Add(7 * time.Millisecond) // work
		d := p.next(now)
		if want := start.Add(time.Duration(k) * T); !d.Equal(want) {
			t.Fatalf("tick %d deadline %v, want %v (drift)", k, d.Sub(start), want.Sub(start))
		}
		now = d // sleep until the deadline
	}
	if p.overruns != 0 || p.skipped != 0 {
		t.Fatalf("overruns %d skipped %d", p.overruns, p.skipped)
	}
	// One tick's work takes 2.5 periods: the next ticks are due at once (catch-up) and
	// run back to back until the loop is on time again; none is skipped.
	k0 := p.k
	now = now.Add(50 * time.Millisecond)
	ran := 0
	for {
		d := p.next(now)
		ran++
		if d.After(now) {
			now = d
			break
		}
		now = now.Add(7 * time.Millisecond) // a caught-up tick's work
	}
	if p.skipped != 0 || p.overruns != 3 || p.k-k0 != int64(ran) || (now.Sub(start))%T != 0 {
		t.Fatalf("catch-up: %d ticks, overruns %d, skipped %d, at %v", ran, p.overruns, p.skipped, now.Sub(start))
	}
	// Work that takes 6.5 periods: too far behind. Of the six deadlines passed, the
	// latest runs at once and the five before it are skipped.
	d := p.next(now.Add(130 * time.Millisecond))
	if p.skipped != 5 || p.overruns != 4 || !d.Equal(now.Add(6*T)) {
		t.Fatalf("far behind: skipped %d overruns %d next %v", p.skipped, p.overruns, d.Sub(now))
	}
}

func TestParseCommands(t *testing.T) {
	tw := func(frame string, x, ax float64) *geometry_msgs.TwistStamped {
		m := rosiface.Twist(rosiface.Header(0, time.Unix(1, 0), frame), [3]float64{x, 0.1, -0.2})
		m.Twist.Angular.X = ax
		return m
	}
	for _, tc := range []struct {
		m    *geometry_msgs.TwistStamped
		want string
	}{
		{tw("world", 0.3, 0), ""},
		{tw("", 0.3, 0.5), ""}, // rostopic pub leaves the frame empty; angular is ignored
		{tw("world", math.NaN(), 0), "not finite"},
		{tw("world", math.Inf(-1), 0), "not finite"},
		{tw("world", 0, math.Inf(1)), "not finite"},
		{tw("base_link", 0.3, 0), `frame "base_link"`},
	} {
		v, err := ParseTwist(tc.m)
		if tc.want == "" {
			if err != nil || v != [3]float64{tc.m.Twist.Linear.X, 0.1, -0.2} {
				t.Errorf("%+v: %v %v", tc.m.Twist, v, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.m.Twist, err, tc.want)
		}
	}
	for _, g := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := ParseGripper(&std_msgs.Float64{Data: g}); err == nil {
			t.Errorf("gripper %v accepted", g)
		}
	}
	if g, err := ParseGripper(&std_msgs.Float64{Data: 3}); err != nil || g != 3 {
		t.Errorf("gripper 3: %v %v (clipped later, not rejected)", g, err)
	}
}

// Driving Sim with the velocities a policy's actions map to reproduces the in-process
// rollout: the mapping is the one training used.
func TestSimMatchesInProcess(t *testing.T) {
	task := mustTask(t, "drawer-open")
	s, err := NewSim(task, metaworld.Options{Rate: 50}, rosiface.DefaultTopics(""), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref, err := metaworld.New(task, metaworld.Options{Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	const seed = 3
	if err := s.Reset(seed); err != nil {
		t.Fatal(err)
	}
	o, _ := ref.Reset(seed)
	m := s.Motion()
	for i := 0; i < 150; i++ {
		a := task.Scripted(&o)
		vel, grip := m.Command(a)
		if err := s.Step(Command{Vel: vel, Grip: grip}); err != nil {
			t.Fatal(err)
		}
		var r float64
		o, r, _, _, _ = ref.Step(a)
		got := s.Env().Obs()
		for j := range o {
			if math.Abs(got[j]-o[j]) > 1e-9 {
				t.Fatalf("step %d obs[%d]: bridge %v, in-process %v", i, j, got[j], o[j])
			}
		}
		if math.Abs(s.Status().Reward-r) > 1e-6 {
			t.Fatalf("step %d reward %v vs %v", i, s.Status().Reward, r)
		}
	}
}

func TestSimMessagesAndTruncation(t *testing.T) {
	task := mustTask(t, "reach")
	s, err := NewSim(task, metaworld.Options{Rate: 50, MaxSteps: 3}, rosiface.DefaultTopics("r1"), "corner", 32)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Reset(7); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Step(Command{Vel: [3]float64{0.1, 0, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Status(); !st.Truncated || st.Step != 3 || st.Seed != 7 {
		t.Fatalf("status %+v", st)
	}
	if err := s.Step(Command{}); err != ErrEpisodeOver {
		t.Fatalf("step after the end: %v", err)
	}
	f, err := s.Frame()
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages(time.Unix(5, 0), f)
	topics := map[string]bool{}
	for _, m := range msgs {
		topics[m.Topic] = true
		if img, ok := m.Msg.(*sensor_msgs.Image); ok && (img.Width != 32 || len(img.Data) != 32*32*3 || img.Header.Stamp != time.Unix(5, 0)) {
			t.Errorf("image %dx%d %d bytes stamp %v", img.Width, img.Height, len(img.Data), img.Header.Stamp)
		}
	}
	tp := rosiface.DefaultTopics("r1")
	for _, want := range []string{tp.Image, tp.CameraInfo, tp.EEPose, tp.JointStates, tp.ObjectPose("object"), tp.Goal, tp.Observation, tp.Status} {
		if !topics[want] {
			t.Errorf("no message on %s (have %v)", want, topics)
		}
	}
	if topics[tp.CmdVel] {
		t.Error("the bridge publishes its own command topic")
	}
}

// The in-process reference for the lockstep test: MetaWorld's scripted policy at 50 Hz,
// episodes ending at their first success.
func inProcess(t *testing.T, task *metaworld.Task, seeds int) rollout.Summary {
	t.Helper()
	pf, _ := rollout.ParsePolicy("scripted")
	s, err := rollout.Run(context.Background(), rollout.Config{Task: task, Env: metaworld.Options{Rate: 50}, Policy: pf, Episodes: seeds, Seed: 0})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The command path (validate, store, read) and the pacer allocate nothing. Publishing
// does: goroslib encodes after Write returns, so every message is a fresh value.
func TestHotPathAllocs(t *testing.T) {
	in := newInputs()
	m := rosiface.Twist(rosiface.Header(0, time.Unix(1, 0), "world"), [3]float64{0.1, 0.2, 0.3})
	g := &std_msgs.Float64{Data: 0.5}
	now := time.Unix(2, 0)
	p := newPacer(now, 20*time.Millisecond)
	if n := testing.AllocsPerRun(100, func() {
		v, err := ParseTwist(m)
		if err != nil {
			t.Fatal(err)
		}
		in.setVel(v, now)
		gr, _ := ParseGripper(g)
		in.setGrip(gr, now)
		_ = in.snapshot()
		now = p.next(now.Add(time.Millisecond))
	}); n != 0 {
		t.Fatalf("%v allocations per command", n)
	}
}
