// Command daemonbench measures robodistilld over ROS against the sim bridge, and the same
// control cycle in Python for comparison (daemon/bench, docs/daemon-bench.md).
//
//	daemonbench [--duration 10m] [--reward reward.onnx --policy policy.onnx] [--json]
//
// It starts Debian's rosmaster on a free loopback port, the sim bridge in real time with
// a 30 Hz camera, and robodistilld (and then pyloop.py) with the given models or
// untrained ones of the real shapes; it prints a table of wake lateness, cycle compute,
// camera-to-command latency, allocations per cycle, RSS growth and overruns beside the
// issue's goals, and the highest loop rate each implementation sustains. Exit codes: 0
// measured, 1 a run failed, 2 bad command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"robodistill/daemon/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// sibling is a binary next to this one (bin/robodistilld beside bin/daemonbench).
func sibling(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return filepath.Join("bin", name)
	}
	return filepath.Join(filepath.Dir(exe), name)
}

func parseRates(s string) ([]int, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var rates []int
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--sweep: %q is not a rate in Hz (want e.g. 50,100,200 or none)", f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("daemonbench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	def := bench.DefaultSweep
	rates := make([]string, len(def))
	for i, r := range def {
		rates[i] = strconv.Itoa(r)
	}
	fs.StringVar(&o.Daemon, "daemon", sibling("robodistilld"), "robodistilld binary")
	fs.StringVar(&o.Robodistill, "robodistill", sibling("robodistill"), "robodistill binary (runs the sim bridge)")
	fs.StringVar(&o.Python, "python", "/usr/bin/python3", "python3 with Debian's rospy, torch, onnx and cv2")
	fs.StringVar(&o.Assets, "assets", "", "MetaWorld assets folder for the bridge (default: robodistill's search)")
	fs.StringVar(&o.WorkDir, "work-dir", "", "folder for models, configurations and logs (default: a temporary one, removed unless --keep or a failure)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary work folder")
	fs.StringVar(&o.Reward, "reward", "", "reward model (member 0 of the ensemble); default: export untrained models of the real shapes")
	fs.StringVar(&o.Policy, "policy", "", "policy model (with --reward)")
	fs.StringVar(&o.Task, "task", "reach", "MetaWorld task the bridge simulates")
	fs.StringVar(&o.Camera, "camera", "corner", "camera the bridge renders")
	fs.IntVar(&o.Size, "size", bench.DefaultSize, "camera frame size in px, square (the renderer's limit is 480; 640×480 is not supported)")
	fs.IntVar(&o.CameraRate, "camera-rate", 30, "camera rate in Hz")
	fs.IntVar(&o.Rate, "rate", 50, "loop rate of the main runs in Hz")
	fs.DurationVar(&o.Duration, "duration", 10*time.Minute, "measurement window of each main run (Go, then Python)")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "time each run has before its window starts")
	sweep := fs.String("sweep", strings.Join(rates, ","), "rates tried for the highest sustained rate, increasing, or none")
	fs.DurationVar(&o.SweepDuration, "sweep-duration", 20*time.Second, "measurement window of each sweep rate")
	pyLoop := fs.Bool("python-loop", true, "also run the Python loop (pyloop.py)")
	fs.IntVar(&o.PyThreads, "py-threads", 1, "torch threads in the Python loop")
	fs.IntVar(&o.Priority, "realtime-priority", 50, "SCHED_FIFO priority of both loops' control threads (0: ordinary scheduling)")
	fs.BoolVar(&o.TransitionLog, "transition-log", true, "enable the daemon's transition log in the main run (it stores every cycle's frame)")
	fs.StringArrayVar(&o.DaemonSet, "daemon-set", nil, "extra robodistilld --set override for every run, e.g. loop.spin_us=2000 (repeatable)")
	fs.IntVar(&o.Nice, "nice", 0, "niceness of the daemon and the Python loop (robodistilld.service uses -5; below 0 needs root)")
	fs.DurationVar(&o.StartTimeout, "start-timeout", 2*time.Minute, "how long a daemon or the Python loop may take to start")
	asJSON := fs.Bool("json", false, "print the report as one JSON line instead of a table")
	reportFile := fs.String("report", "", "also write the JSON report to this file")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "daemonbench measures robodistilld (and the same loop in Python) over ROS against the sim bridge.\n\n"+
			"Usage: daemonbench [flags]\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "daemonbench: %v (see --help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "daemonbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var err error
	if o.Sweep, err = parseRates(*sweep); err != nil {
		fmt.Fprintf(stderr, "daemonbench: %v\n", err)
		return 2
	}
	o.SkipPython = !*pyLoop
	if !*quiet {
		o.Progress = stderr
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "daemonbench: %v\n", err)
		return 2
	}
	rep, err := bench.Run(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "daemonbench: interrupted")
			return 1
		}
		fmt.Fprintf(stderr, "daemonbench: %v\n", err)
		return 1
	}
	if *reportFile != "" {
		if err := writeReport(*reportFile, rep); err != nil {
			fmt.Fprintf(stderr, "daemonbench: --report: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "daemonbench: %v\n", err)
		return 1
	}
	return 0
}

func writeReport(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
