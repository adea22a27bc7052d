package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"go.uber.org/zap"

	"robodistill/control/loop"
	"robodistill/control/onnxio"
	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/control/rosnode/rosnodetest"
)

// pyloop is the Python loop; Run writes it into the work folder.
//
//go:embed pyloop.py
var pyloop []byte

// PyLoop returns the Python loop's source (daemon/bench/pyloop.py).
func PyLoop() []byte { return bytes.Clone(pyloop) }

// Options configures a bench run. The zero value of a field means its default.
type Options struct {
	// Binaries: robodistilld, robodistill (for `sim bridge`) and a python3 with Debian's
	// rospy, torch, onnx and cv2 (python3-opencv).
	Daemon, Robodistill string
	Python              string // default /usr/bin/python3
	// Assets is the MetaWorld assets folder for the bridge ("" lets robodistill find it).
	Assets string
	// WorkDir holds models, configurations and logs; "" makes a temporary folder that is
	// removed afterwards unless Keep is set or the run fails.
	WorkDir string
	Keep    bool
	// Reward and Policy are the models (both or neither); neither exports untrained models
	// of the real shapes into WorkDir (ExportModels). A policy trained at another rate
	// than Rate is re-rated (Rerate).
	Reward, Policy string
	// The bridge: task (default reach), camera (corner), square frame size in px (default
	// DefaultSize), camera rate (default 30 Hz).
	Task, Camera     string
	Size, CameraRate int
	// Rate is the loop rate of the main runs (default 50 Hz).
	Rate int
	// Duration is each main run's measurement window (default 10 min), after Warmup
	// (default 5 s) from the daemon's first healthy answer.
	Duration, Warmup time.Duration
	// Sweep is the rates tried, in order, for the highest sustained rate (nil: none);
	// SweepDuration is each one's window (default 20 s).
	Sweep         []int
	SweepDuration time.Duration
	// SkipPython leaves out the Python loop.
	SkipPython bool
	// PyThreads is torch's thread count in the Python loop (default 1, like the daemon's
	// single control thread).
	PyThreads int
	// Priority is the SCHED_FIFO priority of both loops' control threads (the daemon's
	// loop.realtime_priority, pyloop.py's --realtime-priority); 0 runs both on the
	// ordinary scheduler. daemonbench's default is the shipped configuration's 50.
	Priority int
	// TransitionLog enables the daemon's transition log in the main run (the sweep runs
	// without it). It writes every cycle's frame: the run refuses to start when that
	// would fill more than half of the free space of WorkDir.
	TransitionLog bool
	// DaemonSet are extra --set overrides for every daemon run (e.g. "loop.spin_us=2000"),
	// applied after the harness's own.
	DaemonSet []string
	// Nice runs the daemon and the Python loop at this niceness (-20..19; below 0 needs
	// root or CAP_SYS_NICE). robodistilld.service sets Nice=-5; 0 runs them like the
	// other jobs on the machine.
	Nice int
	// StartTimeout bounds how long a daemon or the Python loop may take to start
	// (default 2 min: loading models and waiting for the first inputs on a loaded machine).
	StartTimeout time.Duration
	// Progress receives one line per step (nil: none).
	Progress io.Writer
}

// DefaultSize is the bridge's default frame size: the largest the renderer produced at 30
// Hz in real time on the 2-core build machine (docs/daemon-bench.md).
const DefaultSize = 224

// DefaultSweep is the rates the report program tries.
var DefaultSweep = []int{50, 100, 200, 300, 400, 500, 600, 800, 1000}

func (o Options) withDefaults() Options {
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	if o.Task == "" {
		o.Task = "reach"
	}
	if o.Camera == "" {
		o.Camera = "corner"
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.CameraRate == 0 {
		o.CameraRate = 30
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Warmup == 0 {
		o.Warmup = 5 * time.Second
	}
	if o.SweepDuration == 0 {
		o.SweepDuration = 20 * time.Second
	}
	if o.PyThreads == 0 {
		o.PyThreads = 1
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	return o
}

// bridgeRate is the sim bridge's control rate: it simulates at 50 or 80 Hz whatever
// rate the loop under test runs at.
func (o Options) bridgeRate() int {
	if o.Rate == 80 {
		return 80
	}
	return 50
}

// Validate checks the options; each error names its flag.
func (o Options) Validate() error {
	var errs []error
	bin := func(flag, path string) {
		if path == "" {
			errs = append(errs, fmt.Errorf("--%s: required", flag))
			return
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--%s: %w (build it with make build)", flag, err))
		case st.IsDir() || st.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("--%s: %s is not an executable file", flag, path))
		}
	}
	bin("daemon", o.Daemon)
	bin("robodistill", o.Robodistill)
	if !o.SkipPython {
		bin("python", o.Python)
	}
	if (o.Reward == "") != (o.Policy == "") {
		errs = append(errs, errors.New("--reward and --policy: give both or neither (neither exports untrained models)"))
	}
	if o.Size < 1 || o.Size > 480 {
		errs = append(errs, fmt.Errorf("--size: %d px outside 1..480 (the renderer's limit; 640×480 is not supported)", o.Size))
	}
	if o.Rate < 1 || o.Rate > 1000 {
		errs = append(errs, fmt.Errorf("--rate: %d Hz outside 1..1000 (loop.rate_hz)", o.Rate))
	}
	if o.CameraRate < 1 || o.CameraRate > o.bridgeRate() {
		errs = append(errs, fmt.Errorf("--camera-rate: %d Hz outside 1..%d (the sim bridge's rate)", o.CameraRate, o.bridgeRate()))
	}
	if o.Duration < time.Second {
		errs = append(errs, fmt.Errorf("--duration: %v is under 1s", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup: %v is negative", o.Warmup))
	}
	if len(o.Sweep) > 0 && o.SweepDuration < time.Second {
		errs = append(errs, fmt.Errorf("--sweep-duration: %v is under 1s", o.SweepDuration))
	}
	for i, r := range o.Sweep {
		if r < 1 || r > 1000 || i > 0 && r <= o.Sweep[i-1] {
			errs = append(errs, fmt.Errorf("--sweep: rates must increase within 1..1000 Hz, got %v", o.Sweep))
			break
		}
	}
	if o.Nice < -20 || o.Nice > 19 {
		errs = append(errs, fmt.Errorf("--nice: %d outside -20..19", o.Nice))
	}
	if o.PyThreads < 1 {
		errs = append(errs, fmt.Errorf("--py-threads: %d is below 1", o.PyThreads))
	}
	if o.Priority < 0 || o.Priority > loop.MaxPriority {
		errs = append(errs, fmt.Errorf("--realtime-priority: %d outside 0..%d", o.Priority, loop.MaxPriority))
	}
	return errors.Join(errs...)
}

// Run measures the daemon (and the Python loop) as Options says and returns the report.
// Cancelling ctx stops every process it started and returns ctx's error.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	h := &harness{o: o, http: &http.Client{Timeout: 5 * time.Second}, policies: map[int]string{}}
	defer func() {
		if cerr := h.close(err == nil && !o.Keep); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil && h.dir != "" {
			err = fmt.Errorf("%w\n(models, configurations and logs are in %s)", err, h.dir)
		}
	}()
	if err := h.prepare(); err != nil {
		return nil, err
	}
	rep = &Report{Started: time.Now().UTC(), CPUs: runtime.NumCPU(), Setup: Setup{
		Task: o.Task, Camera: o.Camera, Size: o.Size, CameraRateHz: o.CameraRate, RateHz: o.Rate,
		Seconds: o.Duration.Seconds(), WarmupSeconds: o.Warmup.Seconds(), SweepSeconds: o.SweepDuration.Seconds(),
		Reward: h.models.Reward, Policy: h.models.Policy, Members: h.members, Untrained: o.Reward == "",
		TransitionLog: o.TransitionLog, PyThreads: o.PyThreads, Nice: o.Nice, DaemonSet: o.DaemonSet,
		Priority: o.Priority,
	}}
	if o.Keep || o.WorkDir != "" {
		rep.WorkDir = h.dir
	}
	if err := h.startROS(); err != nil {
		return nil, err
	}

	policy, err := h.policyAt(o.Rate)
	if err != nil {
		return nil, err
	}
	logDir := ""
	if o.TransitionLog {
		logDir = filepath.Join(h.dir, "translog")
	}
	h.say("go: robodistilld at %d Hz for %v (+%v warm-up)", o.Rate, o.Duration, o.Warmup)
	if rep.Go, err = h.runDaemon(ctx, "go-main", o.Rate, policy, o.Duration, logDir); err != nil {
		return nil, fmt.Errorf("robodistilld run: %w", err)
	}
	if logDir != "" {
		os.RemoveAll(logDir) // gigabytes of frames; the figures are what matter here
	}
	if !o.SkipPython {
		h.say("python: pyloop.py at %d Hz for %v (+%v warm-up)", o.Rate, o.Duration, o.Warmup)
		if rep.Python, err = h.runPython(ctx, "py-main", o.Rate, policy, o.Duration); err != nil {
			return nil, fmt.Errorf("python loop run: %w", err)
		}
	}
	if len(o.Sweep) > 0 {
		if rep.GoSweep, err = h.sweep(ctx, "go", h.runDaemonShort); err != nil {
			return nil, err
		}
		if !o.SkipPython {
			if rep.PythonSweep, err = h.sweep(ctx, "python", h.runPythonShort); err != nil {
				return nil, err
			}
		}
	}
	rep.Bridge, err = h.stopBridge()
	if err != nil {
		return nil, err
	}
	rep.evaluate()
	return rep, nil
}

// harness owns the processes of one Run.
type harness struct {
	o        Options
	dir      string
	tempDir  bool
	http     *http.Client
	models   Models
	members  int
	pyScript string
	config   string // the daemon's configuration file

	mu       sync.Mutex
	policies map[int]string // policy file per loop rate

	master      *rosnodetest.Master
	bridge      *proc
	bridgeOut   *tailBuffer
	bridgeStart time.Time
	watcher     *rosnode.Node
	frames      atomic.Uint64 // camera_info messages the harness received
}

func (h *harness) say(format string, args ...any) {
	if h.o.Progress != nil {
		fmt.Fprintf(h.o.Progress, "daemonbench: "+format+"\n", args...)
	}
}

// prepare makes the work folder, the models, the Python script and checks the Python
// side's imports.
func (h *harness) prepare() error {
	o := h.o
	h.dir = o.WorkDir
	if h.dir == "" {
		d, err := os.MkdirTemp("", "daemonbench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		h.dir, h.tempDir = d, true
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return fmt.Errorf("bench: work dir: %w", err)
	}
	abs, err := filepath.Abs(h.dir)
	if err != nil {
		return fmt.Errorf("bench: work dir: %w", err)
	}
	h.dir = abs
	if o.Reward == "" {
		h.say("exporting untrained models (3-member reward CNN for %d px frames, policy MLP 39-256-256-4 at %d Hz) into %s", o.Size, o.Rate, h.dir)
		if h.models, err = ExportModels(filepath.Join(h.dir, "models"), ModelSpec{Rate: o.Rate, Task: o.Task}); err != nil {
			return err
		}
	} else {
		for _, p := range []*string{&o.Reward, &o.Policy} {
			if *p, err = filepath.Abs(*p); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
		h.models = Models{Reward: o.Reward, Policy: o.Policy}
	}
	rv, err := onnxio.Verify(h.models.Reward)
	if err != nil {
		return fmt.Errorf("--reward: %w", err)
	}
	h.members = 1
	if e := rv.Manifest.Ensemble; e != nil {
		h.members = e.Size
	}
	pv, err := onnxio.Verify(h.models.Policy)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	if pv.Manifest.Kind != onnxio.KindPolicy || pv.Manifest.Control == nil {
		return fmt.Errorf("--policy: %s is not a policy with a control section (kind %q)", h.models.Policy, pv.Manifest.Kind)
	}
	h.policies[pv.Manifest.Control.RateHz] = h.models.Policy
	if o.TransitionLog {
		if err := checkDisk(h.dir, o); err != nil {
			return err
		}
	}
	if !o.SkipPython {
		h.pyScript = filepath.Join(h.dir, "pyloop.py")
		if err := os.WriteFile(h.pyScript, pyloop, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		out, err := exec.Command(o.Python, h.pyScript, "--check").CombinedOutput()
		if err != nil {
			return fmt.Errorf("--python: %s cannot run the Python loop (%v): %s\n(Debian: apt-get install python3-rospy python3-torch python3-onnx python3-opencv, or leave Python out)",
				o.Python, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// checkDisk refuses a transition log that would fill more than half the free space: it
// stores every cycle's frame.
func checkDisk(dir string, o Options) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("bench: free space of %s: %w", dir, err)
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	need := float64(o.Size*o.Size*3) * float64(o.Rate) * (o.Duration + o.Warmup).Seconds() * 1.05
	if need > free/2 {
		return fmt.Errorf("--transition-log: %d px frames at %d Hz for %v need about %.1f GB, more than half of the %.1f GB free in %s; turn the log off or shorten --duration",
			o.Size, o.Rate, o.Duration, need/1e9, free/1e9, dir)
	}
	return nil
}

// policyAt returns the policy file for a loop rate, re-rating the main policy if needed.
func (h *harness) policyAt(rate int) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.policies[rate]; ok {
		return p, nil
	}
	p := filepath.Join(h.dir, "models", fmt.Sprintf("policy-%dhz.onnx", rate))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if err := Rerate(h.models.Policy, p, rate); err != nil {
		return "", err
	}
	h.policies[rate] = p
	return p, nil
}

// startROS starts rosmaster, the sim bridge and the harness's camera watcher, and writes
// the daemon's configuration.
func (h *harness) startROS() error {
	o := h.o
	h.say("starting rosmaster and the sim bridge (%s, camera %s %d px at %d Hz)", o.Task, o.Camera, o.Size, o.CameraRate)
	var err error
	if h.master, err = rosnodetest.Start(filepath.Join(h.dir, "ros")); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	args := []string{o.Robodistill, "sim", "bridge", "--task", o.Task, "--rate", strconv.Itoa(o.bridgeRate()),
		"--camera", o.Camera, "--size", strconv.Itoa(o.Size), "--camera-rate", strconv.Itoa(o.CameraRate),
		"--auto-reset", "--max-steps", "1000000000", "--json"}
	if o.Assets != "" {
		args = append(args, "--assets", o.Assets)
	}
	h.bridgeOut = &tailBuffer{max: 1 << 16}
	if h.bridge, err = startProc("sim bridge", h.master.Env(), "", h.bridgeOut, filepath.Join(h.dir, "bridge.log"), args...); err != nil {
		return err
	}
	h.bridgeStart = time.Now()
	tp := rosiface.DefaultTopics("")
	if h.watcher, err = rosnode.New(rosnode.Config{Name: "daemonbench", MasterURI: h.master.URI, Host: "127.0.0.1"}, zap.NewNop()); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = h.watcher.Subscribe(tp.CameraInfo, func(*sensor_msgs.CameraInfo) { h.frames.Add(1) }, 0)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	h.config = filepath.Join(h.dir, "daemon.yaml")
	cfg := DaemonConfig{MasterURI: h.master.URI, Host: "127.0.0.1", Node: "robodistilld", Rate: o.Rate,
		Reward: h.models.Reward, Policy: h.models.Policy, Camera: o.Size, Listen: "127.0.0.1:9477"}
	if err := os.WriteFile(h.config, cfg.YAML(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// stopBridge interrupts the bridge and reads its summary.
func (h *harness) stopBridge() (*BridgeFigures, error) {
	if h.bridge == nil {
		return nil, nil
	}
	if h.bridge.exited() {
		return nil, h.bridge.failure()
	}
	secs := time.Since(h.bridgeStart).Seconds()
	err := h.bridge.stopped(syscall.SIGINT, 15*time.Second)
	h.bridge = nil
	if err != nil {
		return nil, err
	}
	var st struct {
		Steps          uint64 `json:"steps"`
		Images         uint64 `json:"images"`
		Overruns       uint64 `json:"overruns"`
		CameraSkipped  uint64 `json:"camera_skipped"`
		WorkP50        int64  `json:"work_p50_ns"`
		WorkP99        int64  `json:"work_p99_ns"`
		ImageWorkP50   int64  `json:"image_work_p50_ns"`
		ImageWorkP99   int64  `json:"image_work_p99_ns"`
		Reregistration uint64 `json:"reregistrations"`
	}
	line := lastJSONLine(h.bridgeOut.String())
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		return nil, fmt.Errorf("sim bridge summary %q: %w", line, err)
	}
	msf := func(ns int64) float64 { return float64(ns) / 1e6 }
	return &BridgeFigures{Seconds: secs, Steps: st.Steps, Images: st.Images, Overruns: st.Overruns, CameraSkipped: st.CameraSkipped,
		WorkP50Ms: msf(st.WorkP50), WorkP99Ms: msf(st.WorkP99), ImageWorkP50Ms: msf(st.ImageWorkP50), ImageWorkP99Ms: msf(st.ImageWorkP99)}, nil
}

func lastJSONLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}

// close stops whatever is still running and removes a temporary work folder.
func (h *harness) close(removeDir bool) error {
	var errs []error
	if h.bridge != nil {
		if err := h.bridge.stopped(syscall.SIGINT, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if h.watcher != nil {
		h.watcher.Close()
	}
	if h.master != nil {
		if err := h.master.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if removeDir && h.tempDir && len(errs) == 0 {
		os.RemoveAll(h.dir)
	}
	return errors.Join(errs...)
}

// sleepCtx sleeps d unless ctx ends first; each second it calls check, which may end the
// wait with an error (a process that died).
func sleepCtx(ctx context.Context, d time.Duration, check func() error) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, time.Second)):
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
	}
}

// loadSampler samples the 1-minute load average every few seconds.
type loadSampler struct {
	stop chan struct{}
	done chan struct{}
	sum  float64
	max  float64
	n    int
}

func sampleLoad(every time.Duration) *loadSampler {
	s := &loadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *loadSampler) sample() {
	if l, err := LoadAvg(); err == nil {
		s.sum += l[0]
		s.max = math.Max(s.max, l[0])
		s.n++
	}
}

// Stop ends the sampling and returns the mean and maximum.
func (s *loadSampler) Stop() Load {
	close(s.stop)
	<-s.done
	s.sample()
	if s.n == 0 {
		return Load{}
	}
	return Load{Mean: s.sum / float64(s.n), Max: s.max}
}

type runFunc func(ctx context.Context, rate int, policy string) (*LoopFigures, error)

// sweep runs short runs at increasing rates until one is not sustained (or fails).
func (h *harness) sweep(ctx context.Context, name string, run runFunc) (*Sweep, error) {
	s := &Sweep{}
	for _, rate := range h.o.Sweep {
		h.say("%s sweep: %d Hz for %v", name, rate, h.o.SweepDuration)
		policy, err := h.policyAt(rate)
		if err != nil {
			return nil, err
		}
		f, err := run(ctx, rate, policy)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		st := SweepStep{RateHz: rate}
		if err != nil {
			st.Error = err.Error()
			s.Steps = append(s.Steps, st)
			break
		}
		st.Cycles, st.AchievedHz, st.OverrunPct, st.Load = f.Cycles, f.AchievedHz, f.OverrunPct, f.Load.Mean
		st.LatenessP99Ms, st.ComputeP99Ms, st.LatenessExact = f.Lateness.P99, f.Compute.P99, f.Lateness.Exact
		st.CameraToCommandP99Ms = f.CameraToCommand.P99
		st.Sustained = f.Cycles > 0 && f.OverrunPct <= 1 && f.Lateness.P99 <= 1000/float64(rate)
		s.Steps = append(s.Steps, st)
		if !st.Sustained {
			break
		}
		s.MaxHz = rate
	}
	return s, nil
}

func (h *harness) runDaemonShort(ctx context.Context, rate int, policy string) (*LoopFigures, error) {
	return h.runDaemon(ctx, fmt.Sprintf("go-sweep-%dhz", rate), rate, policy, h.o.SweepDuration, "")
}

func (h *harness) runPythonShort(ctx context.Context, rate int, policy string) (*LoopFigures, error) {
	return h.runPython(ctx, fmt.Sprintf("py-sweep-%dhz", rate), rate, policy, h.o.SweepDuration)
}

// niced prefixes a command with nice(1) when Options.Nice is set. nice execs the command,
// so the process id (for /proc) is the command's, and every thread it starts inherits the
// niceness (on Linux a niceness set later would apply to one thread only).
func (h *harness) niced(args []string) []string {
	if h.o.Nice == 0 {
		return args
	}
	return append([]string{"nice", "-n", strconv.Itoa(h.o.Nice)}, args...)
}

// yamlString quotes s for a --set value (a JSON string is YAML).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// runDaemon runs robodistilld at rate with policy: it waits for /healthz, lets it warm up,
// scrapes /metrics and reads its RSS, waits measure, does both again, stops it with
// SIGTERM and returns the figures between the two scrapes.
func (h *harness) runDaemon(ctx context.Context, name string, rate int, policy string, measure time.Duration, logDir string) (*LoopFigures, error) {
	port, err := rosnodetest.FreePort()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{h.o.Daemon, "--config", h.config,
		"--set", fmt.Sprintf("loop.rate_hz=%d", rate),
		"--set", "models.policy=" + yamlString(policy),
		"--set", "http.listen=" + yamlString(listen),
		"--set", fmt.Sprintf("loop.realtime_priority=%d", h.o.Priority)}
	if logDir == "" {
		args = append(args, "--set", "log.enabled=false")
	} else {
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		args = append(args, "--set", "log.enabled=true", "--set", "log.dir="+yamlString(logDir))
	}
	for _, kv := range h.o.DaemonSet {
		args = append(args, "--set", kv)
	}
	p, err := startProc("robodistilld", h.master.Env(), "", nil, filepath.Join(h.dir, name+".log"), h.niced(args)...)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop(syscall.SIGTERM, 5*time.Second) // the arm first, as on a robot
		}
	}()
	alive := func() error {
		if p.exited() {
			return p.failure()
		}
		if h.bridge.exited() {
			return h.bridge.failure()
		}
		return nil
	}
	base := "http://" + listen
	if err := h.waitHealthy(ctx, base, alive); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, h.o.Warmup, alive); err != nil {
		return nil, err
	}
	m0, err := h.scrape(base)
	if err != nil {
		return nil, err
	}
	rss0, err := RSS(p.pid())
	if err != nil {
		return nil, err
	}
	f0, t0 := h.frames.Load(), time.Now()
	load := sampleLoad(5 * time.Second)
	probe := startWakeProbe(rate, h.o.Priority, measure+time.Minute) // the window and the scrapes after it
	err = sleepCtx(ctx, measure/2, alive)
	var rssMid int64
	if err == nil {
		rssMid, err = RSS(p.pid())
	}
	if err == nil {
		err = sleepCtx(ctx, measure-measure/2, alive)
	}
	l, floor := load.Stop(), probe.Stop()
	if err != nil {
		return nil, err
	}
	m1, err := h.scrape(base)
	if err != nil {
		return nil, err
	}
	rss1, err := RSS(p.pid())
	if err != nil {
		return nil, err
	}
	f1, t1 := h.frames.Load(), time.Now()
	stopped = true
	if err := p.stopped(syscall.SIGTERM, 5*time.Second); err != nil {
		return nil, err
	}
	fig, err := daemonFigures(m0, m1, t1.Sub(t0))
	if err != nil {
		return nil, fmt.Errorf("robodistilld metrics: %w", err)
	}
	fig.RateHz, fig.Load, fig.WakeFloor = rate, l, floor
	fig.RSSStartMB, fig.RSSMidMB, fig.RSSEndMB = float64(rss0)/(1<<20), float64(rssMid)/(1<<20), float64(rss1)/(1<<20)
	fig.RSSGrowthMB = fig.RSSEndMB - fig.RSSStartMB
	fig.CameraHz = float64(f1-f0) / t1.Sub(t0).Seconds()
	return fig, nil
}

// waitHealthy polls /healthz until it answers 200.
func (h *harness) waitHealthy(ctx context.Context, base string, alive func() error) error {
	deadline := time.Now().Add(h.o.StartTimeout)
	last := "no answer"
	for {
		if err := alive(); err != nil {
			return err
		}
		resp, err := h.http.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("robodistilld not healthy within %v (last /healthz: %s)", h.o.StartTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (h *harness) scrape(base string) (*Metrics, error) {
	resp, err := h.http.Get(base + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape robodistilld: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape robodistilld: %s", resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape robodistilld: %w", err)
	}
	return m, nil
}

// The daemon's series (docs/daemon-config.md) and the Go collector's.
const (
	metricCycles   = "robodistilld_loop_cycles_total"
	metricOverruns = "robodistilld_loop_overruns_total"
	metricLateness = "robodistilld_loop_lateness_seconds"
	metricCompute  = "robodistilld_cycle_compute_seconds"
	metricCamToCmd = "robodistilld_camera_to_command_seconds"
	metricSafety   = "robodistilld_safety_state"
	metricLogDrops = "robodistilld_transition_log_drops_total"
	metricMallocs  = "go_memstats_mallocs_total"
	metricAllocB   = "go_memstats_alloc_bytes_total"
)

// daemonFigures computes a window's figures from two scrapes taken elapsed apart.
func daemonFigures(m0, m1 *Metrics, elapsed time.Duration) (*LoopFigures, error) {
	delta := func(name string) (float64, error) {
		a, err := m0.Value(name)
		if err != nil {
			return 0, err
		}
		b, err := m1.Value(name)
		if err != nil {
			return 0, err
		}
		if b < a {
			return 0, fmt.Errorf("%s went from %g down to %g (the daemon restarted?)", name, a, b)
		}
		return b - a, nil
	}
	hist := func(name string) (*Histogram, error) {
		a, err := m0.Histogram(name)
		if err != nil {
			return nil, err
		}
		b, err := m1.Histogram(name)
		if err != nil {
			return nil, err
		}
		d, err := b.Sub(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &d, nil
	}
	f := &LoopFigures{Impl: "go", Seconds: elapsed.Seconds()}
	cycles, err := delta(metricCycles)
	if err != nil {
		return nil, err
	}
	overruns, err := delta(metricOverruns)
	if err != nil {
		return nil, err
	}
	f.Cycles, f.Overruns = uint64(cycles), uint64(overruns)
	f.AchievedHz = cycles / elapsed.Seconds()
	if cycles > 0 {
		f.OverrunPct = 100 * overruns / cycles
	}
	if f.lateness, err = hist(metricLateness); err != nil {
		return nil, err
	}
	if f.compute, err = hist(metricCompute); err != nil {
		return nil, err
	}
	if f.camToCmd, err = hist(metricCamToCmd); err != nil {
		return nil, err
	}
	f.Lateness, f.Compute, f.CameraToCommand = histDist(*f.lateness), histDist(*f.compute), histDist(*f.camToCmd)
	if cycles > 0 {
		if n, err := delta(metricMallocs); err == nil {
			v := n / cycles
			f.AllocsPerCycle = &v
		}
		if n, err := delta(metricAllocB); err == nil {
			v := n / cycles
			f.BytesPerCycle = &v
		}
	}
	if n, err := delta(metricLogDrops); err == nil {
		d := uint64(n)
		f.LogDrops = &d
	}
	for _, s := range m1.Samples {
		if s.Name == metricSafety && s.Value == 1 {
			f.SafetyState = s.Labels["state"]
		}
	}
	return f, nil
}

// histDist turns a histogram in seconds into a Dist in ms.
func histDist(h Histogram) Dist {
	d := Dist{P50: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	b := func(e Estimate) *[2]Bound { return &[2]Bound{Bound(e.Lo * 1000), Bound(e.Hi * 1000)} }
	if e, ok := h.Quantile(0.5); ok {
		d.P50, d.P50Bucket = e.Value*1000, b(e)
	}
	if e, ok := h.Quantile(0.99); ok {
		d.P99, d.P99Bucket = e.Value*1000, b(e)
	}
	if e, ok := h.Max(); ok {
		d.Max, d.MaxBucket = e.Value*1000, b(e)
	}
	return d
}

// runPython runs pyloop.py at rate with policy for warm-up + measure and reads its JSON.
func (h *harness) runPython(ctx context.Context, name string, rate int, policy string, measure time.Duration) (*LoopFigures, error) {
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
	out := &tailBuffer{max: 1 << 20}
	args := []string{h.o.Python, h.pyScript, "--reward", h.models.Reward, "--policy", policy,
		"--rate", strconv.Itoa(rate), "--duration", secs(measure), "--warmup", secs(h.o.Warmup),
		"--start-timeout", secs(h.o.StartTimeout), "--threads", strconv.Itoa(h.o.PyThreads),
		"--realtime-priority", strconv.Itoa(h.o.Priority)}
	p, err := startProc("pyloop.py", h.master.Env(), "", out, filepath.Join(h.dir, name+".log"), h.niced(args)...)
	if err != nil {
		return nil, err
	}
	load := sampleLoad(5 * time.Second)
	limit := h.o.StartTimeout + h.o.Warmup + measure + 30*time.Second
	probe := startWakeProbe(rate, h.o.Priority, limit)
	defer probe.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		load.Stop()
		p.stop(syscall.SIGKILL, time.Second)
		return nil, ctx.Err()
	case <-time.After(limit):
		load.Stop()
		p.stop(syscall.SIGKILL, time.Second)
		return nil, fmt.Errorf("pyloop.py did not finish within %v; its last output:\n%s", limit, p.tail.String())
	}
	l, floor := load.Stop(), probe.Stop()
	if p.err != nil {
		return nil, p.failure()
	}
	line := lastJSONLine(out.String())
	f := &LoopFigures{}
	if err := json.Unmarshal([]byte(line), f); err != nil {
		return nil, fmt.Errorf("pyloop.py report %q: %w", line, err)
	}
	if f.Impl != "python" || f.RateHz != rate {
		return nil, fmt.Errorf("pyloop.py report is for %q at %d Hz, want python at %d Hz", f.Impl, f.RateHz, rate)
	}
	f.Load, f.WakeFloor = l, floor
	return f, nil
}
