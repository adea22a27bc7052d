package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"robodistill/control/loop"
	"robodistill/control/rosnode"
	"robodistill/control/safety"
	"robodistill/daemon/config"
	"robodistill/daemon/obs"
	"robodistill/daemon/rosio"
	"robodistill/daemon/translog"
)

const (
	// shutdownBudget is how long the daemon takes from noticing SIGTERM to returning:
	// systemd's stop timeout is longer, the issue asks for 2 s.
	shutdownBudget = 1900 * time.Millisecond
	// logBudget is the part of it the transition log gets to drain.
	logBudget = 1200 * time.Millisecond
	// deliverStop is how long the stop command gets to reach subscribers before the node
	// closes its connections.
	deliverStop = 100 * time.Millisecond
	// nodeCloseWait bounds the wait for the ROS node to close. Its publishers and
	// subscribers unregister from rosmaster at once, but a goroslib node's own Close can
	// take 5 s (its slave API server waits for idle connections peers left open); the
	// process is about to exit, so it is left to finish.
	nodeCloseWait = 500 * time.Millisecond
	// nodeCheckInterval is how often the node asks rosmaster whether it still knows it:
	// a restarted master is noticed within this after it answers.
	nodeCheckInterval = 200 * time.Millisecond
	// nodeCallTimeout bounds each call to rosmaster, so that a master that hangs cannot
	// hold up shutdown for long.
	nodeCallTimeout = time.Second
	// statusEvery is how often a waiting start-up refreshes its systemd status; the log
	// repeats the wait every waitLogEvery.
	statusEvery  = 2 * time.Second
	waitLogEvery = 10 * time.Second
	// diagEvery is the diagnostics topic's period (ROS's custom is 1 Hz).
	diagEvery = time.Second
	// loopWindow is how many recent cycles the diagnostics' exact quantiles cover.
	loopWindow = 1024
)

// Daemon is robodistilld: New checks the configuration and builds the telemetry, Run
// starts everything else and controls until its context ends.
type Daemon struct {
	cfg      config.Config
	log      *zap.Logger
	metrics  *obs.Metrics
	health   *obs.Health
	notifier *obs.Notifier
	reloads  *prometheus.CounterVec

	reloadReq chan struct{}
	ready     chan struct{}
	started   atomic.Bool
	httpAddr  atomic.Pointer[string]
	ctl       atomic.Pointer[controller] // set once control starts
	pending   atomic.Pointer[models]     // a reloaded set waiting for the next cycle
	lp        atomic.Pointer[loop.Loop]
	node      atomic.Pointer[rosnode.Node]
}

// New validates cfg and builds the daemon's metrics, health check and systemd notifier.
// Nothing starts until Run.
func New(cfg config.Config, log *zap.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("core.New: %w", err)
	}
	states := make([]string, safety.EStop+1)
	for s := range states {
		states[s] = safety.State(s).String()
	}
	reasons := make([]string, safety.ReasonStopped+1)
	for r := range reasons {
		reasons[r] = safety.Reason(r).String()
	}
	m, err := obs.NewMetrics(obs.MetricsOptions{SafetyStates: states, TransitionReasons: reasons})
	if err != nil {
		return nil, fmt.Errorf("core.New: %w", err)
	}
	h, err := obs.NewHealth(m, cfg.Loop.Period(), cfg.HTTP.HealthPeriods, nil)
	if err != nil {
		return nil, fmt.Errorf("core.New: %w", err)
	}
	n, err := obs.NewNotifier()
	if err != nil {
		return nil, fmt.Errorf("core.New: %w", err)
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: obs.Namespace, Name: "model_reloads_total",
		Help: "Model reloads by result: swapped (new models running), unchanged (same files), rejected (failed a check; the running models stay).",
	}, []string{"result"})
	for _, r := range []string{"swapped", "unchanged", "rejected"} {
		reloads.WithLabelValues(r)
	}
	if err := m.Registry().Register(reloads); err != nil {
		return nil, fmt.Errorf("core.New: %w", err)
	}
	return &Daemon{cfg: cfg, log: log, metrics: m, health: h, notifier: n, reloads: reloads,
		reloadReq: make(chan struct{}, 1), ready: make(chan struct{})}, nil
}

// Reload asks the running daemon to load its models again (SIGHUP). It returns at once;
// the models are loaded and checked in the background and swapped in between two
// cycles, or rejected with the running ones kept. Requests made while a load is under
// way lead to one more load after it.
func (d *Daemon) Reload() {
	select {
	case d.reloadReq <- struct{}{}:
	default:
	}
}

// Ready is closed once the daemon controls (after READY=1 went to systemd).
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// HTTPAddr is the address /metrics and /healthz are served on ("" before Run has bound
// it, or when http.listen is empty).
func (d *Daemon) HTTPAddr() string {
	if p := d.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// Metrics are the daemon's metrics.
func (d *Daemon) Metrics() *obs.Metrics { return d.metrics }

// status tells systemd (and the debug log) what the daemon is doing.
func (d *Daemon) status(s string) {
	if err := d.notifier.Status(s); err != nil {
		d.log.Warn("systemd status not sent", zap.Error(err))
	}
	d.log.Debug("status", zap.String("status", s))
}

// Run starts the daemon and controls until ctx ends; then it stops the arm, drains the
// transition log and returns nil within about 2 s. Start-up: load and check the models,
// bind the HTTP endpoint, open the transition log, join ROS (waiting for rosmaster as
// long as it takes), wait for the first camera frame and robot state, report READY=1,
// and run the loop. An error means the daemon could not start or stopped by itself (a
// model refused at start wraps ErrModel). Run can be called once.
func (d *Daemon) Run(ctx context.Context) (err error) {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("core: Run called twice")
	}
	cfg := d.cfg
	d.status("loading models")
	first, err := loadModels(cfg)
	if err != nil {
		return err
	}
	if _, known := objectsFor(first.task); !known {
		d.log.Warn("policy task unknown; assuming MetaWorld's free-object quaternion layout (xyzw)", zap.String("task", first.task))
	}
	d.log.Info("models loaded", zap.String("reward", first.rewardPath), zap.String("reward_sha256", first.rewardSHA),
		zap.Int("reward_members", first.reward.Size()), zap.String("policy", first.policyPath), zap.String("policy_sha256", first.policySHA),
		zap.String("task", first.task), zap.Int("rate_hz", first.motion.Rate), zap.Float64("action_scale_m", first.motion.Scale))
	running := first // the set to close at the end
	defer func() {
		if c := d.ctl.Load(); c != nil {
			running = c.cur
		}
		running.close()
		d.pending.Swap(nil).close()
	}()

	// /metrics and /healthz (503 "starting" until the first cycle) are served from here
	// on, so that a start-up waiting for rosmaster can be watched.
	srv := &httpServer{done: make(chan struct{})}
	if cfg.HTTP.Listen != "" {
		s, err := obs.Listen(cfg.HTTP.Listen, obs.NewHandler(d.metrics, d.health, cfg.HTTP.PProf))
		if err != nil {
			return fmt.Errorf("core: http.listen: %w", err)
		}
		addr := s.Addr()
		d.httpAddr.Store(&addr)
		d.log.Info("serving /metrics and /healthz", zap.String("addr", addr))
		var sctx context.Context
		sctx, srv.stop = context.WithCancel(context.Background())
		go func() {
			srv.err = s.Run(sctx)
			close(srv.done)
		}()
	} else {
		close(srv.done)
	}
	var tl *translog.Log
	if cfg.Log.Enabled {
		tl, err = translog.New(translog.Config{Dir: cfg.Log.Dir, Namespace: cfg.ROS.Namespace,
			Slots: min(max(cfg.Log.Queue+4, 8), 1<<16), Rate: cfg.Loop.RateHz}, d.log.Named("translog"))
		if err != nil {
			srv.close()
			return fmt.Errorf("core: log.dir: %w", err)
		}
	}

	rcfg := rosioConfig(cfg, first.objects)
	node, in, out, b, err := d.joinROS(rcfg)
	if err != nil {
		srv.close()
		closeLog(tl, time.Now().Add(logBudget), d.log)
		return err
	}
	d.node.Store(node)

	// Everything below ends through shutdown, which stops the arm first.
	var ctl *controller
	var stopSent time.Time
	defer func() {
		err = errors.Join(err, d.shutdown(ctl, stopSent, tl, node, srv))
	}()

	st := in.NewState()
	if err := d.waitROS(ctx, node, cfg.ROS.MasterURI); err != nil {
		return cancelled(ctx, err)
	}
	if err := d.waitInputs(ctx, in, st, rcfg); err != nil {
		return cancelled(ctx, err)
	}

	filter, err := safety.New(safetyConfig(cfg, first.motion.Scale))
	if err != nil {
		return fmt.Errorf("core: safety: %w", err)
	}
	lp, err := loop.New(loop.Config{Rate: float64(cfg.Loop.RateHz), Spin: cfg.Loop.Spin(), Window: loopWindow,
		Priority: cfg.Loop.RealtimePriority, Scheduled: d.scheduled}, nil)
	if err != nil {
		return fmt.Errorf("core: loop: %w", err)
	}
	d.lp.Store(lp)
	var rec recorder
	if tl != nil {
		rec = tl
	}
	topics := in.Topics()
	ctl = newController(cycleConfig{
		Period:       cfg.Loop.Period(),
		CameraMaxAge: cfg.Safety.CameraMaxAge, StateMaxAge: cfg.Safety.StateMaxAge,
		CameraWidth: cfg.Vision.CameraWidth, CameraHeight: cfg.Vision.CameraHeight, CameraEncoding: cfg.Vision.CameraEncoding,
		Frame: rcfg.Frame, Chunk: cfg.Log.Chunk, ImageTopic: topics.Image,
		StaleStopResume: true, NonFiniteReset: true,
	}, in, st, out, rec, b, filter, d.metrics, first, &d.pending, d.log.Named("control"))
	d.ctl.Store(ctl)

	if err := d.notifier.Ready(); err != nil {
		d.log.Warn("systemd READY not sent", zap.Error(err))
	}
	d.status(fmt.Sprintf("controlling at %d Hz", cfg.Loop.RateHz))
	d.log.Info("ready: controlling", zap.Int("rate_hz", cfg.Loop.RateHz), zap.String("node", node.Name()),
		zap.String("cmd_vel", topics.CmdVel), zap.String("image", topics.Image))
	close(d.ready)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := lp.Run(gctx, ctl.step)
		// Shutdown, first phase: the arm, on the goroutine that owns the filter.
		stopSent = time.Now()
		if serr := ctl.stop(stopSent); serr != nil {
			d.log.Warn("stop command not sent", zap.Error(serr))
		} else {
			d.log.Info("stop command sent")
		}
		if err := d.notifier.Stopping(); err != nil {
			d.log.Warn("systemd STOPPING not sent", zap.Error(err))
		}
		d.status("stopping")
		return err
	})
	g.Go(func() error { d.diagnostics(gctx, ctl, lp, in, out, tl, node); return nil })
	g.Go(func() error { d.reloader(gctx, ctl); return nil })
	g.Go(func() error {
		if err := d.notifier.RunWatchdog(gctx, progressed(lp.Progress)); err != nil {
			d.log.Error("systemd watchdog not fed any more", zap.Error(err))
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-srv.done:
			if srv.err != nil {
				return fmt.Errorf("core: http: %w", srv.err)
			}
			return nil
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		select {
		case <-node.Done():
			return fmt.Errorf("core: ROS node stopped: %w", node.Err())
		case <-gctx.Done():
			return nil
		}
	})
	return g.Wait()
}

// progressed is the watchdog's liveness check: true when the loop completed a cycle since
// the previous call. It is fed by the loop's own progress, never by a free-running
// goroutine, so a hung cycle stops the keep-alives and systemd restarts the daemon.
func progressed(progress func() uint64) func() bool {
	var last uint64
	return func() bool {
		p := progress()
		ok := p != last
		last = p
		return ok
	}
}

// cancelled turns an error caused by ctx ending into nil: stopping while waiting for
// rosmaster or the first frame is not a failure.
func cancelled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// shutdown is the second phase: the stop command went out (ctl.stop, on the loop's
// goroutine) when the loop ran; now drain the transition log, give the stop command
// time to reach the robot, and leave the ROS graph, all within shutdownBudget.
func (d *Daemon) shutdown(ctl *controller, stopSent time.Time, tl *translog.Log, node *rosnode.Node, srv *httpServer) error {
	start := time.Now()
	if ctl == nil {
		d.notifier.Stopping()
	}
	srv.close()
	var errs []error
	if err := closeLog(tl, start.Add(logBudget), d.log); err != nil {
		errs = append(errs, err)
	}
	if !stopSent.IsZero() {
		time.Sleep(time.Until(stopSent.Add(deliverStop)))
	}
	done := make(chan error, 1)
	go func() { done <- node.Close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, rosnode.ErrShutdown) {
			errs = append(errs, fmt.Errorf("core: ROS node: %w", err))
		}
	case <-time.After(min(nodeCloseWait, time.Until(start.Add(shutdownBudget)))):
		d.log.Info("ROS node still closing (goroslib waits for idle peer connections); leaving it")
	}
	d.log.Info("stopped", zap.Duration("shutdown", time.Since(start)))
	return errors.Join(errs...)
}

// httpServer is the running /metrics and /healthz endpoint.
type httpServer struct {
	stop context.CancelFunc // nil when not serving
	done chan struct{}      // closed when Run returned, with err
	err  error
}

// close shuts the server down, waiting at most a second for requests in flight.
func (s *httpServer) close() {
	if s.stop == nil {
		return
	}
	s.stop()
	select {
	case <-s.done:
	case <-time.After(time.Second):
	}
}

// closeLog drains the transition log by deadline; lost transitions are logged, not
// returned: the robot stopped safely, and the log says what was cut.
func closeLog(tl *translog.Log, deadline time.Time, log *zap.Logger) error {
	if tl == nil {
		return nil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := tl.Close(ctx)
	st := tl.Stats()
	var lost *translog.LostError
	switch {
	case errors.As(err, &lost):
		log.Warn("transition log closed with transitions lost", zap.Error(err), zap.Uint64("written", st.Written))
		return nil
	case err != nil:
		return fmt.Errorf("core: transition log: %w", err)
	}
	log.Info("transition log closed", zap.Uint64("written", st.Written), zap.Int("episodes", st.Episodes), zap.Uint64("dropped", st.Dropped))
	return nil
}

// joinROS creates the node with the daemon's inputs, outputs, observation builder and
// the reset_safety service. It does not wait for rosmaster.
func (d *Daemon) joinROS(rcfg rosio.Config) (*rosnode.Node, *rosio.Inputs, *rosio.Outputs, *rosio.Builder, error) {
	cfg := d.cfg
	node, err := rosnode.New(rosnode.Config{Name: cfg.ROS.Node, Namespace: cfg.ROS.Namespace, MasterURI: cfg.ROS.MasterURI,
		Host: cfg.ROS.Host, CheckInterval: nodeCheckInterval, CallTimeout: nodeCallTimeout}, d.log.Named("ros"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("core: ros: %w", err)
	}
	fail := func(err error) (*rosnode.Node, *rosio.Inputs, *rosio.Outputs, *rosio.Builder, error) {
		node.Close()
		return nil, nil, nil, nil, fmt.Errorf("core: %w", err)
	}
	in, err := rosio.NewInputs(node, rcfg, d.log.Named("inputs"))
	if err != nil {
		return fail(err)
	}
	out, err := rosio.NewOutputs(node, rcfg)
	if err != nil {
		return fail(err)
	}
	b, err := rosio.NewBuilder(rcfg)
	if err != nil {
		return fail(err)
	}
	if err := node.Serve("~reset_safety", &std_srvs.Trigger{}, d.resetService); err != nil {
		return fail(err)
	}
	return node, in, out, b, nil
}

// waitROS waits until the node is registered with rosmaster, however long that takes,
// saying so in the systemd status and the log.
func (d *Daemon) waitROS(ctx context.Context, node *rosnode.Node, uri string) error {
	start := time.Now()
	var logged time.Time
	for {
		wctx, cancel := context.WithTimeout(ctx, statusEvery)
		err := node.WaitConnected(wctx)
		cancel()
		if err == nil {
			d.log.Info("registered with rosmaster", zap.String("master", uri), zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-node.Done():
			return fmt.Errorf("core: ROS node stopped: %w", node.Err())
		default:
		}
		waited := time.Since(start).Round(time.Second)
		d.status(fmt.Sprintf("waiting for rosmaster at %s (%s)", uri, waited))
		if time.Since(logged) >= waitLogEvery {
			logged = time.Now()
			d.log.Warn("waiting for rosmaster; retrying", zap.String("master", uri), zap.Duration("waited", waited))
		}
	}
}

// waitInputs waits for the first camera frame and every state input the observation
// needs, naming the missing topics in the systemd status and the log.
func (d *Daemon) waitInputs(ctx context.Context, in *rosio.Inputs, st *rosio.State, rcfg rosio.Config) error {
	start := time.Now()
	var lastStatus, logged time.Time
	var frame rosio.Frame
	topics := in.Topics()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		in.Read(st)
		var missing []string
		if !in.ReadFrame(&frame) {
			missing = append(missing, topics.Image)
		}
		if !st.EEPose.Stamp.Valid() {
			missing = append(missing, topics.EEPose)
		}
		if !st.Joints.Stamp.Valid() {
			missing = append(missing, topics.JointStates)
		}
		for i := 0; i < st.NumObjects; i++ {
			if !st.Objects[i].Stamp.Valid() {
				missing = append(missing, topics.Objects[i])
			}
		}
		if !st.Goal.Stamp.Valid() {
			missing = append(missing, topics.Goal)
		}
		if len(missing) == 0 {
			d.log.Info("inputs arrived", zap.Duration("waited", time.Since(start).Round(time.Millisecond)),
				zap.Int("width", frame.Width), zap.Int("height", frame.Height), zap.String("encoding", frame.Encoding))
			return nil
		}
		if time.Since(lastStatus) >= statusEvery {
			lastStatus = time.Now()
			d.status("waiting for " + strings.Join(missing, ", "))
		}
		if time.Since(start) >= statusEvery && time.Since(logged) >= waitLogEvery {
			logged = time.Now()
			d.log.Warn("waiting for inputs", zap.Strings("missing", missing), zap.Duration("waited", time.Since(start).Round(time.Second)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// resetService is the reset_safety service (std_srvs/Trigger): the operator's explicit
// release of a latched Stop, e.g. after the estop was released. The control thread does
// the reset between two cycles.
func (d *Daemon) resetService(*std_srvs.TriggerReq) (*std_srvs.TriggerRes, bool) {
	ctl := d.ctl.Load()
	if ctl == nil {
		return &std_srvs.TriggerRes{Success: false, Message: "not controlling yet"}, true
	}
	prev, reason := ctl.safetyState()
	reply := make(chan error, 1)
	select {
	case ctl.resetReq <- reply:
	case <-time.After(time.Second):
		return &std_srvs.TriggerRes{Success: false, Message: "another reset is pending"}, true
	}
	select {
	case err := <-reply:
		switch {
		case errors.Is(err, safety.ErrEstop):
			return &std_srvs.TriggerRes{Success: false, Message: "estop engaged: release it first"}, true
		case err != nil:
			return &std_srvs.TriggerRes{Success: false, Message: err.Error()}, true
		case prev != safety.Stop:
			return &std_srvs.TriggerRes{Success: true, Message: fmt.Sprintf("nothing to release: state %s", prev)}, true
		}
		return &std_srvs.TriggerRes{Success: true, Message: fmt.Sprintf("stop (%s) released: the arm moves again once its inputs are fresh", reason)}, true
	case <-time.After(time.Second):
		return &std_srvs.TriggerRes{Success: false, Message: "the control loop is not running"}, true
	}
}

// rosioConfig maps the daemon's configuration onto rosio's: every topic resolved under
// the namespace, the objects of the policy's task.
func rosioConfig(cfg config.Config, objs []rosio.Object) rosio.Config {
	t := cfg.Topics.Resolve(cfg.ROS.Namespace)
	rc := rosio.DefaultConfig()
	rc.Namespace = cfg.ROS.Namespace
	rc.Objects = objs
	rc.Topics = rosio.TopicOverrides{Image: t.Image, EEPose: t.EEPose, JointStates: t.JointStates, Goal: t.Goal,
		Estop: t.Estop, CmdVel: t.CmdVel, Gripper: t.Gripper, Reward: t.Reward, Diagnostics: t.Diagnostics,
		Objects: map[string]string{}}
	for _, o := range objs {
		rc.Topics.Objects[o.Name] = t.ObjectPose(o.Name)
	}
	return rc
}

// safetyConfig is the filter's configuration: the daemon's safety section and the
// policy's action scale.
func safetyConfig(cfg config.Config, scale float64) safety.Config {
	s := cfg.Safety
	return safety.Config{ActionLow: s.Action.Low, ActionHigh: s.Action.High,
		WorkspaceMin: s.Workspace.Min, WorkspaceMax: s.Workspace.Max, Scale: scale,
		MaxDelta: s.MaxDelta, CameraMaxAge: s.CameraMaxAge, StateMaxAge: s.StateMaxAge, StopAfter: s.StopAfter}
}

// scheduled reports the control thread's scheduling, once, from that thread before its
// first cycle.
func (d *Daemon) scheduled(s loop.Scheduling) {
	d.metrics.SetRealtimePriority(s.Priority)
	switch {
	case s.Err != nil:
		d.log.Warn("control thread on the ordinary scheduler: realtime priority refused", zap.Error(s.Err))
	case s.Priority > 0:
		d.log.Info("control thread under SCHED_FIFO", zap.Int("priority", s.Priority))
	}
}
