package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/control/rosnode/rosnodetest"
	"robodistill/sim/bridge"
	"robodistill/sim/metaworld"
)

func (a *app) simBridgeCmd() *cobra.Command {
	var (
		cfg                  bridge.Config
		task, camera, name   string
		rate, maxSteps       int
		cmdTimeout, pairWait time.Duration
	)
	c := &cobra.Command{
		Use:   "bridge",
		Short: "Run the simulator as a ROS node (camera, state, goal, status; velocity and gripper commands; sim/reset)",
		Long: `Runs a MetaWorld task as a ROS1 node through goroslib, on the topics of the ROS interface
(docs/bridge.md), until interrupted. Like every ROS node it reads ROS_MASTER_URI,
ROS_HOSTNAME / ROS_IP and ROS_NAMESPACE, and it re-registers by itself when rosmaster
restarts.

Real time (default): one control period per wall-clock period on absolute deadlines; a
velocity command older than --cmd-timeout counts as zero velocity. --camera-rate below the
control rate renders the latest state on the camera's own schedule (e.g. 30 Hz beside a
50 Hz arm); by default every state carries an image.
--lockstep: one control period per arm/cmd_vel message (paired with gripper/command);
/clock carries the simulated time and /use_sim_time is set while the bridge runs.

~seed (e.g. /sim_bridge/seed) is the seed of the next episode: sim/reset uses it and
writes seed+1 back. An episode that reaches its length stays over (status truncated,
commands ignored) until sim/reset, or starts the next one with --auto-reset.`,
		Example: `  robodistill sim bridge --task reach --rate 50 --camera corner --size 64
  robodistill sim bridge --task reach --rate 50 --camera-rate 30 --size 224
  robodistill sim bridge --task drawer-open --lockstep --camera none
  ROS_MASTER_URI=http://robot:11311/ ROS_IP=10.0.0.5 robodistill sim bridge --task push --namespace sim1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			node, err := rosnode.FromEnv(name, os.Getenv)
			if err != nil {
				return err
			}
			cfg.Task, cfg.Node = t, node
			cfg.Env = a.envOptions(rate)
			cfg.Env.MaxSteps = maxSteps
			cfg.Camera = camera
			if camera == "none" {
				cfg.Camera = ""
			}
			cfg.CommandTimeout, cfg.PairWait = cmdTimeout, pairWait
			b, err := bridge.New(cfg, a.log.With(zap.String("component", "bridge")))
			if err != nil {
				return err
			}
			tp := b.Topics()
			mode := "real time"
			if cfg.Lockstep {
				mode = "lockstep"
			}
			camRate := cfg.CameraRate
			if camRate == 0 {
				camRate = b.Motion().Rate
			}
			a.human("sim bridge: task %s, %s at %d Hz, node %s, master %s\n  camera %s (%d Hz) on %s, commands on %s and %s, reset with %s (seed from %s)\n",
				t.Name, mode, b.Motion().Rate, b.Node().Name(), node.MasterURI, orNone(cfg.Camera), camRate, tp.Image, tp.CmdVel, tp.Gripper, tp.Reset, b.Node().Resolve("~seed"))
			select {
			case <-cmd.Context().Done():
			case <-b.Done():
			}
			err = b.Close()
			st := b.Stats()
			a.human("sim bridge stopped: %d steps, %d episodes, %d overruns, %d malformed commands, %d re-registrations\n",
				st.Steps, st.Episodes, st.Overruns, st.MalformedVel+st.MalformedGrip, st.Reregistrations)
			if jerr := a.summary(st); jerr != nil && err == nil {
				err = jerr
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "task name (see 'robodistill sim tasks')")
	f.IntVar(&rate, "rate", 50, "control rate in Hz: 50 (the daemon's) or 80 (MetaWorld's)")
	f.StringVar(&camera, "camera", "corner", "camera on camera/image_raw, or none")
	f.IntVar(&cfg.Size, "size", 64, "image width and height in pixels (up to 480)")
	f.IntVar(&cfg.CameraRate, "camera-rate", 0, "real time: camera frame rate in Hz, up to --rate (default: --rate, an image with every state)")
	f.BoolVar(&cfg.Lockstep, "lockstep", false, "advance one control period per velocity command; publish /clock and set /use_sim_time")
	f.StringVar(&cfg.Namespace, "namespace", "", "namespace of the topics (and of the node)")
	f.StringVar(&name, "name", "sim_bridge", "ROS node name")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the first episode (later ones: ~seed)")
	f.DurationVar(&cmdTimeout, "cmd-timeout", 250*time.Millisecond, "real time: a velocity command older than this counts as zero velocity")
	f.DurationVar(&pairWait, "pair-wait", 50*time.Millisecond, "lockstep: how long a step waits for the cycle's gripper command")
	f.BoolVar(&cfg.AutoReset, "auto-reset", false, "start the next episode when one reaches its length instead of waiting for sim/reset")
	f.IntVar(&maxSteps, "max-steps", 0, "episode length in control steps (default: MetaWorld's 6.25 s)")
	_ = c.MarkFlagRequired("task")
	return c
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// BridgeBench is the JSON report of 'bench bridge'.
type BridgeBench struct {
	Task       string              `json:"task"`
	Rate       int                 `json:"rate"`
	CameraRate int                 `json:"camera_rate"`
	Seconds    float64             `json:"seconds"`
	Results    []BridgeBenchResult `json:"results"`
}

// BridgeBenchResult is one image size's figures. Latency is the receive time in the
// subscriber process minus the image's header stamp (set when the frame is ready, just
// before publishing).
type BridgeBenchResult struct {
	Size      int     `json:"size"`
	Frames    int     `json:"frames"`
	P50Ms     float64 `json:"latency_p50_ms"`
	P99Ms     float64 `json:"latency_p99_ms"`
	MaxMs     float64 `json:"latency_max_ms"`
	RateHz    float64 `json:"rate_hz"`
	WorkP50Ms float64 `json:"bridge_work_p50_ms"`
	WorkP99Ms float64 `json:"bridge_work_p99_ms"`
	Overruns  uint64  `json:"overruns"`
	Skipped   uint64  `json:"skipped_ticks"`
	// With --camera-rate below --rate: render + publish per image, and camera frames
	// dropped because the bridge was a whole camera period late.
	ImageWorkP50Ms float64 `json:"image_work_p50_ms,omitempty"`
	ImageWorkP99Ms float64 `json:"image_work_p99_ms,omitempty"`
	CameraSkipped  uint64  `json:"camera_skipped,omitempty"`
}

func (a *app) benchBridgeCmd() *cobra.Command {
	var (
		task, camera     string
		rate, cameraRate int
		sizes            []int
		seconds          float64
	)
	c := &cobra.Command{
		Use:   "bridge",
		Short: "Sim bridge camera latency (publish -> receive in another process) and achieved rate",
		Long: `For each image size: starts Debian's rosmaster on a free loopback port, the sim bridge in real
time in this process, and a subscriber in a separate process (this binary, hidden command
'bench bridge-subscriber'); measures, per frame, the subscriber's receive time minus the
image's header stamp, and reports the median, the 99th percentile and the achieved rate.
The first second of frames is discarded (connection set-up).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench bridge: %w", err)
			}
			if cameraRate == 0 {
				cameraRate = rate
			}
			rep := BridgeBench{Task: t.Name, Rate: rate, CameraRate: cameraRate, Seconds: seconds}
			for _, size := range sizes {
				r, err := a.benchBridgeSize(cmd.Context(), exe, t, camera, rate, cameraRate, size, seconds)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, r)
			}
			a.human("sim bridge camera latency: header stamp -> receive in another process (goroslib, TCPROS on loopback), %s, camera %s at %d Hz, control %d Hz real time, %.0f s per size\n", t.Name, camera, cameraRate, rate, seconds)
			for _, r := range rep.Results {
				if cameraRate == rate {
					a.human("  %3d px rgb8: p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  achieved %5.2f Hz (%d frames)  bridge step+render+publish p50 %.1f ms p99 %.1f ms, overruns %d, skipped %d\n",
						r.Size, r.P50Ms, r.P99Ms, r.MaxMs, r.RateHz, r.Frames, r.WorkP50Ms, r.WorkP99Ms, r.Overruns, r.Skipped)
					continue
				}
				a.human("  %3d px rgb8: p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  achieved %5.2f Hz (%d frames, %d dropped)  render+publish p50 %.1f ms p99 %.1f ms; step+publish p50 %.1f ms p99 %.1f ms, overruns %d, skipped %d\n",
					r.Size, r.P50Ms, r.P99Ms, r.MaxMs, r.RateHz, r.Frames, r.CameraSkipped, r.ImageWorkP50Ms, r.ImageWorkP99Ms, r.WorkP50Ms, r.WorkP99Ms, r.Overruns, r.Skipped)
			}
			return a.summary(rep)
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "reach", "task to simulate")
	f.StringVar(&camera, "camera", "corner", "camera to render")
	f.IntVar(&rate, "rate", 50, "control rate in Hz (50 or 80)")
	f.IntVar(&cameraRate, "camera-rate", 0, "camera frame rate in Hz, up to --rate (default: --rate)")
	f.IntSliceVar(&sizes, "sizes", []int{64, 224}, "image sizes in pixels")
	f.Float64Var(&seconds, "seconds", 10, "measurement time per size")
	return c
}

func (a *app) benchBridgeSize(ctx context.Context, exe string, t *metaworld.Task, camera string, rate, cameraRate, size int, seconds float64) (BridgeBenchResult, error) {
	res := BridgeBenchResult{Size: size}
	m, err := rosnodetest.Start("")
	if err != nil {
		return res, fmt.Errorf("bench bridge: %w", err)
	}
	defer m.Stop()
	b, err := bridge.New(bridge.Config{
		Task: t, Env: metaworld.Options{Assets: a.assets, Rate: rate, MaxSteps: 1 << 30}, Camera: camera, Size: size, CameraRate: cameraRate,
		Node: rosnode.Config{MasterURI: m.URI, Host: "127.0.0.1"},
	}, a.log.With(zap.String("component", "bridge")))
	if err != nil {
		return res, err
	}
	defer b.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.Node().WaitConnected(wctx)
	cancel()
	if err != nil {
		return res, fmt.Errorf("bench bridge: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Duration(seconds*float64(time.Second))+30*time.Second)
	defer cancel()
	sub := m.Command(sctx, exe, "bench", "bridge-subscriber", "--topic", b.Topics().Image,
		"--seconds", strconv.FormatFloat(seconds+1, 'f', -1, 64), "--warmup", "1s")
	sub.Stderr = a.stderr
	out, err := sub.Output()
	if err != nil {
		return res, fmt.Errorf("bench bridge: subscriber process: %w", err)
	}
	var sr subscriberReport
	if err := json.Unmarshal(out, &sr); err != nil {
		return res, fmt.Errorf("bench bridge: subscriber report %q: %w", out, err)
	}
	st := b.Stats()
	lat := sr.LatenciesNs
	if len(lat) < 2 {
		return res, fmt.Errorf("bench bridge: %d frames received at %d px", len(lat), size)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	res.Frames = len(lat)
	res.P50Ms, res.P99Ms, res.MaxMs = ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]), ms(lat[len(lat)-1])
	res.RateHz = sr.RateHz
	res.WorkP50Ms, res.WorkP99Ms = ms(int64(st.WorkP50)), ms(int64(st.WorkP99))
	res.Overruns, res.Skipped = st.Overruns, st.SkippedTicks
	res.ImageWorkP50Ms, res.ImageWorkP99Ms, res.CameraSkipped = ms(int64(st.ImageWorkP50)), ms(int64(st.ImageWorkP99)), st.CameraSkipped
	return res, nil
}

// subscriberReport is what 'bench bridge-subscriber' prints.
type subscriberReport struct {
	LatenciesNs []int64 `json:"latencies_ns"`
	// RateHz is (frames-1) over the span of their header stamps.
	RateHz float64 `json:"rate_hz"`
}

// benchBridgeSubscriberCmd is the separate process of 'bench bridge': a ROS node that
// subscribes to an image topic and records receive time minus header stamp.
func (a *app) benchBridgeSubscriberCmd() *cobra.Command {
	var (
		topic   string
		seconds float64
		warmup  time.Duration
	)
	c := &cobra.Command{
		Use:    "bridge-subscriber",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := rosnode.FromEnv("bench_subscriber", os.Getenv)
			if err != nil {
				return err
			}
			n, err := rosnode.New(conf, a.log)
			if err != nil {
				return err
			}
			var mu sync.Mutex
			lat := make([]int64, 0, 4096)
			var first, last time.Time
			start := time.Now()
			// The callback only records: goroslib runs it synchronously per message.
			err = n.Subscribe(topic, func(m *sensor_msgs.Image) {
				now := time.Now()
				if now.Sub(start) < warmup {
					return
				}
				mu.Lock()
				lat = append(lat, now.UnixNano()-m.Header.Stamp.UnixNano())
				if first.IsZero() {
					first = m.Header.Stamp
				}
				last = m.Header.Stamp
				mu.Unlock()
			}, 0)
			if err != nil {
				n.Close()
				return err
			}
			select {
			case <-time.After(time.Duration(seconds * float64(time.Second))):
			case <-cmd.Context().Done():
			}
			if err := n.Close(); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			rep := subscriberReport{LatenciesNs: lat}
			if len(lat) > 1 && last.After(first) {
				rep.RateHz = float64(len(lat)-1) / last.Sub(first).Seconds()
			}
			w := bufio.NewWriter(a.stdout)
			if err := json.NewEncoder(w).Encode(rep); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&topic, "topic", rosiface.DefaultTopics("").Image, "image topic")
	f.Float64Var(&seconds, "seconds", 10, "how long to listen")
	f.DurationVar(&warmup, "warmup", time.Second, "discard frames received in the first WARMUP")
	return c
}
