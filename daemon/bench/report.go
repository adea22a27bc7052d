package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a bench run's result: the setup, the figures of the daemon (Go) and of the
// Python loop over the same bridge and models, the rate sweeps and the goals.
type Report struct {
	Started time.Time `json:"started"`
	CPUs    int       `json:"cpus"`
	Setup   Setup     `json:"setup"`
	// Go is robodistilld's run at the configured rate; Python is pyloop.py's.
	Go     *LoopFigures `json:"go"`
	Python *LoopFigures `json:"python,omitempty"`
	// Sweeps: short runs at increasing rates (docs/daemon-bench.md).
	GoSweep     *Sweep `json:"go_sweep,omitempty"`
	PythonSweep *Sweep `json:"python_sweep,omitempty"`
	// Bridge is the sim bridge's own account at the end.
	Bridge *BridgeFigures `json:"bridge,omitempty"`
	Goals  []Goal         `json:"goals"`
	// WorkDir holds the models, configurations and every process's log (when kept).
	WorkDir string `json:"work_dir,omitempty"`
}

// Setup is what was measured.
type Setup struct {
	Task          string   `json:"task"`
	Camera        string   `json:"camera"`
	Size          int      `json:"size"`
	CameraRateHz  int      `json:"camera_rate_hz"`
	RateHz        int      `json:"rate_hz"`
	Seconds       float64  `json:"seconds"`
	WarmupSeconds float64  `json:"warmup_seconds"`
	SweepSeconds  float64  `json:"sweep_seconds"`
	Reward        string   `json:"reward"`
	Policy        string   `json:"policy"`
	Members       int      `json:"reward_members"`
	Untrained     bool     `json:"untrained"`
	TransitionLog bool     `json:"transition_log"`
	PyThreads     int      `json:"python_threads"`
	Nice          int      `json:"nice"`
	Priority      int      `json:"realtime_priority"` // SCHED_FIFO priority of both control threads (0: none)
	DaemonSet     []string `json:"daemon_set,omitempty"`
}

// LoopFigures are one loop's figures over a measurement window. Times are milliseconds.
type LoopFigures struct {
	Impl       string  `json:"impl"` // "go" (robodistilld) or "python" (pyloop.py)
	RateHz     int     `json:"rate_hz"`
	Seconds    float64 `json:"seconds"`
	Cycles     uint64  `json:"cycles"`
	AchievedHz float64 `json:"achieved_hz"`
	// Overruns are cycles that finished after the next deadline (robodistilld's
	// robodistilld_loop_overruns_total; pyloop counts the same way).
	Overruns   uint64  `json:"overruns"`
	OverrunPct float64 `json:"overrun_pct"`
	Lateness   Dist    `json:"lateness_ms"`
	// WakeFloor is a bare loop's lateness in the same window (probe.go): the machine's
	// share of Lateness.
	WakeFloor       *WakeFloor `json:"wake_floor_ms,omitempty"`
	Compute         Dist       `json:"compute_ms"`
	CameraToCommand Dist       `json:"camera_to_command_ms"`
	// AllocsPerCycle is the process's heap allocations (go_memstats_mallocs_total)
	// between the scrapes divided by the cycles: the whole process, so goroslib's
	// message decoding and encoding count too. Absent for Python.
	AllocsPerCycle *float64 `json:"allocs_per_cycle,omitempty"`
	BytesPerCycle  *float64 `json:"alloc_bytes_per_cycle,omitempty"`
	// RSS (VmRSS) at the start, the middle and the end of the window: growth that goes
	// on in the second half is a leak, growth that stops is buffers filling up.
	RSSStartMB  float64 `json:"rss_start_mb"`
	RSSMidMB    float64 `json:"rss_mid_mb"`
	RSSEndMB    float64 `json:"rss_end_mb"`
	RSSGrowthMB float64 `json:"rss_growth_mb"`
	// CameraHz is the rate at which camera frames (camera_info) reached the harness
	// during the window: what the loop had to work with.
	CameraHz float64 `json:"camera_hz"`
	Load     Load    `json:"load"`
	// SafetyState is the daemon's safety state at the end (robodistilld_safety_state).
	SafetyState string  `json:"safety_state,omitempty"`
	LogDrops    *uint64 `json:"transition_log_drops,omitempty"`
	// Frames and RewardRuns (Python): frames received and reward-ensemble runs.
	Frames     uint64 `json:"frames,omitempty"`
	RewardRuns uint64 `json:"reward_runs,omitempty"`
	Runtime    string `json:"runtime,omitempty"` // Python: interpreter, torch, cv2 versions

	// The histograms behind the Go figures, for the goal verdicts.
	lateness, compute, camToCmd *Histogram
}

// Dist is a distribution's median, 99th percentile and maximum, in ms. Exact figures
// come from every sample (Python); the daemon's come from its Prometheus histograms, and
// each then lies in the bucket given beside it (the value is interpolated inside it; a
// maximum is its bucket's upper bound).
type Dist struct {
	P50       float64   `json:"p50"`
	P99       float64   `json:"p99"`
	Max       float64   `json:"max"`
	Exact     bool      `json:"exact"`
	P50Bucket *[2]Bound `json:"p50_bucket,omitempty"`
	P99Bucket *[2]Bound `json:"p99_bucket,omitempty"`
	MaxBucket *[2]Bound `json:"max_bucket,omitempty"`
}

// Bound is a bucket bound in ms; +Inf is written as null.
type Bound float64

// MarshalJSON writes null for an infinite bound (JSON has no infinity).
func (b Bound) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(b), 0) || math.IsNaN(float64(b)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(b))
}

// UnmarshalJSON reads null as +Inf.
func (b *Bound) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = Bound(math.Inf(1))
		return nil
	}
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*b = Bound(f)
	return nil
}

// Load is the 1-minute load average sampled during a window.
type Load struct {
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// Sweep is a rate sweep: short runs at increasing rates until one is not sustained.
type Sweep struct {
	Steps []SweepStep `json:"steps"`
	// MaxHz is the highest rate sustained (0: none).
	MaxHz int `json:"max_hz"`
}

// SweepStep is one rate's short run. A rate is sustained when at most 1 % of the cycles
// overran and the wake lateness p99 is at most one period.
type SweepStep struct {
	RateHz        int     `json:"rate_hz"`
	Cycles        uint64  `json:"cycles"`
	AchievedHz    float64 `json:"achieved_hz"`
	OverrunPct    float64 `json:"overrun_pct"`
	LatenessP99Ms float64 `json:"lateness_p99_ms"`
	ComputeP99Ms  float64 `json:"compute_p99_ms"`
	// CameraToCommandP99Ms is the camera-to-command p99 at this rate.
	CameraToCommandP99Ms float64 `json:"camera_to_command_p99_ms"`
	LatenessExact        bool    `json:"lateness_exact"`
	Load                 float64 `json:"load"`
	Sustained            bool    `json:"sustained"`
	Error                string  `json:"error,omitempty"`
}

// BridgeFigures is the sim bridge's summary (its --json line) over the whole bench.
type BridgeFigures struct {
	Seconds        float64 `json:"seconds"`
	Steps          uint64  `json:"steps"`
	Images         uint64  `json:"images"`
	Overruns       uint64  `json:"overruns"`
	CameraSkipped  uint64  `json:"camera_skipped"`
	WorkP50Ms      float64 `json:"work_p50_ms"`
	WorkP99Ms      float64 `json:"work_p99_ms"`
	ImageWorkP50Ms float64 `json:"image_work_p50_ms"`
	ImageWorkP99Ms float64 `json:"image_work_p99_ms"`
}

// Goal is one of the goals with a verdict for each implementation.
type Goal struct {
	Name   string  `json:"name"`
	Target string  `json:"target"`
	Go     Verdict `json:"go"`
	Python Verdict `json:"python"`
}

// Verdict is a goal's outcome. Undecided means the daemon's histogram cannot tell: the
// goal lies inside the bucket that holds the percentile.
type Verdict string

// Verdicts.
const (
	Pass      Verdict = "pass"
	Fail      Verdict = "fail"
	Undecided Verdict = "undecided"
	NA        Verdict = "n/a"
)

// The goals.
const (
	GoalLatenessP99 = time.Millisecond
	GoalComputeP99  = 3 * time.Millisecond
	GoalLatencyP99  = 5 * time.Millisecond
	GoalRateHz      = 500
)

// quantileVerdict decides "p-quantile ≤ goal" from a histogram, or from an exact figure.
func quantileVerdict(h *Histogram, exact float64, q float64, goal time.Duration) Verdict {
	g := goal.Seconds()
	if h == nil {
		if math.IsNaN(exact) {
			return NA
		}
		if exact <= g*1000 {
			return Pass
		}
		return Fail
	}
	if h.Count == 0 {
		return NA
	}
	lo, hi := h.AtMost(g)
	switch {
	case lo >= q:
		return Pass
	case hi < q:
		return Fail
	}
	return Undecided
}

// evaluate fills r.Goals.
func (r *Report) evaluate() {
	figs := func(f *LoopFigures, pick func(*LoopFigures) (*Histogram, float64), q float64, goal time.Duration) Verdict {
		if f == nil {
			return NA
		}
		h, v := pick(f)
		return quantileVerdict(h, v, q, goal)
	}
	lat := func(f *LoopFigures) (*Histogram, float64) { return f.lateness, f.Lateness.P99 }
	cmp := func(f *LoopFigures) (*Histogram, float64) { return f.compute, f.Compute.P99 }
	c2c := func(f *LoopFigures) (*Histogram, float64) { return f.camToCmd, f.CameraToCommand.P99 }
	alloc := func(f *LoopFigures) Verdict {
		if f == nil || f.AllocsPerCycle == nil {
			return NA
		}
		if *f.AllocsPerCycle == 0 {
			return Pass
		}
		return Fail
	}
	rate := func(s *Sweep) Verdict {
		if s == nil || len(s.Steps) == 0 {
			return NA
		}
		if s.MaxHz >= GoalRateHz {
			return Pass
		}
		last := s.Steps[len(s.Steps)-1]
		if last.Sustained && last.RateHz < GoalRateHz {
			return NA // the sweep stopped below the goal without failing
		}
		return Fail
	}
	r.Goals = []Goal{
		{"wake lateness p99", "≤ 1 ms", figs(r.Go, lat, 0.99, GoalLatenessP99), figs(r.Python, lat, 0.99, GoalLatenessP99)},
		{"cycle compute p99", "≤ 3 ms", figs(r.Go, cmp, 0.99, GoalComputeP99), figs(r.Python, cmp, 0.99, GoalComputeP99)},
		{"camera-to-command p99", "≤ 5 ms", figs(r.Go, c2c, 0.99, GoalLatencyP99), figs(r.Python, c2c, 0.99, GoalLatencyP99)},
		{"allocations per cycle", "0", alloc(r.Go), alloc(r.Python)},
		{"highest sustained rate", "≥ 500 Hz", rate(r.GoSweep), rate(r.PythonSweep)},
	}
}

// WriteJSON writes the report as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func ms(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.IsInf(v, 1):
		return "∞"
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func bucketText(b *[2]Bound) string {
	if b == nil {
		return ""
	}
	hi := float64(b[1])
	if math.IsInf(hi, 1) {
		return fmt.Sprintf(" (> %s)", strings.TrimSuffix(ms(float64(b[0])), " ms")+" ms")
	}
	return fmt.Sprintf(" (%s–%s)", strings.TrimSuffix(ms(float64(b[0])), " ms"), ms(hi))
}

// cell formats one percentile of d.
func cell(d Dist, which string) string {
	switch which {
	case "p50":
		return ms(d.P50) + bucketText(d.P50Bucket)
	case "p99":
		return ms(d.P99) + bucketText(d.P99Bucket)
	}
	if d.Exact {
		return ms(d.Max)
	}
	if d.MaxBucket != nil && math.IsInf(float64(d.MaxBucket[1]), 1) {
		return "> " + ms(float64(d.MaxBucket[0]))
	}
	return "≤ " + ms(d.Max) + bucketText(d.MaxBucket)
}

func verdictText(v Verdict) string {
	switch v {
	case Pass:
		return "  ok"
	case Fail:
		return "  MISSED"
	case Undecided:
		return "  ? (bucket)"
	}
	return ""
}

// WriteTable writes the report for people: the setup, then one row per figure with the
// goal, the daemon's figure and the Python loop's, then the sweeps.
func (r *Report) WriteTable(w io.Writer) error {
	s := r.Setup
	models := "given models"
	if s.Untrained {
		models = fmt.Sprintf("untrained models of the real shapes (%d-member reward CNN, policy MLP 39-256-256-4)", s.Members)
	}
	fmt.Fprintf(w, "robodistilld bench: %s, camera %s %d×%d px at %d Hz, loop %d Hz, %s per run (+%s warm-up); %s\n",
		s.Task, s.Camera, s.Size, s.Size, s.CameraRateHz, s.RateHz, time.Duration(s.Seconds*float64(time.Second)).Round(time.Second),
		time.Duration(s.WarmupSeconds*float64(time.Second)).Round(time.Second), models)
	goal := map[string]Goal{}
	for _, g := range r.Goals {
		goal[g.Name] = g
	}
	load := func(f *LoopFigures) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.1f (max %.1f)", f.Load.Mean, f.Load.Max)
	}
	if len(s.DaemonSet) > 0 {
		fmt.Fprintf(w, "robodistilld overrides: --set %s\n", strings.Join(s.DaemonSet, " --set "))
	}
	sched := "the ordinary scheduler"
	if s.Priority > 0 {
		sched = fmt.Sprintf("control threads asking for SCHED_FIFO %d", s.Priority)
	}
	fmt.Fprintf(w, "machine: %d CPUs; 1-min load average during the Go run %s, during the Python run %s; both at nice %d, %s\n", r.CPUs, load(r.Go), load(r.Python), s.Nice, sched)
	if b := r.Bridge; b != nil && b.Seconds > 0 {
		fmt.Fprintf(w, "sim bridge over %.0f s: %.1f states/s, %.1f images/s (%d dropped); render+publish p50 %s p99 %s\n",
			b.Seconds, float64(b.Steps)/b.Seconds, float64(b.Images)/b.Seconds, b.CameraSkipped, ms(b.ImageWorkP50Ms), ms(b.ImageWorkP99Ms))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tgoal\tgo (robodistilld)\tpython (rospy + torch)\n")
	row := func(name, target string, g, p func(*LoopFigures) string, gv, pv Verdict) {
		cellOf := func(f *LoopFigures, fn func(*LoopFigures) string, v Verdict) string {
			if f == nil {
				return "–"
			}
			return fn(f) + verdictText(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, target, cellOf(r.Go, g, gv), cellOf(r.Python, p, pv))
	}
	dist := func(pick func(*LoopFigures) Dist, which string) func(*LoopFigures) string {
		return func(f *LoopFigures) string { return cell(pick(f), which) }
	}
	lat := func(f *LoopFigures) Dist { return f.Lateness }
	cmp := func(f *LoopFigures) Dist { return f.Compute }
	c2c := func(f *LoopFigures) Dist { return f.CameraToCommand }
	gl := goal["wake lateness p99"]
	row("wake lateness p50", "", dist(lat, "p50"), dist(lat, "p50"), NA, NA)
	row("wake lateness p99", gl.Target, dist(lat, "p99"), dist(lat, "p99"), gl.Go, gl.Python)
	row("wake lateness max", "", dist(lat, "max"), dist(lat, "max"), NA, NA)
	floor := func(f *LoopFigures) string {
		w := f.WakeFloor
		switch {
		case w == nil:
			return "not measured"
		case w.Wakes == 0:
			return "failed: " + w.Error
		}
		sched := "ordinary scheduling"
		if w.Priority > 0 {
			sched = fmt.Sprintf("SCHED_FIFO %d", w.Priority)
		}
		return fmt.Sprintf("%s / %s / %s (%s)", strings.TrimSuffix(ms(w.P50), " ms"), strings.TrimSuffix(ms(w.P99), " ms"), ms(w.Max), sched)
	}
	row("  machine's floor p50/p99/max", "", floor, floor, NA, NA)
	gc := goal["cycle compute p99"]
	row("cycle compute p50", "", dist(cmp, "p50"), dist(cmp, "p50"), NA, NA)
	row("cycle compute p99", gc.Target, dist(cmp, "p99"), dist(cmp, "p99"), gc.Go, gc.Python)
	gk := goal["camera-to-command p99"]
	row("camera-to-command p50", "", dist(c2c, "p50"), dist(c2c, "p50"), NA, NA)
	row("camera-to-command p99", gk.Target, dist(c2c, "p99"), dist(c2c, "p99"), gk.Go, gk.Python)
	ga := goal["allocations per cycle"]
	allocs := func(f *LoopFigures) string {
		if f.AllocsPerCycle == nil {
			return "n/a"
		}
		s := fmt.Sprintf("%.2f (whole process)", *f.AllocsPerCycle)
		if f.BytesPerCycle != nil {
			s = fmt.Sprintf("%.2f, %.0f B (whole process)", *f.AllocsPerCycle, *f.BytesPerCycle)
		}
		return s
	}
	row("allocations per cycle", ga.Target, allocs, allocs, ga.Go, ga.Python)
	rss := func(f *LoopFigures) string {
		return fmt.Sprintf("%+.1f MB (%.1f → %.1f → %.1f)", f.RSSGrowthMB, f.RSSStartMB, f.RSSMidMB, f.RSSEndMB)
	}
	row("RSS growth (start → mid → end)", "", rss, rss, NA, NA)
	over := func(f *LoopFigures) string {
		return fmt.Sprintf("%d of %d cycles (%.2f %%)", f.Overruns, f.Cycles, f.OverrunPct)
	}
	row("overruns", "", over, over, NA, NA)
	rate := func(f *LoopFigures) string {
		return fmt.Sprintf("%.2f Hz (camera %.1f Hz)", f.AchievedHz, f.CameraHz)
	}
	row("achieved rate", "", rate, rate, NA, NA)
	gr := goal["highest sustained rate"]
	sweep := func(s *Sweep) string {
		if s == nil || len(s.Steps) == 0 {
			return "not measured"
		}
		last := s.Steps[len(s.Steps)-1]
		txt := fmt.Sprintf("%d Hz", s.MaxHz)
		if last.Sustained {
			txt += fmt.Sprintf(" (all rates up to %d Hz sustained)", last.RateHz)
		}
		return txt
	}
	fmt.Fprintf(tw, "highest sustained rate\t%s\t%s\t%s\n", gr.Target, sweep(r.GoSweep)+verdictText(gr.Go), sweep(r.PythonSweep)+verdictText(gr.Python))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sw := range []struct {
		name string
		s    *Sweep
	}{{"go", r.GoSweep}, {"python", r.PythonSweep}} {
		if sw.s == nil || len(sw.s.Steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s rate sweep (%.0f s per rate; sustained: overruns ≤ 1 %% and lateness p99 ≤ one period):\n", sw.name, r.Setup.SweepSeconds)
		for _, st := range sw.s.Steps {
			if st.Error != "" {
				fmt.Fprintf(w, "  %4d Hz: failed: %s\n", st.RateHz, st.Error)
				continue
			}
			mark := "sustained"
			if !st.Sustained {
				mark = "NOT sustained"
			}
			approx := "≈"
			if st.LatenessExact {
				approx = ""
			}
			fmt.Fprintf(w, "  %4d Hz: %-13s achieved %7.1f Hz, overruns %5.2f %%, lateness p99 %s%s (period %s), compute p99 %s%s, camera-to-command p99 %s%s, load %.1f\n",
				st.RateHz, mark, st.AchievedHz, st.OverrunPct, approx, ms(st.LatenessP99Ms), ms(1000/float64(st.RateHz)), approx, ms(st.ComputeP99Ms),
				approx, ms(st.CameraToCommandP99Ms), st.Load)
		}
	}
	notes := []string{
		"Go percentiles come from robodistilld's Prometheus histograms: the value is interpolated inside the bucket shown in brackets, a maximum is its bucket's bound, and a goal inside that bucket is undecided ('?').",
		"Go allocations are the whole process's (goroslib decodes every received message and encodes every sent one); the cycle's own are counted by daemon/core's TestCycleAllocs.",
		"The machine's floor is a bare control/loop in the bench process, at the loop's rate and one realtime priority above it, doing nothing but record its own wake lateness in the same window: lateness the daemon shares with it comes from the kernel and the rest of the machine, not from the daemon.",
		"Camera-to-command is measured once per camera frame, from its receipt to the first command sent after the cycle that used it: with a free-running camera and a periodic loop it includes the wait for the next tick, up to one loop period.",
	}
	if r.WorkDir != "" {
		notes = append(notes, "models, configurations and logs: "+r.WorkDir)
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}
