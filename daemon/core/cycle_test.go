package core

import (
	"io"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"robodistill/control/episode"
	"robodistill/control/loop"
	"robodistill/control/rosnode"
	"robodistill/control/safety"
	"robodistill/daemon/config"
	"robodistill/daemon/obs"
	"robodistill/daemon/rosio"
	"robodistill/daemon/translog"
)

// fakeInputs are the slots as a test sets them: Read and ReadFrame copy like
// rosio.Inputs does, without allocating once dst is sized.
type fakeInputs struct {
	st        rosio.State
	frame     rosio.Frame
	haveFrame bool
}

func (f *fakeInputs) Read(dst *rosio.State) {
	dst.EEPose, dst.Goal, dst.Estop = f.st.EEPose, f.st.Goal, f.st.Estop
	dst.Objects, dst.NumObjects = f.st.Objects, f.st.NumObjects
	copy(dst.Joints.Position, f.st.Joints.Position)
	copy(dst.Joints.Velocity, f.st.Joints.Velocity)
	dst.Joints.HasVelocity, dst.Joints.Stamp = f.st.Joints.HasVelocity, f.st.Joints.Stamp
}

func (f *fakeInputs) ReadFrame(dst *rosio.Frame) bool {
	if !f.haveFrame {
		return false
	}
	data := dst.Data
	if cap(data) < len(f.frame.Data) {
		data = make([]byte, len(f.frame.Data))
	}
	data = data[:len(f.frame.Data)]
	copy(data, f.frame.Data)
	*dst = f.frame
	dst.Data = data
	return true
}

// fakeOutputs keep what the cycle published.
type fakeOutputs struct {
	commands, rewards int
	vel               [3]float64
	grip              float64
	reward            float32
	states            []string
	failSafety        bool // SafetyState fails, as while rosmaster is away
}

func (f *fakeOutputs) Command(_ time.Time, vel [3]float64, grip float64) error {
	f.commands++
	f.vel, f.grip = vel, grip
	return nil
}

func (f *fakeOutputs) Reward(r float32) error {
	f.rewards++
	f.reward = r
	return nil
}

func (f *fakeOutputs) SafetyState(s string) (bool, error) {
	if f.failSafety {
		return false, rosnode.ErrNotConnected
	}
	if n := len(f.states); n > 0 && f.states[n-1] == s {
		return false, nil
	}
	f.states = append(f.states, s)
	return true, nil
}

// fakeRecorder counts transitions and keeps episode starts.
type fakeRecorder struct {
	n      int
	last   translog.Transition
	starts []episode.Meta
}

func (f *fakeRecorder) Record(t *translog.Transition) bool {
	f.n++
	f.last = *t
	return true
}

func (f *fakeRecorder) StartEpisode(m episode.Meta) error {
	f.starts = append(f.starts, m)
	return nil
}

// harness runs the controller on fake inputs and a fake clock: tick k wakes at
// t0 + k·period; inputs that are "on" were received 3 ms before the wake.
type harness struct {
	t        testing.TB
	c        *controller
	in       *fakeInputs
	out      *fakeOutputs
	cfg      config.Config
	pending  atomic.Pointer[models]
	t0       time.Time
	period   time.Duration
	k        int64
	cameraOn bool
	stateOn  bool
	lastOut  safety.State
}

func newHarness(t testing.TB, m *models, rec recorder, log *zap.Logger) *harness {
	t.Helper()
	cfg := config.Default()
	rcfg := rosio.DefaultConfig()
	b, err := rosio.NewBuilder(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safety.New(safetyConfig(cfg, m.motion.Scale))
	if err != nil {
		t.Fatal(err)
	}
	met, err := obs.NewMetrics(obs.MetricsOptions{SafetyStates: []string{"ok", "clipped", "hold", "stop", "estop"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, in: &fakeInputs{}, out: &fakeOutputs{}, t0: time.Now(), period: cfg.Loop.Period(),
		cameraOn: true, stateOn: true}
	st := &rosio.State{Joints: rosio.NewJoints(rcfg.Joints), NumObjects: 1}
	h.in.st = rosio.State{Joints: rosio.NewJoints(rcfg.Joints), NumObjects: 1}
	h.in.st.EEPose.Pos = [3]float64{0, 0.6, 0.2}
	h.in.st.EEPose.Quat = [4]float64{1, 0, 0, 0}
	h.in.st.Objects[0].Pos = [3]float64{0, 0.6, 0.02}
	h.in.st.Objects[0].Quat = [4]float64{1, 0, 0, 0}
	h.in.st.Goal.Pos = [3]float64{0.1, 0.8, 0.2}
	for i := range h.in.st.Joints.Position {
		h.in.st.Joints.Position[i] = 0.01 * float64(i)
	}
	h.in.frame = rosio.Frame{Encoding: "rgb8", Width: 64, Height: 64, Step: 64 * 3, Data: make([]byte, 64*64*3)}
	for i := range h.in.frame.Data {
		h.in.frame.Data[i] = byte(i * 7)
	}
	h.in.haveFrame = true
	h.c = newController(cycleConfig{Period: h.period, CameraMaxAge: cfg.Safety.CameraMaxAge, StateMaxAge: cfg.Safety.StateMaxAge,
		Frame: "world", Chunk: cfg.Log.Chunk, ImageTopic: "/camera/image_raw", StaleStopResume: true, NonFiniteReset: true},
		h.in, st, h.out, rec, b, f, met, m, &h.pending, log)
	return h
}

// now is the wake time of the next tick.
func (h *harness) now() time.Time { return h.t0.Add(time.Duration(h.k) * h.period) }

// tick runs one cycle and returns the filter's state after it.
func (h *harness) tick() safety.State {
	now := h.now()
	recv := now.Add(-3 * time.Millisecond)
	if h.cameraOn {
		h.in.frame.Stamp = rosio.Stamp{Received: recv, Header: recv, Seq: uint32(h.k)}
	}
	if h.stateOn {
		s := rosio.Stamp{Received: recv, Header: recv, Seq: uint32(h.k)}
		h.in.st.EEPose.Stamp, h.in.st.Joints.Stamp, h.in.st.Objects[0].Stamp, h.in.st.Goal.Stamp = s, s, s, s
	}
	h.c.step(loop.Tick{Index: uint64(h.k), Deadline: now, Woke: now, Period: h.period})
	h.k++
	h.lastOut = h.c.filter.State()
	return h.lastOut
}

// run ticks n times.
func (h *harness) run(n int) {
	for range n {
		h.tick()
	}
}

// until ticks until cond holds, at most n times, and returns the ticks it took.
func (h *harness) until(n int, what string, cond func(safety.State) bool) int {
	h.t.Helper()
	for i := 1; i <= n; i++ {
		if cond(h.tick()) {
			return i
		}
	}
	h.t.Fatalf("%s: not within %d cycles (state %s, events %+v)", what, n, h.lastOut, h.c.safetyEvents())
	return 0
}

func moving(s safety.State) bool { return s == safety.OK || s == safety.Clipped }

func loadTestModels(t testing.TB, dir string) *models {
	t.Helper()
	m, err := loadModels(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func discardLogger() *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
}

// TestCycleAllocs: the control cycle allocates nothing in steady state, with the real
// models, preprocessor, builder, safety filter and metrics — while the policy drives,
// while a stale camera holds the arm, and while the estop is engaged. Only the ROS side
// is faked (rosio's own tests measure Read, ReadFrame and publishing). With the real
// transition log, testing.AllocsPerRun (which counts every goroutine, the log's writer
// included) must be 0; with a fake log, the exact malloc count over 500 cycles must be 0.
func TestCycleAllocs(t *testing.T) {
	dir := modelDir(t)
	steps := []struct {
		name  string
		setup func(h *harness)
		want  safety.State
	}{
		{"driving", func(h *harness) {}, safety.OK},
		{"stale camera", func(h *harness) { h.cameraOn = false }, safety.Stop},
		{"estop", func(h *harness) { h.cameraOn = true; h.in.st.Estop.Engaged = true }, safety.EStop},
	}
	check := func(t *testing.T, h *harness, s string, want safety.State) {
		t.Helper()
		if moving(want) && !moving(h.lastOut) || !moving(want) && h.lastOut != want {
			t.Errorf("%s: state %s, want %s", s, h.lastOut, want)
		}
	}
	t.Run("transition log", func(t *testing.T) {
		tl, err := translog.New(translog.Config{Dir: filepath.Join(t.TempDir(), "log"), Slots: 16, MaxFrameBytes: 64 * 64 * 3}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer tl.Close(t.Context())
		h := newHarness(t, loadTestModels(t, dir), tl, discardLogger())
		h.until(10, "control", moving)
		h.run(100) // every log slot has held a frame; the rate limit has settled
		for _, s := range steps {
			s.setup(h)
			h.run(100) // through the state change (which may allocate) into its steady state
			allocs := testing.AllocsPerRun(200, func() { h.tick() })
			check(t, h, s.name, s.want)
			t.Logf("%s: %v allocations per cycle (AllocsPerRun, the log's writer goroutine included)", s.name, allocs)
			if allocs != 0 {
				t.Errorf("%s: %v allocations per cycle", s.name, allocs)
			}
		}
		if st := tl.Stats(); st.Recorded == 0 || st.Rejected != 0 { // the fake clock outruns the writer: drops are expected
			t.Errorf("transition log: %+v", st)
		}
	})
	t.Run("exact", func(t *testing.T) {
		h := newHarness(t, loadTestModels(t, dir), &fakeRecorder{}, discardLogger())
		h.until(10, "control", moving)
		h.run(100)
		for _, s := range steps {
			s.setup(h)
			h.run(100)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			h.run(500)
			runtime.ReadMemStats(&ms1)
			check(t, h, s.name, s.want)
			if n := ms1.Mallocs - ms0.Mallocs; n != 0 {
				t.Errorf("%s: %d allocations in 500 cycles", s.name, n)
			}
		}
	})
}

// BenchmarkCycle is one control cycle with the test models (reward ensemble of two
// small CNNs on 64×64 frames, the linear reach policy), fake ROS, real everything else.
func BenchmarkCycle(b *testing.B) {
	dir := modelDir(b)
	m := loadTestModels(b, dir)
	h := newHarness(b, m, &fakeRecorder{}, discardLogger())
	h.run(50)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.tick()
	}
}

// TestCycleStaleCamera: the camera stops; the first cycle that finds the last frame
// older than camera_max_age holds the arm (zero velocity), after stop_after it latches
// Stop, and once the camera is back for resumeAfter the daemon releases the Stop and
// control resumes, ramping up from zero.
func TestCycleStaleCamera(t *testing.T) {
	h := newHarness(t, loadTestModels(t, modelDir(t)), &fakeRecorder{}, zaptest.NewLogger(t))
	h.until(10, "control", moving)
	h.run(20)
	lastFrame := h.in.frame.Stamp.Received
	h.cameraOn = false
	h.until(50, "hold", func(s safety.State) bool { return s == safety.Hold })
	held := h.now().Add(-h.period)
	maxAge := h.cfg.Safety.CameraMaxAge
	if age := held.Sub(lastFrame); age <= maxAge || age > maxAge+h.period {
		t.Errorf("held at camera age %v; want the first cycle past %v", age, maxAge)
	}
	ev := h.c.safetyEvents()
	if last := ev[len(ev)-1]; last.To != safety.Hold || last.Reason != safety.ReasonStaleCamera || last.CameraAge-last.Period > maxAge {
		t.Errorf("event %+v", last)
	}
	if h.out.vel != [3]float64{} {
		t.Errorf("holding with velocity %v", h.out.vel)
	}
	n := h.until(100, "stop", func(s safety.State) bool { return s == safety.Stop })
	if d := time.Duration(n) * h.period; d < h.cfg.Safety.StopAfter-h.period || d > h.cfg.Safety.StopAfter+h.period {
		t.Errorf("stop latched %v after the hold, want stop_after %v", d, h.cfg.Safety.StopAfter)
	}
	h.cameraOn = true
	n = h.until(50, "resume", moving)
	if d := time.Duration(n) * h.period; d < resumeAfter {
		t.Errorf("resumed %v after the camera came back, want at least %v", d, resumeAfter)
	}
	if got, want := phases(h.out.states), []string{"moving", "hold", "stop", "moving"}; !slices.Equal(got, want) {
		t.Errorf("published states %v: phases %v, want %v", h.out.states, got, want)
	}
}

// phases merges ok and clipped into "moving" and drops repeats.
func phases(states []string) []string {
	var out []string
	for _, s := range states {
		if s == "ok" || s == "clipped" {
			s = "moving"
		}
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// TestCycleStaleState: robot state that stops arriving holds the arm too.
func TestCycleStaleState(t *testing.T) {
	h := newHarness(t, loadTestModels(t, modelDir(t)), nil, zaptest.NewLogger(t))
	h.until(10, "control", moving)
	h.stateOn = false
	h.until(10, "hold", func(s safety.State) bool { return s == safety.Hold })
	if ev := h.c.safetyEvents(); ev[len(ev)-1].Reason != safety.ReasonStaleState {
		t.Errorf("events %+v", ev)
	}
}

// TestCycleEstop: the estop stops the arm in the cycle that reads it; after its release
// the arm stays stopped (no auto-resume) until the reset_safety request.
func TestCycleEstop(t *testing.T) {
	h := newHarness(t, loadTestModels(t, modelDir(t)), &fakeRecorder{}, zaptest.NewLogger(t))
	h.until(10, "control", moving)
	h.in.st.Estop = rosio.Estop{Engaged: true}
	if s := h.tick(); s != safety.EStop || h.out.vel != [3]float64{} {
		t.Fatalf("state %s, velocity %v after the estop", s, h.out.vel)
	}
	h.run(20)
	h.in.st.Estop = rosio.Estop{}
	if s := h.tick(); s != safety.Stop {
		t.Fatalf("state %s after release, want stop", s)
	}
	h.run(100)
	if h.lastOut != safety.Stop || h.out.vel != [3]float64{} {
		t.Fatalf("state %s, velocity %v 2 s after the release: no auto-resume wanted", h.lastOut, h.out.vel)
	}
	reply := make(chan error, 1)
	h.c.resetReq <- reply
	h.until(10, "resume after reset", moving)
	if err := <-reply; err != nil {
		t.Fatal(err)
	}
	// A reset while the estop is engaged is refused.
	h.in.st.Estop = rosio.Estop{Engaged: true}
	h.tick()
	h.c.resetReq <- reply
	h.tick()
	if err := <-reply; err != safety.ErrEstop {
		t.Errorf("reset under estop: %v", err)
	}
}

// TestCycleNaNPolicy: a policy that outputs NaN holds the arm; its Stop is released when
// a new policy is swapped in.
func TestCycleNaNPolicy(t *testing.T) {
	dir := modelDir(t)
	h := newHarness(t, loadTestModels(t, dir), &fakeRecorder{}, zaptest.NewLogger(t))
	h.until(10, "control", moving)
	good := filepath.Join(dir, "policy.onnx")
	savePolicy(t, good, nanNet(), policyManifest("reach", testRate, testScale))
	h.pending.Store(loadTestModels(t, dir))
	if s := h.tick(); s != safety.Hold || h.out.vel != [3]float64{} {
		t.Fatalf("state %s, velocity %v with a NaN policy", s, h.out.vel)
	}
	if ev := h.c.safetyEvents(); ev[len(ev)-1].Reason != safety.ReasonNonFinite {
		t.Errorf("events %+v", ev)
	}
	h.until(60, "stop", func(s safety.State) bool { return s == safety.Stop })
	h.run(20)
	if h.lastOut != safety.Stop {
		t.Fatalf("state %s", h.lastOut)
	}
	// Not a steady state the daemon is meant to stay in, so only reported: the runtime
	// builds an error for each non-finite output.
	t.Logf("%.1f allocations per cycle while the policy outputs NaN", testing.AllocsPerRun(50, func() { h.tick() }))
	savePolicy(t, good, reachNet(8), policyManifest("reach", testRate, testScale))
	h.pending.Store(loadTestModels(t, dir))
	h.until(5, "resume with the new policy", moving)
}

// TestCycleEpisodes: the episode rule — a new episode (builder reset, new bag) when the
// goal moves, none when it only jitters; a bag that has lasted log.chunk continues in a
// new one.
func TestCycleEpisodes(t *testing.T) {
	rec := &fakeRecorder{}
	h := newHarness(t, loadTestModels(t, modelDir(t)), rec, zaptest.NewLogger(t))
	h.run(10)
	if len(rec.starts) != 1 || rec.starts[0].Task != "reach" || rec.starts[0].ActionScale != testScale || len(rec.starts[0].Policy) != 64 {
		t.Fatalf("episode starts %+v", rec.starts)
	}
	h.in.st.Goal.Pos[0] += 0.5e-3 // jitter
	h.run(10)
	h.in.st.Goal.Pos[1] += 0.05 // a new goal
	h.run(1)
	if len(rec.starts) != 2 || h.c.episodes.Load() != 2 {
		t.Fatalf("%d episode starts, %d episodes", len(rec.starts), h.c.episodes.Load())
	}
	// The observation's previous-step half restarts: slots 18-20 equal 0-2.
	if o := h.c.obs; o[18] != o[0] || o[19] != o[1] || o[20] != o[2] {
		t.Errorf("previous hand %v, hand %v after a new episode", o[18:21], o[0:3])
	}
	h.c.cfg.Chunk = 10 * h.period
	h.run(10)
	if len(rec.starts) != 3 || rec.starts[2] != rec.starts[1] || h.c.episodes.Load() != 2 {
		t.Errorf("after a chunk: starts %+v, %d episodes", rec.starts, h.c.episodes.Load())
	}
	if tr := rec.last; !tr.PolicyValid || !tr.RewardValid || math.IsNaN(float64(tr.Reward)) || !tr.Command.Valid || tr.Image.Width != 64 ||
		tr.Safety.Level != translog.SafetyOK && tr.Safety.Level != translog.SafetyLimited || len(tr.Objects) != 1 || tr.Objects[0].Name != "object" {
		t.Errorf("last transition %+v", tr)
	}
}

// TestCycleCameraExpectations: frames of another size than vision.camera_* are not used:
// no reward, and the camera goes stale.
func TestCycleCameraExpectations(t *testing.T) {
	h := newHarness(t, loadTestModels(t, modelDir(t)), nil, zaptest.NewLogger(t))
	h.c.cfg.CameraWidth = 640
	h.until(20, "hold", func(s safety.State) bool { return s == safety.Hold })
	h.run(10)
	if h.out.rewards != 0 || h.lastOut != safety.Hold {
		t.Errorf("%d rewards published, state %s", h.out.rewards, h.lastOut)
	}
	h.c.cfg.CameraWidth = 64
	h.until(20, "control", moving)
	if h.out.rewards == 0 || math.IsNaN(float64(h.out.reward)) {
		t.Errorf("%d rewards, last %v", h.out.rewards, h.out.reward)
	}
}

// TestCycleSafetyRetry: a safety state that could not be published (rosmaster away) is
// published by the cycle once the node is back, within a second.
func TestCycleSafetyRetry(t *testing.T) {
	h := newHarness(t, loadTestModels(t, modelDir(t)), nil, zaptest.NewLogger(t))
	h.until(10, "control", moving)
	h.out.failSafety = true
	h.in.st.Estop.Engaged = true
	h.until(1, "estop", func(s safety.State) bool { return s == safety.EStop })
	h.run(10)
	h.out.failSafety = false
	n := len(h.out.states)
	h.run(55)
	if got := h.out.states[n:]; !slices.Equal(got, []string{"estop"}) {
		t.Errorf("published %v after the node came back, want [estop]", got)
	}
}
