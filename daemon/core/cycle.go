package core

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"robodistill/control/episode"
	"robodistill/control/loop"
	"robodistill/control/safety"
	"robodistill/daemon/obs"
	"robodistill/daemon/rosio"
	"robodistill/daemon/translog"
)

// The control cycle's collaborators, as interfaces so that the allocation test can run
// the cycle on fakes. In the daemon they are *rosio.Inputs, *rosio.Outputs and
// *translog.Log.
type (
	inputReader interface {
		Read(dst *rosio.State)
		ReadFrame(dst *rosio.Frame) bool
	}
	commandWriter interface {
		Command(stamp time.Time, vel [3]float64, grip float64) error
		Reward(r float32) error
		SafetyState(state string) (bool, error)
	}
	recorder interface {
		Record(t *translog.Transition) bool
		StartEpisode(meta episode.Meta) error
	}
)

const (
	// goalTolerance is how far (m, any axis) the goal must move to start a new episode.
	goalTolerance = 1e-3
	// resumeAfter is how long camera and state must have been fresh again before a Stop
	// that stale inputs latched is reset.
	resumeAfter = 250 * time.Millisecond
	// hotLogInterval rate-limits the control thread's warnings per message.
	hotLogInterval = 5 * time.Second
	// periodRing is how many cycle periods the diagnostics' quantiles cover.
	periodRing = 256
	// eventRing is how many safety changes the controller remembers.
	eventRing = 64
)

// safetyEvent is one change of the safety filter's state, with the input ages the cycle
// saw; kept for diagnostics and tests.
type safetyEvent struct {
	At                  time.Time
	From, To            safety.State
	Reason              safety.Reason
	CameraAge, StateAge time.Duration // rosio.Never when never received
	EstopAge            time.Duration // of the estop topic's last message
	Period              time.Duration // since the previous cycle's wake
}

// cycleConfig is what the controller takes from the daemon's configuration.
type cycleConfig struct {
	Period                          time.Duration
	CameraMaxAge, StateMaxAge       time.Duration
	CameraWidth, CameraHeight       int
	CameraEncoding                  string
	Frame                           string        // frame_id of poses and commands
	Chunk                           time.Duration // log: robot time per bag file; 0: no split
	ImageTopic                      string        // for the episode metadata
	StaleStopResume, NonFiniteReset bool          // see docs/daemon.md, "Safety"
}

// controller is the control cycle. step runs on the loop's locked thread and owns every
// field not marked otherwise; other goroutines see its state through the atomics.
type controller struct {
	cfg     cycleConfig
	in      inputReader
	out     commandWriter
	rec     recorder // nil: no transition log
	builder *rosio.Builder
	filter  *safety.Filter
	metrics *obs.Metrics
	log     *zap.Logger // rare events: safety changes, swaps, episodes
	hot     *zap.Logger // rate-limited, for conditions that may repeat every cycle

	cur     *models
	pending *atomic.Pointer[models] // set by the reloader, taken between cycles
	active  atomic.Pointer[models]  // cur, for the diagnostics goroutine

	// Per-cycle buffers, allocated once.
	st    *rosio.State
	frame rosio.Frame
	obs   rosio.Obs
	obs32 []float32
	tr    translog.Transition
	objs  []translog.Object

	// Camera and reward.
	lastFrame   time.Time // receive time of the last frame looked at
	camStamp    time.Time // receive time of the last frame accepted (safety's camera stamp)
	camUnsent   bool      // no command has been sent since the frame at camStamp was accepted
	reward      float32
	rewardValid bool

	// Episodes.
	epOpen   bool
	epGoal   [3]float64
	epStart  time.Time
	episodes atomic.Uint64

	// Safety bookkeeping.
	latch      safety.Reason // cause of the current Stop
	freshSince time.Time     // inputs fresh since, while a stale Stop waits to resume
	resetReq   chan chan error
	safetyNow  atomic.Uint32 // State<<8 | Reason of the last output
	// safetyRetry is when to publish the safety state again after a failed publication
	// (rosmaster away); zero when safety_state is up to date.
	safetyRetry time.Time

	periods  [periodRing]atomic.Int64
	nPeriods atomic.Uint64

	evMu   sync.Mutex
	events [eventRing]safetyEvent
	nEv    int
}

func newController(cfg cycleConfig, in inputReader, st *rosio.State, out commandWriter, rec recorder,
	b *rosio.Builder, f *safety.Filter, m *obs.Metrics, first *models, pending *atomic.Pointer[models], log *zap.Logger) *controller {
	c := &controller{
		cfg: cfg, in: in, out: out, rec: rec, builder: b, filter: f, metrics: m,
		log: log, hot: obs.RateLimited(log, hotLogInterval),
		cur: first, pending: pending, st: st,
		obs32:    make([]float32, rosio.ObsDim),
		objs:     make([]translog.Object, rosio.MaxObjects),
		resetReq: make(chan chan error, 1),
	}
	c.active.Store(first)
	c.safetyNow.Store(uint32(f.State()) << 8)
	m.SetSafetyState(int(f.State()))
	m.SetModel("reward", first.rewardSHA, first.rewardPath)
	m.SetModel("policy", first.policySHA, first.policyPath)
	return c
}

// step is one control cycle: inputs → reward → observation → policy → safety filter →
// command, then the transition log and the metrics. It allocates nothing in steady
// state (TestCycleAllocs).
func (c *controller) step(t loop.Tick) {
	now := t.Woke
	c.periods[c.nPeriods.Load()%periodRing].Store(int64(t.Period))
	c.nPeriods.Add(1)
	if m := c.pending.Swap(nil); m != nil {
		c.swap(m)
	}
	c.serveReset()
	m := c.cur

	c.in.Read(c.st)
	haveFrame := c.in.ReadFrame(&c.frame)
	if haveFrame && !c.frame.Stamp.Received.Equal(c.lastFrame) {
		c.lastFrame = c.frame.Stamp.Received
		c.newFrame(m)
	}
	if c.rewardValid && fresh(now, c.camStamp, c.cfg.CameraMaxAge) {
		c.out.Reward(c.reward) // ErrNotConnected while rosmaster is away: dropped, counted by the node
	}

	c.episode(now, m)

	action := [4]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	policyValid := false
	if err := c.builder.Build(c.st, &c.obs); err != nil {
		c.hot.Warn("no observation yet", zap.Error(err))
	} else {
		for i, v := range c.obs {
			c.obs32[i] = float32(v)
		}
		y, err := m.policy.Run(c.obs32, 1)
		if err != nil {
			c.hot.Warn("policy failed; holding", zap.Error(err))
		} else {
			for i := range action {
				action[i] = float64(y[i])
			}
			policyValid = true
		}
	}

	stateStamp := c.stateStamp()
	c.maybeResume(now, stateStamp)
	out := c.filter.Filter(safety.Input{Now: now, Action: action, EEPos: c.st.EEPose.Pos,
		CameraStamp: c.camStamp, StateStamp: stateStamp, Estop: c.st.Estop.Engaged})
	vel, grip := m.motion.Command(out.Command)
	cmdErr := c.out.Command(now, vel, grip)
	sent := time.Now()
	if out.Changed {
		c.changed(out, now, stateStamp, t.Period)
	} else if !c.safetyRetry.IsZero() && !now.Before(c.safetyRetry) {
		c.publishSafety(out.State, now)
	}
	if cmdErr == nil && c.camUnsent {
		c.metrics.ObserveCameraToCommand(sent.Sub(c.camStamp))
		c.camUnsent = false
	}

	if c.rec != nil && haveFrame {
		c.record(now, sent, out, action, policyValid, cmdErr == nil, vel, grip)
	}

	finished := time.Now()
	c.metrics.ObserveCycle(finished, t.Lateness, finished.Sub(now), finished.After(t.Deadline.Add(c.cfg.Period)))
}

// newFrame runs the reward ensemble on a frame not seen before, if the frame is what
// the configuration expects.
func (c *controller) newFrame(m *models) {
	f := &c.frame
	switch {
	case c.cfg.CameraWidth > 0 && f.Width != c.cfg.CameraWidth,
		c.cfg.CameraHeight > 0 && f.Height != c.cfg.CameraHeight,
		c.cfg.CameraEncoding != "" && f.Encoding != c.cfg.CameraEncoding:
		c.hot.Warn("camera frame refused: not what vision.camera_* expects",
			zap.Int("width", f.Width), zap.Int("height", f.Height), zap.String("encoding", f.Encoding),
			zap.Int("want_width", c.cfg.CameraWidth), zap.Int("want_height", c.cfg.CameraHeight), zap.String("want_encoding", c.cfg.CameraEncoding))
		return
	}
	if err := m.pre.Process(f.View(), m.tensor); err != nil {
		c.hot.Warn("camera frame refused by the preprocessor", zap.Error(err))
		return
	}
	c.camStamp, c.camUnsent = f.Stamp.Received, true
	mean, _, err := m.reward.Run(m.tensor)
	if err != nil {
		c.rewardValid = false
		c.hot.Warn("reward model failed", zap.Error(err))
		return
	}
	c.reward, c.rewardValid = float32(mean), true
}

// stateStamp is the robot state's age for the safety filter: the oldest receive time of
// the hand pose, the joint states and the object poses (the goal is a task input, which
// a robot may publish once, latched). Zero when one was never received.
func (c *controller) stateStamp() time.Time {
	s := c.st.EEPose.Stamp.Received
	older := func(r time.Time) {
		if r.IsZero() || (!s.IsZero() && r.Before(s)) {
			s = r
		}
	}
	older(c.st.Joints.Stamp.Received)
	for i := 0; i < c.st.NumObjects; i++ {
		older(c.st.Objects[i].Stamp.Received)
	}
	if c.st.EEPose.Stamp.Received.IsZero() {
		return time.Time{}
	}
	return s
}

// fresh reports whether a stamp is within maxAge of now, either way (the safety filter's
// rule: a stamp far in the future is as bad as an old one).
func fresh(now, stamp time.Time, maxAge time.Duration) bool {
	if stamp.IsZero() {
		return false
	}
	d := now.Sub(stamp)
	return d <= maxAge && d >= -maxAge
}

// maybeResume resets a Stop that stale inputs latched once camera and state have been
// fresh for resumeAfter (docs/daemon.md, "Safety"). A Stop caused by the estop, a
// non-finite action or SIGTERM is not reset here.
func (c *controller) maybeResume(now, stateStamp time.Time) {
	if !c.cfg.StaleStopResume || c.filter.State() != safety.Stop ||
		(c.latch != safety.ReasonStaleCamera && c.latch != safety.ReasonStaleState) {
		c.freshSince = time.Time{}
		return
	}
	if c.st.Estop.Engaged || !fresh(now, c.camStamp, c.cfg.CameraMaxAge) || !fresh(now, stateStamp, c.cfg.StateMaxAge) {
		c.freshSince = time.Time{}
		return
	}
	if c.freshSince.IsZero() {
		c.freshSince = now
	}
	if now.Sub(c.freshSince) < resumeAfter {
		return
	}
	c.freshSince = time.Time{}
	if err := c.filter.Reset(); err == nil {
		c.log.Info("safety: inputs fresh again; stop released", zap.Stringer("latched_by", c.latch))
		c.latch = safety.ReasonNone
	}
}

// changed reports a safety state change: metrics, the safety_state topic, the log and
// the event ring. Changes are rare, so this may allocate.
func (c *controller) changed(out safety.Output, now, stateStamp time.Time, period time.Duration) {
	if out.State == safety.Stop {
		c.latch = out.Reason
	}
	c.safetyNow.Store(uint32(out.State)<<8 | uint32(out.Reason))
	c.metrics.SetSafetyState(int(out.State))
	c.metrics.SafetyTransition(int(out.Reason))
	c.publishSafety(out.State, now)
	ev := safetyEvent{At: now, From: out.Prev, To: out.State, Reason: out.Reason,
		CameraAge: age(now, c.camStamp), StateAge: age(now, stateStamp), EstopAge: age(now, c.st.Estop.Stamp.Received), Period: period}
	c.evMu.Lock()
	c.events[c.nEv%eventRing] = ev
	c.nEv++
	c.evMu.Unlock()

	level := zapcore.DebugLevel // ok ↔ clipped happens all the time
	switch {
	case out.State >= safety.Hold:
		level = zapcore.WarnLevel
	case out.Prev >= safety.Hold:
		level = zapcore.InfoLevel
	}
	if ce := c.log.Check(level, "safety state changed"); ce != nil {
		ce.Write(zap.Stringer("from", out.Prev), zap.Stringer("to", out.State), zap.Stringer("reason", out.Reason),
			zap.Duration("camera_age", ev.CameraAge), zap.Duration("state_age", ev.StateAge), zap.Bool("estop", c.st.Estop.Engaged))
	}
}

// publishSafety publishes the state on safety_state; after a failure it is tried again
// once a second from the cycle (another goroutine could publish an older state over a
// newer one).
func (c *controller) publishSafety(s safety.State, now time.Time) {
	if _, err := c.out.SafetyState(s.String()); err != nil {
		c.safetyRetry = now.Add(time.Second)
		c.hot.Warn("safety state not published; retrying every second", zap.Error(err))
		return
	}
	c.safetyRetry = time.Time{}
}

func age(now, stamp time.Time) time.Duration {
	if stamp.IsZero() {
		return rosio.Never
	}
	return now.Sub(stamp)
}

// safetyEvents returns the remembered safety changes, oldest first.
func (c *controller) safetyEvents() []safetyEvent {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	n := min(c.nEv, eventRing)
	out := make([]safetyEvent, 0, n)
	for i := c.nEv - n; i < c.nEv; i++ {
		out = append(out, c.events[i%eventRing])
	}
	return out
}

// safetyState is the last cycle's state and reason (any goroutine).
func (c *controller) safetyState() (safety.State, safety.Reason) {
	v := c.safetyNow.Load()
	return safety.State(v >> 8), safety.Reason(v & 0xff)
}

// swap makes m the running models, between two cycles.
func (c *controller) swap(m *models) {
	old := c.cur
	c.cur = m
	c.active.Store(m)
	c.lastFrame = time.Time{} // the next frame's reward comes from the new ensemble
	c.rewardValid = false
	c.metrics.SetModel("reward", m.rewardSHA, m.rewardPath)
	c.metrics.SetModel("policy", m.policySHA, m.policyPath)
	c.log.Info("models swapped in", zap.String("reward_sha256", m.rewardSHA), zap.String("policy_sha256", m.policySHA))
	if c.cfg.NonFiniteReset && c.filter.State() == safety.Stop && c.latch == safety.ReasonNonFinite {
		if err := c.filter.Reset(); err == nil {
			c.log.Info("safety: new policy; stop latched by non-finite actions released")
			c.latch = safety.ReasonNone
		}
	}
	old.close()
}

// serveReset answers a pending reset request (the reset_safety service) between cycles.
func (c *controller) serveReset() {
	select {
	case reply := <-c.resetReq:
		prev := c.filter.State()
		err := c.filter.Reset()
		if err == nil && prev == safety.Stop {
			c.log.Info("safety: stop released by the reset_safety service", zap.Stringer("latched_by", c.latch))
			c.latch = safety.ReasonNone
		}
		reply <- err
	default:
	}
}

// episode applies the transition log's episode rule (docs/daemon.md): a new episode
// starts when the goal first arrives and whenever it moves by more than goalTolerance;
// the observation's previous-step half restarts with it, as MetaWorld's reset does. A
// bag that has lasted log.chunk is closed and the episode goes on in a new one.
func (c *controller) episode(now time.Time, m *models) {
	g := &c.st.Goal
	if !g.Stamp.Valid() {
		return
	}
	if c.epOpen && math.Abs(g.Pos[0]-c.epGoal[0]) <= goalTolerance && math.Abs(g.Pos[1]-c.epGoal[1]) <= goalTolerance &&
		math.Abs(g.Pos[2]-c.epGoal[2]) <= goalTolerance {
		if c.rec != nil && c.cfg.Chunk > 0 && now.Sub(c.epStart) >= c.cfg.Chunk {
			c.epStart = now
			c.startBag(m)
		}
		return
	}
	c.epOpen, c.epGoal, c.epStart = true, g.Pos, now
	n := c.episodes.Add(1)
	c.builder.Reset()
	c.log.Info("episode started", zap.Uint64("episode", n), zap.Float64s("goal", g.Pos[:]))
	if c.rec != nil {
		c.startBag(m)
	}
}

func (c *controller) startBag(m *models) {
	meta := episode.Meta{Task: m.task, Policy: m.policySHA, Camera: c.cfg.ImageTopic, ActionScale: m.motion.Scale}
	if err := c.rec.StartEpisode(meta); err != nil {
		c.hot.Warn("transition log: episode not started", zap.Error(err))
	}
}

// record queues the cycle's transition for the log.
func (c *controller) record(now, sent time.Time, out safety.Output, action [4]float64, policyValid, cmdSent bool, vel [3]float64, grip float64) {
	st, f, tr := c.st, &c.frame, &c.tr
	tr.Time, tr.Sent = now, sent
	tr.Image = translog.Image{Stamp: f.Stamp.Header, Width: f.Width, Height: f.Height, Encoding: f.Encoding, Step: f.Step, Data: f.Data}
	tr.Hand = pose(&st.EEPose, c.cfg.Frame)
	tr.Joints = translog.Joints{Stamp: st.Joints.Stamp.Header, Name: st.Joints.Names, Position: st.Joints.Position}
	if st.Joints.HasVelocity {
		tr.Joints.Velocity = st.Joints.Velocity
	}
	for i := 0; i < st.NumObjects; i++ {
		c.objs[i] = translog.Object{Name: c.cur.objects[i].Name, Pose: pose(&st.Objects[i], c.cfg.Frame)}
	}
	tr.Objects = c.objs[:st.NumObjects]
	tr.Goal = pose(&st.Goal, c.cfg.Frame)
	tr.Command = translog.Command{Valid: cmdSent, Stamp: now, FrameID: c.cfg.Frame, Vel: vel, Grip: grip}
	tr.Policy, tr.PolicyValid = [4]float64{}, policyValid
	if policyValid {
		tr.Policy = action
	}
	tr.Reward, tr.RewardValid = c.reward, c.rewardValid && c.camStamp.Equal(f.Stamp.Received)
	tr.Safety = translog.Safety{Level: level(out.State), Reason: out.Reason.String(), Estop: st.Estop.Engaged}
	c.rec.Record(tr) // a full queue drops it; the diagnostics goroutine counts drops from the log's stats
}

func pose(p *rosio.Pose, frame string) translog.Pose {
	return translog.Pose{Valid: p.Stamp.Valid(), Stamp: p.Stamp.Header, FrameID: frame, Pos: p.Pos, Quat: p.Quat}
}

func level(s safety.State) translog.SafetyLevel {
	switch s {
	case safety.OK:
		return translog.SafetyOK
	case safety.Clipped:
		return translog.SafetyLimited
	default:
		return translog.SafetyStopped
	}
}

// stop latches the filter's Stop and commands it: the first step of shutdown, on the
// loop's goroutine after the loop has returned.
func (c *controller) stop(now time.Time) error {
	out := c.filter.Stop()
	vel, grip := c.cur.motion.Command(out.Command)
	err := c.out.Command(now, vel, grip)
	if out.Changed {
		c.changed(out, now, c.stateStamp(), 0)
	}
	return err
}
