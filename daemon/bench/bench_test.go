package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/control/testbin"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestMain(m *testing.M) { testbin.Main(m) }

// binaries builds robodistilld and robodistill of this tree once per test run.
func binaries(t *testing.T) (daemon, robodistill string) {
	t.Helper()
	b := testbin.Build(t, testbin.Robodistilld, testbin.Robodistill)
	return b[0], b[1]
}

// The whole harness for about 20 s of measurement: rosmaster, the sim bridge at 30 Hz
// camera, robodistilld with untrained models and the transition log, pyloop.py, and a
// two-step rate sweep of each. It checks that the report is complete and its figures
// consistent, not the timing goals (the machine is shared and loaded).
func TestHarness(t *testing.T) {
	daemon, robodistill := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	o := Options{Daemon: daemon, Robodistill: robodistill, WorkDir: t.TempDir(), Size: 64,
		Duration: 6 * time.Second, Warmup: 2 * time.Second, Sweep: []int{50, 100}, SweepDuration: 2 * time.Second,
		TransitionLog: true, Progress: testWriter{t}}
	start := time.Now()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the harness took %v", time.Since(start).Round(time.Second))
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", table.String())

	if rep.Go == nil || rep.Python == nil || rep.GoSweep == nil || rep.PythonSweep == nil || rep.Bridge == nil {
		t.Fatalf("incomplete report: go %v python %v sweeps %v %v bridge %v", rep.Go, rep.Python, rep.GoSweep, rep.PythonSweep, rep.Bridge)
	}
	if rep.Setup.Size != 64 || rep.Setup.CameraRateHz != 30 || rep.Setup.RateHz != 50 || !rep.Setup.Untrained || rep.Setup.Members != 3 ||
		!rep.Setup.TransitionLog || rep.CPUs < 1 || rep.WorkDir != o.WorkDir {
		t.Errorf("setup %+v cpus %d work dir %q", rep.Setup, rep.CPUs, rep.WorkDir)
	}
	for _, f := range []*LoopFigures{rep.Go, rep.Python} {
		checkFigures(t, f, 50, o.Duration)
		// The machine's floor ran through the window: at 50 Hz at least its 6 s.
		if w := f.WakeFloor; w == nil || w.Wakes < 250 || !w.Exact || w.P50 > w.P99 || w.P99 > w.Max {
			t.Errorf("%s: machine's floor %+v", f.Impl, w)
		}
	}
	g := rep.Go
	if g.AllocsPerCycle == nil || *g.AllocsPerCycle < 0 || g.BytesPerCycle == nil || g.LogDrops == nil || g.SafetyState == "" {
		t.Errorf("go: allocations %v, bytes %v, log drops %v, safety state %q", g.AllocsPerCycle, g.BytesPerCycle, g.LogDrops, g.SafetyState)
	}
	if g.Lateness.Exact || g.Lateness.P99Bucket == nil || !(float64(g.Lateness.P99Bucket[0]) <= g.Lateness.P99 && g.Lateness.P99 <= float64(g.Lateness.P99Bucket[1])) {
		t.Errorf("go lateness %+v", g.Lateness)
	}
	p := rep.Python
	if !p.Lateness.Exact || p.AllocsPerCycle != nil || p.Frames == 0 || p.RewardRuns == 0 || p.RewardRuns > p.Frames+1 || !strings.Contains(p.Runtime, "torch") {
		t.Errorf("python: exact %v allocs %v frames %d reward runs %d runtime %q", p.Lateness.Exact, p.AllocsPerCycle, p.Frames, p.RewardRuns, p.Runtime)
	}
	for name, s := range map[string]*Sweep{"go": rep.GoSweep, "python": rep.PythonSweep} {
		if len(s.Steps) == 0 || s.Steps[0].RateHz != 50 {
			t.Errorf("%s sweep %+v", name, s)
			continue
		}
		for i, st := range s.Steps {
			if st.Error != "" {
				t.Errorf("%s sweep at %d Hz failed: %s", name, st.RateHz, st.Error)
				continue
			}
			if st.Cycles == 0 || st.AchievedHz > 1.05*float64(st.RateHz) || st.LatenessP99Ms < 0 || math.IsNaN(st.LatenessP99Ms) {
				t.Errorf("%s sweep step %+v", name, st)
			}
			if st.Sustained != (st.OverrunPct <= 1 && st.LatenessP99Ms <= 1000/float64(st.RateHz)) {
				t.Errorf("%s sweep step %+v: sustained does not follow from its figures", name, st)
			}
			if st.Sustained && s.MaxHz < st.RateHz || !st.Sustained && i != len(s.Steps)-1 {
				t.Errorf("%s sweep: max %d Hz, steps %+v", name, s.MaxHz, s.Steps)
			}
		}
	}
	b := rep.Bridge
	if b.Steps == 0 || b.Images == 0 || b.Images >= b.Steps || b.Seconds <= 0 {
		t.Errorf("bridge %+v: a 30 Hz camera beside 50 Hz states", b)
	}
	if len(rep.Goals) != 5 {
		t.Errorf("goals %+v", rep.Goals)
	}
	for _, gl := range rep.Goals {
		for _, v := range []Verdict{gl.Go, gl.Python} {
			switch v {
			case Pass, Fail, Undecided, NA:
			default:
				t.Errorf("goal %q verdict %q", gl.Name, v)
			}
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON line does not parse: %v", err)
	}
	for _, row := range []string{"wake lateness p99", "cycle compute p99", "camera-to-command p99", "allocations per cycle", "RSS growth", "overruns", "highest sustained rate"} {
		if !strings.Contains(table.String(), row) {
			t.Errorf("table lacks %q", row)
		}
	}
	// Every process's log is in the work folder.
	for _, f := range []string{"bridge.log", "go-main.log", "py-main.log", "go-sweep-50hz.log", "py-sweep-50hz.log", "daemon.yaml"} {
		if st, err := os.Stat(filepath.Join(o.WorkDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// checkFigures checks one main run's figures for completeness and consistency.
func checkFigures(t *testing.T, f *LoopFigures, rate int, window time.Duration) {
	t.Helper()
	if f.RateHz != rate || f.Cycles == 0 || f.AchievedHz <= 0 || f.AchievedHz > 1.05*float64(rate) {
		t.Errorf("%s: %d Hz configured, %d cycles, %.2f Hz", f.Impl, f.RateHz, f.Cycles, f.AchievedHz)
	}
	if math.Abs(f.Seconds-window.Seconds()) > 0.25*window.Seconds()+0.5 {
		t.Errorf("%s: window %.2f s, want about %v", f.Impl, f.Seconds, window)
	}
	if f.Overruns > f.Cycles || math.Abs(f.OverrunPct-100*float64(f.Overruns)/float64(f.Cycles)) > 1e-9 {
		t.Errorf("%s: %d overruns of %d cycles, %.3f %%", f.Impl, f.Overruns, f.Cycles, f.OverrunPct)
	}
	for name, d := range map[string]Dist{"lateness": f.Lateness, "compute": f.Compute, "camera-to-command": f.CameraToCommand} {
		if !(d.P50 >= 0 && d.P50 <= d.P99 && d.P99 <= d.Max) || math.IsInf(d.P50, 0) {
			t.Errorf("%s %s: p50 %v p99 %v max %v", f.Impl, name, d.P50, d.P99, d.Max)
		}
	}
	if f.Compute.P50 <= 0 || f.CameraToCommand.P50 <= 0 {
		t.Errorf("%s: compute p50 %v, camera-to-command p50 %v: a cycle takes time and a frame has an age", f.Impl, f.Compute.P50, f.CameraToCommand.P50)
	}
	if f.RSSStartMB < 10 || f.RSSMidMB < 10 || f.RSSEndMB < 10 || math.Abs(f.RSSGrowthMB-(f.RSSEndMB-f.RSSStartMB)) > 1e-9 {
		t.Errorf("%s: RSS %.1f → %.1f → %.1f MB, growth %.1f", f.Impl, f.RSSStartMB, f.RSSMidMB, f.RSSEndMB, f.RSSGrowthMB)
	}
	if f.CameraHz <= 0 || f.CameraHz > 35 {
		t.Errorf("%s: camera at %.1f Hz during the window (the bridge's is 30 Hz)", f.Impl, f.CameraHz)
	}
	if f.Load.Mean <= 0 || f.Load.Max < f.Load.Mean {
		t.Errorf("%s: load %+v", f.Impl, f.Load)
	}
}
