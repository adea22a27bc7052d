package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"go.uber.org/zap"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
)

// DemoRobot is the robot stage of 'demo': robodistilld controlling the simulated Sawyer
// over ROS.
type DemoRobot struct {
	Episodes      int     `json:"episodes"`
	Successes     int     `json:"successes"`
	SuccessRate   float64 `json:"success_rate"`
	RateHz        int     `json:"rate_hz"`
	Cycles        float64 `json:"cycles"`
	Overruns      int     `json:"overruns"`
	LatenessP50Ms float64 `json:"lateness_p50_ms"`
	LatenessP99Ms float64 `json:"lateness_p99_ms"`
	ComputeP50Ms  float64 `json:"compute_p50_ms"`
	ComputeP99Ms  float64 `json:"compute_p99_ms"`
	LatencyP50Ms  float64 `json:"camera_to_command_p50_ms"`
	LatencyP99Ms  float64 `json:"camera_to_command_p99_ms"`
	LogDir        string  `json:"log_dir"`
	Bags          int     `json:"bags"`
}

// freePort asks the kernel for an unused loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// child is a process of the robot stage, its output in a log file.
type child struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

func startChild(ctx context.Context, name, logPath string, env []string, exe string, args ...string) (*child, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := exec.Command(exe, args...)
	c.Env = append(os.Environ(), env...)
	c.Stdout, c.Stderr = lf, lf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	ch := &child{name: name, cmd: c, log: lf, done: make(chan error, 1)}
	go func() { ch.done <- c.Wait() }()
	return ch, nil
}

// stop sends SIGTERM and waits up to grace before killing.
func (c *child) stop(grace time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		err = <-c.done
		err = fmt.Errorf("%s did not stop within %v after SIGTERM (killed): %v", c.name, grace, err)
	}
	c.log.Close()
	return err
}

func waitTCP(ctx context.Context, addr string, c *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("%s exited while starting (%v); see %s", c.name, err, c.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v; see %s", c.name, addr, timeout, c.log.Name())
		}
	}
}

// demoRobot runs rosmaster, the sim bridge and robodistilld and watches the episodes.
func (a *app) demoRobot(ctx context.Context, df *demoFlags, rewardPath, policyPath string) (*DemoRobot, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	daemon := filepath.Join(filepath.Dir(exe), "robodistilld")
	if _, err := os.Stat(daemon); err != nil {
		return nil, fmt.Errorf("robodistilld not found beside robodistill (%s): build it with make build", daemon)
	}
	dir, err := filepath.Abs(filepath.Join(df.out, "robot"))
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	absReward, _ := filepath.Abs(rewardPath)
	absPolicy, _ := filepath.Abs(policyPath)
	rosPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	master := fmt.Sprintf("http://127.0.0.1:%d/", rosPort)
	env := []string{"ROS_MASTER_URI=" + master, "ROS_IP=127.0.0.1", "ROS_HOSTNAME=", "ROS_NAMESPACE="}
	ctx, cancel := context.WithTimeout(ctx, df.robotTimeout)
	defer cancel()

	var children []*child
	var stopErr error
	defer func() {
		// The daemon first (it stops the arm), then the bridge, then the master.
		for i := len(children) - 1; i >= 0; i-- {
			if err := children[i].stop(5 * time.Second); err != nil && children[i].name == "robodistilld" {
				stopErr = err
			}
		}
	}()
	rm, err := startChild(ctx, "rosmaster", filepath.Join(dir, "rosmaster.log"), env, "rosmaster", "--core", "-p", strconv.Itoa(rosPort))
	if err != nil {
		return nil, fmt.Errorf("%w (Debian's ros-core; scripts/bootstrap installs it)", err)
	}
	children = append(children, rm)
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", rosPort), rm, 30*time.Second); err != nil {
		return nil, err
	}
	bargs := []string{"sim", "bridge", "--task", df.task, "--camera", df.camera, "--size", strconv.Itoa(df.size),
		"--rate", "50", "--auto-reset", "--seed", "1000000"}
	if a.assets != "" {
		bargs = append(bargs, "--assets", a.assets)
	}
	br, err := startChild(ctx, "sim bridge", filepath.Join(dir, "bridge.log"), env, exe, bargs...)
	if err != nil {
		return nil, err
	}
	children = append(children, br)
	cfgPath := filepath.Join(dir, "daemon.yaml")
	cfg := fmt.Sprintf(`# written by robodistill demo
version: 1
ros:
  node: robodistilld
loop:
  rate_hz: 50
models:
  reward: %s
  policy: %s
log:
  enabled: true
  dir: %s
http:
  listen: 127.0.0.1:%d
logging:
  format: console
  level: info
`, absReward, absPolicy, logDir, httpPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	dm, err := startChild(ctx, "robodistilld", filepath.Join(dir, "daemon.log"), env, daemon, "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	children = append(children, dm)

	// Watch the bridge's episode status: an episode is one seed; it succeeded when any
	// status of it says so.
	conf, err := rosnode.FromEnv("robodistill_demo", func(k string) string {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, k+"="); ok {
				return v
			}
		}
		return os.Getenv(k)
	})
	if err != nil {
		return nil, err
	}
	node, err := rosnode.New(conf, a.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	if err != nil {
		return nil, err
	}
	defer node.Close()
	var (
		mu      sync.Mutex
		seeds   []uint64
		success = map[uint64]bool{}
		over    = map[uint64]bool{}
		bad     error
	)
	topics := rosiface.DefaultTopics("")
	err = node.Subscribe(topics.Status, func(m *std_msgs.Float64MultiArray) {
		st, err := rosiface.ParseEpisodeStatus(m)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad = err
			return
		}
		if len(seeds) == 0 || seeds[len(seeds)-1] != st.Seed {
			if len(seeds) > 0 {
				over[seeds[len(seeds)-1]] = true
			}
			seeds = append(seeds, st.Seed)
		}
		success[st.Seed] = success[st.Seed] || st.Success
		if st.Truncated {
			over[st.Seed] = true
		}
	}, 64)
	if err != nil {
		return nil, err
	}
	res := &DemoRobot{RateHz: 50, LogDir: logDir}
	// The first episode may have started before the daemon was ready: count from the
	// second one the bridge starts.
	for {
		mu.Lock()
		done := 0
		for _, s := range seeds[min(1, len(seeds)):] {
			if over[s] {
				done++
			}
		}
		berr := bad
		mu.Unlock()
		if berr != nil {
			return nil, fmt.Errorf("episode status: %w", berr)
		}
		if done >= df.robotEpisodes {
			break
		}
		select {
		case err := <-dm.done:
			dm.done <- err
			return nil, fmt.Errorf("robodistilld exited (%v); see %s", err, dm.log.Name())
		case err := <-br.done:
			br.done <- err
			return nil, fmt.Errorf("the sim bridge exited (%v); see %s", err, br.log.Name())
		case <-ctx.Done():
			return nil, fmt.Errorf("the robot stage did not finish %d episodes within --robot-timeout %v: %w", df.robotEpisodes, df.robotTimeout, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	mu.Lock()
	for _, s := range seeds[1:] {
		if over[s] && res.Episodes < df.robotEpisodes {
			res.Episodes++
			if success[s] {
				res.Successes++
			}
		}
	}
	mu.Unlock()
	res.SuccessRate = float64(res.Successes) / float64(res.Episodes)
	if err := scrapeDaemon(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort), res); err != nil {
		return nil, err
	}
	// Stop everything now so that the transition log is complete when counted.
	for i := len(children) - 1; i >= 0; i-- {
		if err := children[i].stop(5 * time.Second); err != nil && children[i].name == "robodistilld" {
			stopErr = err
		}
	}
	children = nil
	if stopErr != nil {
		return res, stopErr
	}
	bags, _ := filepath.Glob(filepath.Join(logDir, "*.bag"))
	res.Bags = len(bags)
	return res, nil
}

// scrapeDaemon reads robodistilld's Prometheus metrics into res: quantiles of its
// histograms (interpolated within buckets, as Prometheus's histogram_quantile does).
func scrapeDaemon(url string, res *DemoRobot) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("daemon metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon metrics: %s", resp.Status)
	}
	hists, counters, err := parseProm(resp.Body)
	if err != nil {
		return err
	}
	q := func(name string, p float64) float64 {
		if v := histQuantile(hists[name], p); !math.IsNaN(v) {
			return 1000 * v
		}
		return 0 // an empty histogram
	}
	res.LatenessP50Ms, res.LatenessP99Ms = q("robodistilld_loop_lateness_seconds", 0.5), q("robodistilld_loop_lateness_seconds", 0.99)
	res.ComputeP50Ms, res.ComputeP99Ms = q("robodistilld_cycle_compute_seconds", 0.5), q("robodistilld_cycle_compute_seconds", 0.99)
	res.LatencyP50Ms, res.LatencyP99Ms = q("robodistilld_camera_to_command_seconds", 0.5), q("robodistilld_camera_to_command_seconds", 0.99)
	res.Cycles = counters["robodistilld_loop_cycles_total"]
	res.Overruns = int(counters["robodistilld_loop_overruns_total"])
	if res.Cycles == 0 {
		return errors.New("daemon metrics: no control cycles counted")
	}
	return nil
}

type bucket struct{ le, count float64 }

// parseProm reads the histograms' buckets and the unlabelled counters of a Prometheus
// text exposition.
func parseProm(r io.Reader) (map[string][]bucket, map[string]float64, error) {
	hists, counters := map[string][]bucket{}, map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name := line[:sp]
		if base, labels, ok := strings.Cut(name, "_bucket{"); ok {
			i := strings.Index(labels, `le="`)
			if i < 0 {
				continue
			}
			rest := labels[i+4:]
			le, err := strconv.ParseFloat(rest[:strings.IndexByte(rest, '"')], 64)
			if err != nil {
				continue
			}
			hists[base] = append(hists[base], bucket{le, v})
			continue
		}
		if !strings.Contains(name, "{") {
			counters[name] = v
		}
	}
	return hists, counters, sc.Err()
}

// histQuantile is Prometheus's histogram_quantile over cumulative buckets.
func histQuantile(bs []bucket, q float64) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := bs[len(bs)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe
}
