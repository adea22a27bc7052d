// Package bridge runs the simulator as a ROS node: it publishes a MetaWorld task's camera,
// robot state, ground-truth object poses, goal, observation and episode status on the
// topics of control/rosiface (built by sim/simros, so they equal a recorded episode's),
// applies velocity and gripper commands with the action mapping policies are trained with,
// and offers sim/reset. See docs/bridge.md.
//
// Two modes:
//   - real time: a tick every control period on absolute wall-clock deadlines; each tick
//     applies the latest command (zero velocity when it is older than CommandTimeout),
//     steps, renders and publishes. Stamps are wall-clock time. A camera slower than the
//     control rate (CameraRate) renders the latest state on its own deadlines instead.
//   - lockstep: one control period per received velocity command (paired with the
//     gripper command of the same cycle); /clock carries the simulated time and
//     /use_sim_time is set, so a test drives the simulator deterministically.
//
// The ROS side is a rosnode.Node, so the bridge reads ROS_MASTER_URI and ROS_IP /
// ROS_HOSTNAME and re-registers by itself after a rosmaster restart.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/rosgraph_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/sim/metaworld"
	"robodistill/sim/mujoco"
	"robodistill/sim/simros"
)

// Config configures a Bridge.
type Config struct {
	Task *metaworld.Task
	// Env configures the environment; Rate defaults to 50 Hz (the daemon's).
	Env metaworld.Options
	// Namespace prefixes every topic (rosiface.DefaultTopics).
	Namespace string
	// Camera is the camera rendered on camera/image_raw; "" publishes no images.
	Camera string
	// Size is the image's width and height in pixels.
	Size int
	// CameraRate (real time) is the camera's frame rate in Hz, 1 to the control rate;
	// 0 means the control rate: one image with every state, sharing its stamp and seq.
	// A slower camera publishes images on their own absolute schedule (start + k/CameraRate),
	// each rendered from the latest state and stamped when it is ready, as a camera that
	// is not synchronised with the arm's controller would.
	CameraRate int
	// Lockstep advances one control period per command instead of following the clock.
	Lockstep bool
	// CommandTimeout (real time): a velocity command older than this is treated as zero
	// velocity. Default 250 ms.
	CommandTimeout time.Duration
	// PairWait (lockstep): how long a step waits for the cycle's gripper command after
	// its velocity command before stepping with the previous gripper effort. Default 50 ms.
	PairWait time.Duration
	// Seed is the first episode's seed; later episodes take ~seed (see Bridge.reset).
	Seed uint64
	// AutoReset starts the next episode (seed from ~seed) when one reaches its length,
	// instead of waiting for sim/reset.
	AutoReset bool
	// Node is the ROS node's configuration (rosnode.FromEnv); Name defaults to
	// "sim_bridge", Namespace to the topic namespace.
	Node rosnode.Config
}

// MaxSeed is the largest seed: ~seed is a ROS integer parameter (XML-RPC i4).
const MaxSeed = math.MaxInt32

func (c Config) withDefaults() Config {
	if c.Env.Rate == 0 {
		c.Env.Rate = metaworld.Rate50
	}
	if c.CameraRate == 0 {
		c.CameraRate = c.Env.Rate
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 250 * time.Millisecond
	}
	if c.PairWait == 0 {
		c.PairWait = 50 * time.Millisecond
	}
	if c.Node.Name == "" {
		c.Node.Name = "sim_bridge"
	}
	if c.Node.Namespace == "" || c.Node.Namespace == "/" {
		c.Node.Namespace = rosiface.DefaultTopics(c.Namespace).Namespace
	}
	return c
}

// Validate checks c; each error names the setting (as the CLI's flag).
func (c Config) Validate() error {
	var errs []error
	if c.Task == nil {
		errs = append(errs, errors.New("task: required"))
	}
	if c.Env.Rate != metaworld.Rate50 && c.Env.Rate != metaworld.Rate80 {
		errs = append(errs, fmt.Errorf("rate: %d Hz not supported (50 or 80)", c.Env.Rate))
	}
	if c.Camera != "" && (c.Size < 1 || c.Size > mujoco.MaxRenderSize) {
		errs = append(errs, fmt.Errorf("size: %d outside 1..%d", c.Size, mujoco.MaxRenderSize))
	}
	switch {
	case c.CameraRate < 0 || c.CameraRate > c.Env.Rate && c.Env.Rate > 0:
		errs = append(errs, fmt.Errorf("camera-rate: %d Hz outside 1..%d (the control rate)", c.CameraRate, c.Env.Rate))
	case c.Lockstep && c.CameraRate != 0 && c.CameraRate != c.Env.Rate:
		errs = append(errs, fmt.Errorf("camera-rate: %d Hz with lockstep, which publishes an image with every step", c.CameraRate))
	}
	if c.CommandTimeout < 0 {
		errs = append(errs, fmt.Errorf("cmd-timeout: %v is negative", c.CommandTimeout))
	}
	if c.PairWait < 0 {
		errs = append(errs, fmt.Errorf("pair-wait: %v is negative", c.PairWait))
	}
	if c.Seed > MaxSeed {
		errs = append(errs, fmt.Errorf("seed: %d above %d (~seed is a ROS integer parameter)", c.Seed, MaxSeed))
	}
	if err := c.Node.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	return errors.Join(errs...)
}

// Stats are the bridge's counters.
type Stats struct {
	Steps    uint64 `json:"steps"`
	Episodes uint64 `json:"episodes"`
	// Published counts published states (one pose, joint state, … each); Images counts
	// published camera frames (as many as states unless CameraRate is below the control
	// rate).
	Published uint64 `json:"published"`
	Images    uint64 `json:"images"`
	// Overruns counts real-time ticks whose work ended after the next deadline;
	// SkippedTicks the ticks dropped because the loop was a whole period or more late.
	Overruns     uint64 `json:"overruns"`
	SkippedTicks uint64 `json:"skipped_ticks"`
	// IdleSteps counts real-time steps with no velocity command fresher than
	// CommandTimeout (applied as zero velocity).
	IdleSteps uint64 `json:"idle_steps"`
	// UnpairedSteps counts lockstep steps taken without a new gripper command (after
	// PairWait); Coalesced counts velocity commands replaced by a newer one before a step
	// used them.
	UnpairedSteps uint64 `json:"unpaired_steps"`
	Coalesced     uint64 `json:"coalesced"`
	// Malformed commands (non-finite values, wrong frame), dropped and treated as no
	// command.
	MalformedVel  uint64 `json:"malformed_cmd_vel"`
	MalformedGrip uint64 `json:"malformed_gripper"`
	// GoroslibErrors counts errors goroslib reported, chiefly messages that do not decode
	// (wrong sizes): goroslib drops such a peer's connection before the bridge sees the
	// message and retries it after 5 s.
	GoroslibErrors uint64 `json:"goroslib_errors"`
	// Ignored counts commands received while the episode was over.
	Ignored uint64 `json:"ignored"`
	// WorkP50 and WorkP99 are the step + render + publish time per tick over the last
	// 1024 ticks.
	WorkP50 time.Duration `json:"work_p50_ns"`
	WorkP99 time.Duration `json:"work_p99_ns"`
	// With a camera on its own schedule: render + publish time per image over the last
	// 1024 images (WorkP50/P99 then cover step + publish only), and the camera deadlines
	// given up because the loop was a whole camera period or more late (a camera drops
	// frames; it does not catch up).
	ImageWorkP50  time.Duration `json:"image_work_p50_ns"`
	ImageWorkP99  time.Duration `json:"image_work_p99_ns"`
	CameraSkipped uint64        `json:"camera_skipped"`
	Node          rosnode.Stats `json:"-"`
	// Reregistrations counts recoveries from rosmaster restarts.
	Reregistrations uint64 `json:"reregistrations"`
}

// Bridge is a running sim bridge.
type Bridge struct {
	cfg    Config
	log    *zap.Logger
	hot    *zap.Logger // sampled: per-message and per-tick problems
	topics rosiface.Topics
	node   *rosnode.Node
	sim    *Sim // owned by the loop goroutine after New
	in     *inputs

	pubs  map[string]*rosnode.Publisher // loop goroutine
	clock *rosnode.Publisher
	latch bool

	resets    chan resetReq
	republish chan struct{}
	nextSeed  atomic.Uint64
	simTime   time.Time // lockstep clock, loop goroutine

	cancel context.CancelFunc
	g      *errgroup.Group
	done   chan struct{}
	err    error // set before done closes

	steps, episodes, published, overruns, skipped, idle, unpaired, coalesced atomic.Uint64
	malVel, malGrip, ignored, images, camSkipped                             atomic.Uint64

	workMu    sync.Mutex
	work      workRing    // step (+ render) + publish per control tick
	imageWork workRing    // render + publish per image on the camera's own schedule
	setClock  atomic.Bool // lockstep set /use_sim_time
}

type resetReq struct {
	seed  uint64
	reply chan error
}

// simEpoch is lockstep's time zero: 1 s, because ROS treats a zero time as "not yet
// received".
var simEpoch = time.Unix(1, 0)

// New loads the task, starts the first episode with cfg.Seed and starts the ROS node and
// the loop. It returns once the simulator is ready; the node registers with the master
// as soon as the master answers.
func New(cfg Config, log *zap.Logger) (*Bridge, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge.New: %w", err)
	}
	b := &Bridge{
		cfg:       cfg,
		topics:    rosiface.DefaultTopics(cfg.Namespace),
		in:        newInputs(),
		pubs:      map[string]*rosnode.Publisher{},
		latch:     cfg.Lockstep,
		resets:    make(chan resetReq),
		republish: make(chan struct{}, 1),
		simTime:   simEpoch,
		done:      make(chan struct{}),
	}
	b.log = log.With(zap.String("task", cfg.Task.Name), zap.Bool("lockstep", cfg.Lockstep))
	b.hot = b.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, 5*time.Second, 1, 0)
	}))
	var err error
	if b.sim, err = NewSim(cfg.Task, cfg.Env, b.topics, cfg.Camera, cfg.Size); err != nil {
		return nil, err
	}
	if err := b.sim.Reset(cfg.Seed); err != nil {
		b.sim.Close()
		return nil, err
	}
	b.episodes.Store(1)
	b.nextSeed.Store(cfg.Seed + 1)
	if b.node, err = rosnode.New(cfg.Node, log); err != nil {
		b.sim.Close()
		return nil, fmt.Errorf("bridge.New: %w", err)
	}
	if err := b.declare(); err != nil {
		b.node.Close()
		b.sim.Close()
		return nil, fmt.Errorf("bridge.New: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	g, ctx := errgroup.WithContext(ctx)
	b.g = g
	g.Go(func() error {
		if cfg.Lockstep {
			return b.runLockstep(ctx)
		}
		return b.runRealtime(ctx)
	})
	g.Go(func() error {
		select {
		case <-b.node.Done():
			return b.node.Err()
		case <-ctx.Done():
			return nil
		}
	})
	go func() {
		b.err = g.Wait()
		close(b.done)
	}()
	b.log.Info("sim bridge started", zap.String("namespace", b.topics.Namespace), zap.String("node", b.node.Name()),
		zap.Int("rate", b.sim.Env().Rate()), zap.String("camera", cfg.Camera), zap.Int("size", cfg.Size),
		zap.Int("camera_rate", cfg.CameraRate), zap.Uint64("seed", cfg.Seed))
	return b, nil
}

// declare sets up every publisher (from the first state's messages), the command
// subscribers, sim/reset, and the hook that restores parameters after (re)registration.
func (b *Bridge) declare() error {
	f, err := b.sim.Frame()
	if err != nil {
		return err
	}
	for _, m := range b.sim.Messages(simEpoch, f) {
		if _, err := b.publisher(m.Topic, m.Msg); err != nil {
			return err
		}
	}
	if b.cfg.Lockstep {
		if b.clock, err = b.node.Advertise(b.topics.Clock, &rosgraph_msgs.Clock{}, true); err != nil {
			return err
		}
	}
	if err := b.node.Subscribe(b.topics.CmdVel, b.onTwist, 0); err != nil {
		return err
	}
	if err := b.node.Subscribe(b.topics.Gripper, b.onGripper, 0); err != nil {
		return err
	}
	if err := b.node.Serve(b.topics.Reset, &std_srvs.Trigger{}, b.onReset); err != nil {
		return err
	}
	b.node.OnConnect(b.onConnect)
	return nil
}

func (b *Bridge) publisher(topic string, msg any) (*rosnode.Publisher, error) {
	if p := b.pubs[topic]; p != nil {
		return p, nil
	}
	p, err := b.node.Advertise(topic, msg, b.latch)
	if err != nil {
		return nil, err
	}
	b.pubs[topic] = p
	return p, nil
}

// onConnect runs after every registration: a restarted master has lost the parameters.
func (b *Bridge) onConnect() error {
	if err := b.node.ParamSetInt("~seed", int(b.nextSeed.Load())); err != nil {
		return fmt.Errorf("set ~seed: %w", err)
	}
	if b.cfg.Lockstep {
		if err := b.node.ParamSetBool("/use_sim_time", true); err != nil {
			return fmt.Errorf("set /use_sim_time: %w", err)
		}
		b.setClock.Store(true)
	}
	select {
	case b.republish <- struct{}{}:
	default:
	}
	return nil
}

func (b *Bridge) onTwist(m *geometry_msgs.TwistStamped) {
	v, err := ParseTwist(m)
	if err != nil {
		n := b.malVel.Add(1)
		b.hot.Warn("malformed velocity command dropped", zap.String("topic", b.topics.CmdVel), zap.Error(err), zap.Uint64("total", n))
		return
	}
	b.in.setVel(v, time.Now())
}

func (b *Bridge) onGripper(m *std_msgs.Float64) {
	g, err := ParseGripper(m)
	if err != nil {
		n := b.malGrip.Add(1)
		b.hot.Warn("malformed gripper command dropped", zap.String("topic", b.topics.Gripper), zap.Error(err), zap.Uint64("total", n))
		return
	}
	b.in.setGrip(g, time.Now())
}

// onReset serves sim/reset. ~seed is the seed of the next episode: the reset reads it (a
// value set with `rosparam set` is used as is), starts the episode, and writes seed+1
// back.
func (b *Bridge) onReset(*std_srvs.TriggerReq) (*std_srvs.TriggerRes, bool) {
	seed, err := b.seedParam()
	if err != nil {
		return &std_srvs.TriggerRes{Success: false, Message: err.Error()}, true
	}
	if err := b.requestReset(seed); err != nil {
		return &std_srvs.TriggerRes{Success: false, Message: err.Error()}, true
	}
	return &std_srvs.TriggerRes{Success: true, Message: fmt.Sprintf("episode %d started with seed %d", b.episodes.Load(), seed)}, true
}

// seedParam reads ~seed, falling back to the bridge's own counter when it is not set
// (e.g. while the master is down).
func (b *Bridge) seedParam() (uint64, error) {
	set, err := b.node.ParamIsSet("~seed")
	if err != nil || !set {
		return b.nextSeed.Load(), nil
	}
	v, err := b.node.ParamGetInt("~seed")
	if err != nil {
		return 0, fmt.Errorf("~seed: %w (want an integer 0..%d)", err, MaxSeed)
	}
	if v < 0 || v > MaxSeed {
		return 0, fmt.Errorf("~seed: %d outside 0..%d", v, MaxSeed)
	}
	return uint64(v), nil
}

// requestReset hands a reset to the loop and waits for it.
func (b *Bridge) requestReset(seed uint64) error {
	r := resetReq{seed: seed, reply: make(chan error, 1)}
	select {
	case b.resets <- r:
	case <-b.done:
		return errors.New("bridge closed")
	}
	select {
	case err := <-r.reply:
		if err != nil {
			return err
		}
	case <-b.done:
		return errors.New("bridge closed")
	}
	next := min(seed+1, MaxSeed)
	b.nextSeed.Store(next)
	if err := b.node.ParamSetInt("~seed", int(next)); err != nil {
		b.hot.Warn("cannot write ~seed", zap.Error(err))
	}
	return nil
}

// reset runs in the loop goroutine.
func (b *Bridge) reset(seed uint64) error {
	if err := b.sim.Reset(seed); err != nil {
		return err
	}
	b.in.clear()
	b.episodes.Add(1)
	b.log.Info("episode reset", zap.Uint64("seed", seed), zap.Uint64("episode", b.episodes.Load()))
	return nil
}

// ownCamera reports whether images run on their own schedule (a real-time camera slower
// than the control rate) rather than with every state.
func (b *Bridge) ownCamera() bool {
	return b.cfg.Camera != "" && !b.cfg.Lockstep && b.cfg.CameraRate < b.sim.Env().Rate()
}

// publish renders and publishes the current state. Lockstep stamps it with the simulated
// time (and publishes /clock first, so nodes on sim time see the time advance before its
// messages); real time stamps it with the wall-clock time at which the frame is ready,
// just before publishing, as a camera driver stamps at readout. With a camera on its own
// schedule the state goes without an image (publishImage sends those).
func (b *Bridge) publish() error {
	var f *simros.Frame
	if !b.ownCamera() {
		var err error
		if f, err = b.sim.Frame(); err != nil {
			return err
		}
	}
	stamp := b.simTime
	if b.clock != nil {
		b.clock.Write(&rosgraph_msgs.Clock{Clock: stamp})
	} else {
		stamp = time.Now()
	}
	for _, m := range b.sim.Messages(stamp, f) {
		p, err := b.publisher(m.Topic, m.Msg)
		if err != nil {
			return err
		}
		if err := p.Write(m.Msg); err != nil && !errors.Is(err, rosnode.ErrNotConnected) {
			return err
		}
	}
	b.published.Add(1)
	if f != nil {
		b.images.Add(1)
	}
	return nil
}

// publishImage renders the latest state and publishes it as the camera's frame, stamped
// when it is ready (real time, camera on its own schedule).
func (b *Bridge) publishImage() error {
	f, err := b.sim.Frame()
	if err != nil {
		return err
	}
	for _, m := range b.sim.ImageMessages(time.Now(), f) {
		p, err := b.publisher(m.Topic, m.Msg)
		if err != nil {
			return err
		}
		if err := p.Write(m.Msg); err != nil && !errors.Is(err, rosnode.ErrNotConnected) {
			return err
		}
	}
	b.images.Add(1)
	return nil
}

// step applies c, logging (not failing on) a simulation error: the episode then ends.
func (b *Bridge) step(c Command) {
	if err := b.sim.Step(c); err != nil {
		if errors.Is(err, ErrEpisodeOver) {
			return
		}
		b.hot.Error("simulation failed; the episode is over, call sim/reset", zap.Error(err))
		return
	}
	b.steps.Add(1)
	if b.sim.Status().Truncated && b.cfg.AutoReset {
		go func() {
			seed, err := b.seedParam()
			if err == nil {
				err = b.requestReset(seed)
			}
			if err != nil {
				b.hot.Warn("auto-reset failed", zap.Error(err))
			}
		}()
	}
}

// workRing keeps the last durations of some work, for its quantiles.
type workRing struct {
	d [1024]time.Duration
	n int
}

func (r *workRing) add(d time.Duration) {
	r.d[r.n%len(r.d)] = d
	r.n++
}

// quantiles returns the median and the 99th percentile (zero when empty).
func (r *workRing) quantiles() (p50, p99 time.Duration) {
	n := min(r.n, len(r.d))
	if n == 0 {
		return 0, 0
	}
	w := append([]time.Duration(nil), r.d[:n]...)
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	return w[n/2], w[min(n-1, n*99/100)]
}

func (b *Bridge) recordWork(d time.Duration) {
	b.workMu.Lock()
	b.work.add(d)
	b.workMu.Unlock()
}

func (b *Bridge) recordImageWork(d time.Duration) {
	b.workMu.Lock()
	b.imageWork.add(d)
	b.workMu.Unlock()
}

// runRealtime ticks on absolute deadlines: control ticks every period and, with a camera
// on its own schedule, camera ticks every camera period, both on grids from the same
// start. When both are due, the control tick runs first, so the image shows the state
// just stepped.
func (b *Bridge) runRealtime(ctx context.Context) error {
	period := b.sim.Period()
	if err := b.publish(); err != nil {
		return err
	}
	start := time.Now()
	p := newPacer(start, period)
	nextCtl := start.Add(period)
	var cam *pacer
	var nextCam time.Time
	if b.ownCamera() {
		if err := b.publishImage(); err != nil {
			return err
		}
		// A late camera frame is sent at once, but a camera a whole period behind drops
		// the missed frames instead of sending them back to back.
		cam = newPacer(start, time.Second/time.Duration(b.cfg.CameraRate))
		cam.maxLag = 1
		nextCam = cam.deadline(1)
	}
	timer := time.NewTimer(period)
	defer timer.Stop()
	var lastVel uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-b.resets:
			err := b.reset(r.seed)
			if err == nil {
				err = b.publish()
			}
			r.reply <- err
			continue
		case <-b.republish:
			continue
		case <-timer.C:
		}
		if cam != nil && time.Now().Before(nextCtl) {
			if err := b.cameraTick(cam, &nextCam); err != nil {
				return err
			}
			timer.Reset(time.Until(earliest(nextCtl, nextCam)))
			continue
		}
		start := time.Now()
		s := b.in.snapshot()
		c := Command{Grip: s.grip}
		fresh := !s.velAt.IsZero() && start.Sub(s.velAt) <= b.cfg.CommandTimeout
		if fresh {
			c.Vel = s.vel
		}
		switch {
		case b.sim.Status().Truncated:
			b.ignored.Add(s.velSeq - lastVel)
		case !fresh:
			b.idle.Add(1)
			b.step(c)
		default:
			b.step(c)
		}
		lastVel = s.velSeq
		if err := b.publish(); err != nil {
			return err
		}
		now := time.Now()
		b.recordWork(now.Sub(start))
		nextCtl = p.next(now)
		b.overruns.Store(p.overruns)
		b.skipped.Store(p.skipped)
		if cam == nil {
			timer.Reset(time.Until(nextCtl))
			continue
		}
		if !now.Before(nextCam) {
			if err := b.cameraTick(cam, &nextCam); err != nil {
				return err
			}
		}
		timer.Reset(time.Until(earliest(nextCtl, nextCam)))
	}
}

// cameraTick renders and publishes an image and moves *next to the camera's next
// deadline.
func (b *Bridge) cameraTick(cam *pacer, next *time.Time) error {
	start := time.Now()
	if err := b.publishImage(); err != nil {
		return err
	}
	now := time.Now()
	b.recordImageWork(now.Sub(start))
	*next = cam.next(now)
	b.camSkipped.Store(cam.skipped)
	return nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// runLockstep steps once per velocity command. A step waits for the cycle's gripper
// command too (up to PairWait after the velocity command), because the two topics arrive
// over separate connections in either order.
func (b *Bridge) runLockstep(ctx context.Context) error {
	var lastVel, lastGrip uint64
	pair := time.NewTimer(time.Hour)
	pair.Stop()
	defer pair.Stop()
	period := b.sim.Period()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-b.resets:
			b.simTime = b.simTime.Add(period)
			err := b.reset(r.seed)
			if err == nil {
				s := b.in.snapshot()
				lastVel, lastGrip = s.velSeq, s.gripSeq
				err = b.publish()
			}
			r.reply <- err
			continue
		case <-b.republish:
			if err := b.publish(); err != nil {
				return err
			}
			continue
		case <-b.in.notify:
		case <-pair.C:
		}
		s := b.in.snapshot()
		if s.velSeq == lastVel {
			continue
		}
		if s.gripSeq == lastGrip {
			if wait := b.cfg.PairWait - time.Since(s.velAt); wait > 0 {
				pair.Reset(wait)
				continue
			}
			b.unpaired.Add(1)
			b.hot.Info("lockstep: stepping without a gripper command for this cycle (send one per step)")
		}
		if n := s.velSeq - lastVel; n > 1 {
			b.coalesced.Add(n - 1)
		}
		lastVel, lastGrip = s.velSeq, s.gripSeq
		start := time.Now()
		if b.sim.Status().Truncated {
			b.ignored.Add(1)
		} else {
			b.step(Command{Vel: s.vel, Grip: s.grip})
			b.simTime = b.simTime.Add(period)
		}
		if err := b.publish(); err != nil {
			return err
		}
		b.recordWork(time.Since(start))
	}
}

// Done is closed when the bridge stops by itself (a fatal error, or the node was shut
// down) or after Close.
func (b *Bridge) Done() <-chan struct{} { return b.done }

// Node is the bridge's ROS node.
func (b *Bridge) Node() *rosnode.Node { return b.node }

// Topics are the bridge's topic names.
func (b *Bridge) Topics() rosiface.Topics { return b.topics }

// Motion is the action <-> velocity mapping the bridge applies.
func (b *Bridge) Motion() rosiface.Motion { return b.sim.Motion() }

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Steps: b.steps.Load(), Episodes: b.episodes.Load(), Published: b.published.Load(),
		Overruns: b.overruns.Load(), SkippedTicks: b.skipped.Load(), IdleSteps: b.idle.Load(),
		UnpairedSteps: b.unpaired.Load(), Coalesced: b.coalesced.Load(),
		MalformedVel: b.malVel.Load(), MalformedGrip: b.malGrip.Load(), Ignored: b.ignored.Load(),
		Images: b.images.Load(), CameraSkipped: b.camSkipped.Load(), Node: b.node.Stats(),
	}
	s.GoroslibErrors = s.Node.GoroslibErrors
	if s.Node.Registrations > 1 {
		s.Reregistrations = s.Node.Registrations - 1
	}
	b.workMu.Lock()
	s.WorkP50, s.WorkP99 = b.work.quantiles()
	s.ImageWorkP50, s.ImageWorkP99 = b.imageWork.quantiles()
	b.workMu.Unlock()
	return s
}

// Close stops the loop, removes /use_sim_time if the bridge set it, unregisters the node
// and frees the simulator. It returns the error that stopped the bridge early, if any.
func (b *Bridge) Close() error {
	b.cancel()
	<-b.done
	var errs []error
	if b.err != nil {
		errs = append(errs, b.err)
	}
	if b.setClock.Load() {
		if err := b.node.ParamDelete("/use_sim_time"); err != nil {
			b.log.Warn("cannot remove /use_sim_time", zap.Error(err))
		}
	}
	if err := b.node.Close(); err != nil && !errors.Is(err, b.err) {
		errs = append(errs, err)
	}
	b.sim.Close()
	st := b.Stats()
	b.log.Info("sim bridge stopped", zap.Uint64("steps", st.Steps), zap.Uint64("episodes", st.Episodes),
		zap.Uint64("overruns", st.Overruns), zap.Uint64("malformed", st.MalformedVel+st.MalformedGrip),
		zap.Uint64("reregistrations", st.Reregistrations))
	return errors.Join(errs...)
}
