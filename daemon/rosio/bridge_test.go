package rosio

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode/rosnodetest"
	"robodistill/control/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// buildRobodistill builds the offline binary (which runs the sim bridge). The daemon may
// not import sim/, so the test runs the bridge as the separate process it is in production.
func buildRobodistill(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, testbin.Robodistill)[0]
}

// lockedBuf collects a subprocess's output.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBridge runs `robodistill sim bridge` in lockstep against m and stops it (SIGINT)
// when t ends.
func startBridge(t *testing.T, m *rosnodetest.Master, bin string, args ...string) *lockedBuf {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := m.Command(ctx, bin, append([]string{"sim", "bridge", "--lockstep"}, args...)...)
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("sim bridge did not stop within 15 s of SIGINT; killing it\n%s", out.String())
			cancel()
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("sim bridge output:\n%s", out.String())
		}
	})
	return out
}

// simSide is what the test reads from the bridge besides the daemon's inputs: the true
// observation and the episode status (neither has a header; one of each per step).
type simSide struct {
	mu     sync.Mutex
	obs    []float64
	nObs   int
	status rosiface.EpisodeStatus
	err    error
}

func (s *simSide) onObs(m *std_msgs.Float64MultiArray) {
	d, err := rosiface.ParseObservation(m, ObsDim)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.obs, s.nObs = d, s.nObs+1
}

func (s *simSide) onStatus(m *std_msgs.Float64MultiArray) {
	st, err := rosiface.ParseEpisodeStatus(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.status = st
}

func (s *simSide) get() (obs []float64, n int, st rosiface.EpisodeStatus, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obs, s.nObs, s.status, s.err
}

var obsLabels = func() [ObsDim]string {
	var l [ObsDim]string
	names := []string{"hand.x", "hand.y", "hand.z", "gripper", "obj1.x", "obj1.y", "obj1.z", "obj1.q0", "obj1.q1", "obj1.q2", "obj1.q3",
		"obj2.x", "obj2.y", "obj2.z", "obj2.q0", "obj2.q1", "obj2.q2", "obj2.q3"}
	for i, n := range names {
		l[i], l[i+18] = n, "prev."+n
	}
	l[36], l[37], l[38] = "goal.x", "goal.y", "goal.z"
	return l
}()

// TestObservationMatchesSimBridge drives the real sim bridge (a subprocess, lockstep)
// with Outputs.Command for a few hundred steps, with a sim/reset in the middle, and
// checks that Builder's observation from the Inputs slots equals the observation the
// simulator computed (published on sim/observation) in all 39 values, within 1e-6.
func TestObservationMatchesSimBridge(t *testing.T) {
	m := rosnodetest.New(t)
	bin := buildRobodistill(t)
	for _, tc := range []struct {
		task   string
		quat   QuatLayout
		camera bool
		steps  [2]int // before and after the reset
	}{
		{"reach", QuatXYZW, true, [2]int{200, 100}},
		{"drawer-open", QuatWXYZ, false, [2]int{60, 40}},
	} {
		t.Run(tc.task, func(t *testing.T) {
			ns := "sim_" + string(tc.quat)
			args := []string{"--task", tc.task, "--namespace", ns, "--seed", "7", "--camera", "none"}
			if tc.camera {
				args = []string{"--task", tc.task, "--namespace", ns, "--seed", "7", "--camera", "corner", "--size", "32"}
			}
			startBridge(t, m, bin, args...)

			cfg := DefaultConfig()
			cfg.Namespace = ns
			cfg.Objects = []Object{{Name: "object", Quat: tc.quat}}
			d := startDaemonSide(t, m, cfg, 0)
			tp := rosiface.DefaultTopics(ns)
			sim := &simSide{}
			if err := d.node.Subscribe(tp.Observation, sim.onObs, 0); err != nil {
				t.Fatal(err)
			}
			if err := d.node.Subscribe(tp.Status, sim.onStatus, 0); err != nil {
				t.Fatal(err)
			}
			b, err := NewBuilder(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := &bridgeRun{t: t, d: d, sim: sim, b: b, st: d.in.NewState(), camera: tc.camera}

			r.compare(r.wait(0, 7, 0, nil), "initial state")
			for k := 0; k < tc.steps[0]; k++ {
				r.step(k, 7)
			}
			// sim/reset starts the episode with seed 8 (~seed = --seed + 1).
			_, mark, _, _ := sim.get()
			callReset(t, m, tp.Reset)
			b.Reset()
			r.compare(r.wait(0, 8, mark, nil), "after reset")
			for k := 0; k < tc.steps[1]; k++ {
				r.step(k, 8)
			}
			t.Logf("%s: %d observations equal the simulator's in all 39 values, within %g (max difference %.3g); gripper opening seen in [%.3f, %.3f]",
				tc.task, r.compared, tolerance, r.maxDiff, r.gripLo, r.gripHi)
			if r.gripHi-r.gripLo < 0.2 {
				t.Errorf("the gripper opening hardly changed (%.3f..%.3f): the finger-joint formula was not exercised", r.gripLo, r.gripHi)
			}
		})
	}
}

const tolerance = 1e-6

type bridgeRun struct {
	t        *testing.T
	d        *daemonSide
	sim      *simSide
	b        *Builder
	st       *State
	frame    Frame
	camera   bool
	primed   bool
	last     time.Time // header stamp of the last compared state
	compared int
	maxDiff  float64
	gripLo   float64
	gripHi   float64
}

// step sends step k's command (a smooth path that stays above the objects, the gripper
// closing and opening every 40 steps), waits for the resulting state and compares.
func (r *bridgeRun) step(k, seed int) {
	x := float64(k)
	vel := [3]float64{-0.2 * math.Sin(x/15), 0.25 * math.Cos(x/20), 0.15 * math.Sin(x/10)}
	grip := -1.0
	if (k/40)%2 == 1 {
		grip = 1
	}
	_, mark, _, _ := r.sim.get()
	send := func() {
		if err := r.d.out.Command(time.Now(), vel, grip); err != nil {
			r.t.Fatal(err)
		}
	}
	send()
	var resend func()
	if !r.primed {
		// Until the bridge has connected to the daemon's publishers, commands are lost:
		// resend the first one (a later one never is, so no step is doubled).
		resend = send
	}
	obs := r.wait(k+1, seed, mark, resend)
	r.primed = true
	r.compare(obs, fmt.Sprintf("seed %d step %d", seed, k+1))
}

// wait returns the simulator's observation of step `step` once the daemon's slots hold
// the state of that same step: the episode status says step, an observation newer than
// mark arrived, and every input carries one header stamp newer than the last state's.
func (r *bridgeRun) wait(step, seed, mark int, resend func()) []float64 {
	// Generous: on a loaded machine the bridge alone can take 20 s to start (EGL, assets).
	deadline := time.Now().Add(60 * time.Second)
	lastSend := time.Now()
	for {
		obs, n, st, err := r.sim.get()
		if err != nil {
			r.t.Fatal(err)
		}
		r.d.in.Read(r.st)
		s := r.st
		stamp := s.EEPose.Stamp.Header
		same := s.EEPose.Stamp.Valid() && stamp.After(r.last) && s.Joints.Stamp.Header.Equal(stamp) &&
			s.Goal.Stamp.Header.Equal(stamp) && s.Objects[0].Stamp.Header.Equal(stamp)
		if r.camera {
			same = same && r.d.in.ReadFrame(&r.frame) && r.frame.Stamp.Header.Equal(stamp)
		}
		if st.Step == step && st.Seed == uint64(seed) && n > mark && same {
			r.last = stamp
			return obs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no state for seed %d step %d: status %+v, %d observations (mark %d), stamps ee %v joints %v goal %v object %v (last %v)",
				seed, step, st, n, mark, stamp, s.Joints.Stamp.Header, s.Goal.Stamp.Header, s.Objects[0].Stamp.Header, r.last)
		}
		if resend != nil && time.Since(lastSend) > 300*time.Millisecond {
			resend()
			lastSend = time.Now()
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (r *bridgeRun) compare(want []float64, what string) {
	var got Obs
	if err := r.b.Build(r.st, &got); err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	for i := range got {
		diff := math.Abs(got[i] - want[i])
		if !(diff <= tolerance) {
			r.t.Fatalf("%s: obs[%d] (%s) = %.9g from the slots, the simulator computed %.9g\nslots %v\nsim   %v",
				what, i, obsLabels[i], got[i], want[i], got, want)
		}
		r.maxDiff = math.Max(r.maxDiff, diff)
	}
	if r.compared == 0 {
		r.gripLo, r.gripHi = got[3], got[3]
	}
	r.gripLo, r.gripHi = math.Min(r.gripLo, got[3]), math.Max(r.gripHi, got[3])
	if r.camera && (r.frame.Width != 32 || r.frame.Height != 32 || r.frame.Encoding != "rgb8" || len(r.frame.Data) != 32*32*3) {
		r.t.Fatalf("%s: camera frame %dx%d %s with %d bytes", what, r.frame.Width, r.frame.Height, r.frame.Encoding, len(r.frame.Data))
	}
	r.compared++
}

// callReset calls sim/reset from a separate node, as a test harness or evaluator would.
func callReset(t *testing.T, m *rosnodetest.Master, name string) {
	t.Helper()
	n, err := goroslib.NewNode(goroslib.NodeConf{Name: "resetter", MasterAddress: strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"),
		Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sc, err := goroslib.NewServiceClient(goroslib.ServiceClientConf{Node: n, Name: name, Srv: &std_srvs.Trigger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var res std_srvs.TriggerRes
	if err := sc.Call(&std_srvs.TriggerReq{}, &res); err != nil || !res.Success {
		t.Fatalf("sim/reset: %v %+v", err, res)
	}
}
