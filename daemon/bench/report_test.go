package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// The daemon's timing buckets (docs/daemon-config.md: 50 µs doubling to ~100 ms).
var timing = func() []float64 {
	var b []float64
	for v := 50e-6; len(b) < 12; v *= 2 {
		b = append(b, v)
	}
	return b
}()

func TestQuantileVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Histogram
		goal time.Duration
		want Verdict
	}{
		// Buckets ≤50µs … ≤0.8ms, ≤1.6ms, …: 100 samples.
		{"all below the bucket under the goal", hist(timing, 0, 50, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), time.Millisecond, Pass},
		{"p99 in the goal's bucket", hist(timing, 0, 50, 48, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0), time.Millisecond, Undecided},
		{"p99 above the goal's bucket", hist(timing, 0, 50, 40, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0), time.Millisecond, Fail},
		{"one sample in the goal's bucket is the 1 % allowed", hist(timing, 0, 50, 49, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0), time.Millisecond, Pass},
		{"goal on a bound decides exactly", hist(timing, 0, 50, 48, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0), 3200 * time.Microsecond, Pass},
		{"goal on a bound, 2 % above", hist(timing, 0, 50, 48, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0), 3200 * time.Microsecond, Fail},
		{"empty", hist(timing, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), time.Millisecond, NA},
	} {
		h := tc.h
		if got := quantileVerdict(&h, math.NaN(), 0.99, tc.goal); got != tc.want {
			lo, hi := h.AtMost(tc.goal.Seconds())
			t.Errorf("%s: %s, want %s (share ≤ goal in [%v, %v])", tc.name, got, tc.want, lo, hi)
		}
	}
	for _, tc := range []struct {
		v    float64
		want Verdict
	}{{0.9, Pass}, {1, Pass}, {1.01, Fail}, {math.NaN(), NA}} {
		if got := quantileVerdict(nil, tc.v, 0.99, time.Millisecond); got != tc.want {
			t.Errorf("exact %v ms: %s, want %s", tc.v, got, tc.want)
		}
	}
}

func sampleReport() *Report {
	lat := hist(timing, 0, 50, 49, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	cmp := hist(timing, 0, 0, 0, 0, 60, 38, 2, 0, 0, 0, 0, 0, 0)
	c2c := hist([]float64{0.005, 0.00825}, 10, 80, 10)
	allocs, bytes := 12.5, 3000.0
	g := &LoopFigures{Impl: "go", RateHz: 50, Seconds: 600, Cycles: 30000, AchievedHz: 50, Overruns: 3, OverrunPct: 0.01,
		lateness: &lat, compute: &cmp, camToCmd: &c2c, AllocsPerCycle: &allocs, BytesPerCycle: &bytes,
		RSSStartMB: 100, RSSMidMB: 101, RSSEndMB: 101.5, RSSGrowthMB: 1.5, CameraHz: 29.9, Load: Load{Mean: 7.5, Max: 9}}
	g.Lateness, g.Compute, g.CameraToCommand = histDist(lat), histDist(cmp), histDist(c2c)
	py := &LoopFigures{Impl: "python", RateHz: 50, Seconds: 600, Cycles: 29990, AchievedHz: 49.98,
		Lateness: Dist{P50: 0.1, P99: 2.5, Max: 40, Exact: true}, Compute: Dist{P50: 1.5, P99: 2.9, Max: 20, Exact: true},
		CameraToCommand: Dist{P50: 20, P99: 35, Max: 60, Exact: true}, CameraHz: 29.8,
		WakeFloor: &WakeFloor{Wakes: 0, Error: "loop.New: boom"}}
	g.WakeFloor = &WakeFloor{Dist: Dist{P50: 0.08, P99: 3.7, Max: 13.6, Exact: true}, Priority: 51, Wakes: 30000}
	r := &Report{CPUs: 2, Setup: Setup{Task: "reach", Camera: "corner", Size: 224, CameraRateHz: 30, RateHz: 50, Seconds: 600, WarmupSeconds: 5,
		SweepSeconds: 20, Members: 3, Untrained: true}, Go: g, Python: py,
		GoSweep: &Sweep{MaxHz: 600, Steps: []SweepStep{{RateHz: 500, Cycles: 10000, AchievedHz: 500, Sustained: true},
			{RateHz: 600, Cycles: 12000, AchievedHz: 600, Sustained: true}, {RateHz: 800, Cycles: 15000, AchievedHz: 780, OverrunPct: 3}}},
		PythonSweep: &Sweep{MaxHz: 100, Steps: []SweepStep{{RateHz: 100, Cycles: 2000, AchievedHz: 100, Sustained: true, LatenessExact: true},
			{RateHz: 200, Error: "pyloop.py exited"}}},
	}
	r.evaluate()
	return r
}

func TestEvaluate(t *testing.T) {
	r := sampleReport()
	want := []Goal{
		{"wake lateness p99", "≤ 1 ms", Pass, Fail},
		{"cycle compute p99", "≤ 3 ms", Undecided, Pass},
		{"camera-to-command p99", "≤ 5 ms", Fail, Fail},
		{"allocations per cycle", "0", Fail, NA},
		{"highest sustained rate", "≥ 500 Hz", Pass, Fail},
	}
	if len(r.Goals) != len(want) {
		t.Fatalf("goals %+v", r.Goals)
	}
	for i, g := range r.Goals {
		if g != want[i] {
			t.Errorf("goal %d: %+v, want %+v", i, g, want[i])
		}
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"camera corner 224×224 px at 30 Hz, loop 50 Hz, 10m0s per run",
		"load average during the Go run 7.5 (max 9.0), during the Python run 0.0 (max 0.0); both at nice 0",
		"wake lateness p99               ≤ 1 ms",
		"0.20 ms (0.10–0.20 ms)  ok", // the Go p99: the last of the 49 samples in (0.1, 0.2]
		"2.50 ms  MISSED",
		"? (bucket)",
		"12.50, 3000 B (whole process)  MISSED",
		"+1.5 MB (100.0 → 101.0 → 101.5)",
		"3 of 30000 cycles (0.01 %)",
		"600 Hz  ok",
		"100 Hz  MISSED",
		"   800 Hz: NOT sustained",
		"   200 Hz: failed: pyloop.py exited",
		"machine's floor p50/p99/max", "0.08 / 3.70 / 13.6 ms (SCHED_FIFO 51)  failed: loop.New: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Errorf("JSON is not one line: %s", b.Bytes())
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Go.Cycles != 30000 || back.Python.Lateness.P99 != 2.5 || !back.Python.Lateness.Exact || back.Go.Lateness.Exact ||
		back.Go.WakeFloor == nil || back.Go.WakeFloor.P99 != 3.7 || back.Go.WakeFloor.Priority != 51 ||
		back.Go.Lateness.P99Bucket == nil || float64(back.Go.Lateness.P99Bucket[1]) != 0.2 || len(back.Goals) != 5 || back.GoSweep.MaxHz != 600 {
		t.Errorf("round trip: %s", b.Bytes())
	}
	// An unbounded bucket is null in JSON and +Inf again after reading.
	over := hist([]float64{0.1}, 0, 5)
	d := histDist(over)
	js, err := json.Marshal(d)
	if err != nil || !strings.Contains(string(js), `"max_bucket":[100,null]`) {
		t.Fatalf("%s %v", js, err)
	}
	var d2 Dist
	if err := json.Unmarshal(js, &d2); err != nil || !math.IsInf(float64(d2.MaxBucket[1]), 1) {
		t.Errorf("%+v %v", d2, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	exe := "/bin/true"
	ok := Options{Daemon: exe, Robodistill: exe, Python: exe}.withDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"daemon missing", func(o *Options) { o.Daemon = dir + "/none" }, "--daemon: stat " + dir + "/none: no such file or directory (build it with make build)"},
		{"daemon a folder", func(o *Options) { o.Daemon = dir }, "--daemon: " + dir + " is not an executable file"},
		{"robodistill empty", func(o *Options) { o.Robodistill = "" }, "--robodistill: required"},
		{"python unused", func(o *Options) { o.Python, o.SkipPython = "", true }, ""},
		{"reward alone", func(o *Options) { o.Reward = "r.onnx" }, "--reward and --policy: give both or neither (neither exports untrained models)"},
		{"size", func(o *Options) { o.Size = 640 }, "--size: 640 px outside 1..480 (the renderer's limit; 640×480 is not supported)"},
		{"rate", func(o *Options) { o.Rate = 1001 }, "--rate: 1001 Hz outside 1..1000 (loop.rate_hz)"},
		{"camera rate", func(o *Options) { o.CameraRate = 60 }, "--camera-rate: 60 Hz outside 1..50 (the sim bridge's rate)"},
		{"duration", func(o *Options) { o.Duration = time.Millisecond }, "--duration: 1ms is under 1s"},
		{"sweep order", func(o *Options) { o.Sweep = []int{100, 50} }, "--sweep: rates must increase within 1..1000 Hz, got [100 50]"},
		{"sweep range", func(o *Options) { o.Sweep = []int{50, 2000} }, "--sweep: rates must increase within 1..1000 Hz, got [50 2000]"},
		{"sweep duration", func(o *Options) { o.Sweep, o.SweepDuration = []int{50}, time.Millisecond }, "--sweep-duration: 1ms is under 1s"},
		{"threads", func(o *Options) { o.PyThreads = -1 }, "--py-threads: -1 is below 1"},
		{"nice", func(o *Options) { o.Nice = -21 }, "--nice: -21 outside -20..19"},
	} {
		o := ok
		tc.mod(&o)
		err := o.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCheckDisk(t *testing.T) {
	o := Options{Size: 480, Rate: 1000, Duration: 1000 * time.Hour}
	err := checkDisk(t.TempDir(), o)
	if err == nil || !strings.HasPrefix(err.Error(), "--transition-log: 480 px frames at 1000 Hz for 1000h0m0s need about 2612736") {
		t.Errorf("%v", err)
	}
	if err := checkDisk(t.TempDir(), Options{Size: 64, Rate: 50, Duration: time.Second}); err != nil {
		t.Error(err)
	}
}
