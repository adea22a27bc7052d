package obs

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var testOptions = MetricsOptions{
	SafetyStates:      []string{"ok", "hold", "stopped", "estop"},
	TransitionReasons: []string{"stale_camera", "stale_state", "estop", "recovered"},
}

func newTestMetrics(t testing.TB) *Metrics {
	t.Helper()
	m, err := NewMetrics(testOptions)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestControlThreadZeroAlloc proves that feeding the metrics from the control thread
// does not allocate.
func TestControlThreadZeroAlloc(t *testing.T) {
	m := newTestMetrics(t)
	now := time.Now()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		m.ObserveCycle(now.Add(time.Duration(i)*20*time.Millisecond), 150*time.Microsecond, 3*time.Millisecond, i%7 == 0)
		m.ObserveCameraToCommand(45 * time.Millisecond)
		m.SetSafetyState(i % 4)
		m.SafetyTransition(i % 6) // 4 and 5 are outside the list: "other"
		m.TransitionLogDrop()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per control cycle, want 0", allocs)
	}
}

func BenchmarkControlThread(b *testing.B) {
	m := newTestMetrics(b)
	now := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		m.ObserveCycle(now, 150*time.Microsecond, 3*time.Millisecond, false)
		m.ObserveCameraToCommand(45 * time.Millisecond)
		m.SetSafetyState(i & 3)
	}
}

// gather returns the registry's families by name.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func labels(mt *dto.Metric) string {
	var s []string
	for _, l := range mt.GetLabel() {
		s = append(s, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(s, ",")
}

// values maps each series' labels to its value (counter or gauge).
func values(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mt := range f.GetMetric() {
		switch {
		case mt.Counter != nil:
			out[labels(mt)] = mt.GetCounter().GetValue()
		case mt.Gauge != nil:
			out[labels(mt)] = mt.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetricsValues(t *testing.T) {
	m := newTestMetrics(t)
	now := time.Now()
	m.ObserveCycle(now, 100*time.Microsecond, 2*time.Millisecond, false)
	m.ObserveCycle(now, 300*time.Microsecond, 25*time.Millisecond, true)
	m.ObserveCycle(now, 200*time.Microsecond, 4*time.Millisecond, false)
	m.ObserveCameraToCommand(40 * time.Millisecond)
	m.SetSafetyState(1)
	m.SetSafetyState(99) // ignored
	m.SafetyTransition(0)
	m.SafetyTransition(0)
	m.SafetyTransition(3)
	m.SafetyTransition(-1)
	m.TransitionLogDrop()
	m.SetModel("reward", "aaa", "/m/reward.onnx")
	m.SetModel("policy", "bbb", "/m/policy.onnx")
	m.SetModel("reward", "ccc", "/m/reward2.onnx") // a reload replaces the series

	f := gather(t, m)
	for name, want := range map[string]map[string]float64{
		"robodistilld_loop_cycles_total":          {"": 3},
		"robodistilld_loop_overruns_total":        {"": 1},
		"robodistilld_transition_log_drops_total": {"": 1},
		"robodistilld_safety_state":               {"state=ok": 0, "state=hold": 1, "state=stopped": 0, "state=estop": 0},
		"robodistilld_safety_transitions_total": {"reason=stale_camera": 2, "reason=stale_state": 0, "reason=estop": 0,
			"reason=recovered": 1, "reason=other": 1},
		"robodistilld_model_info": {"kind=reward,path=/m/reward2.onnx,sha256=ccc": 1, "kind=policy,path=/m/policy.onnx,sha256=bbb": 1},
	} {
		fam, ok := f[name]
		if !ok {
			t.Errorf("%s not registered", name)
			continue
		}
		got := values(fam)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s{%s} = %v, want %v (all: %v)", name, k, got[k], v, got)
			}
		}
	}
	for name, want := range map[string]struct {
		count uint64
		sum   float64
	}{
		"robodistilld_loop_lateness_seconds":     {3, 600e-6},
		"robodistilld_cycle_compute_seconds":     {3, 31e-3},
		"robodistilld_camera_to_command_seconds": {1, 40e-3},
	} {
		h := f[name].GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != want.count || math.Abs(h.GetSampleSum()-want.sum) > 1e-12 {
			t.Errorf("%s: count %d sum %g, want %d %g", name, h.GetSampleCount(), h.GetSampleSum(), want.count, want.sum)
		}
	}
	// The 25 ms overrun falls in the bucket that covers a 20 ms period and more.
	var le25 uint64
	for _, b := range f["robodistilld_cycle_compute_seconds"].GetMetric()[0].GetHistogram().GetBucket() {
		if b.GetUpperBound() >= 0.025 {
			le25 = b.GetCumulativeCount()
			break
		}
	}
	if le25 != 3 {
		t.Errorf("compute histogram: %d samples up to the first bucket above 25 ms, want 3", le25)
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if m.SafetyState() != "hold" {
		t.Errorf("SafetyState %q", m.SafetyState())
	}
	if got := m.Models(); len(got) != 2 || got["reward"] != (ModelInfo{SHA256: "ccc", Path: "/m/reward2.onnx"}) {
		t.Errorf("Models %v", got)
	}
}

// TestPrivateRegistry checks that the metrics stay off the global registry, so that two
// instances (tests, a daemon and its sim bridge in one process) do not collide.
func TestPrivateRegistry(t *testing.T) {
	a, b := newTestMetrics(t), newTestMetrics(t)
	a.TransitionLogDrop()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), Namespace+"_") {
			t.Fatalf("%s on the global registry", f.GetName())
		}
	}
	if v := values(gather(t, b)["robodistilld_transition_log_drops_total"])[""]; v != 0 {
		t.Fatalf("second instance sees the first's counts: %v", v)
	}
}

func TestMetricsScrape(t *testing.T) {
	m := newTestMetrics(t)
	m.ObserveCycle(time.Now(), time.Millisecond, time.Millisecond, false)
	m.SetSafetyState(3)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{
		"# TYPE robodistilld_loop_lateness_seconds histogram",
		"robodistilld_loop_cycles_total 1",
		`robodistilld_safety_state{state="estop"} 1`,
		`robodistilld_safety_state{state="ok"} 0`,
		`robodistilld_safety_transitions_total{reason="other"} 0`,
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestConcurrentScrape runs the control thread's calls against scrapes (for -race) and
// checks that every scrape sees exactly one current safety state.
func TestConcurrentScrape(t *testing.T) {
	m := newTestMetrics(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			m.ObserveCycle(time.Now(), time.Microsecond, time.Millisecond, false)
			m.SetSafetyState(i % 4)
			m.SafetyTransition(i % 5)
		}
	}()
	for range 50 {
		f := gather(t, m)
		ones := 0
		for _, v := range values(f["robodistilld_safety_state"]) {
			if v == 1 {
				ones++
			}
		}
		if ones != 1 {
			t.Errorf("%d states are current", ones)
		}
		m.SetModel("policy", "x", "/p")
	}
	close(done)
	wg.Wait()
}

func TestNewMetricsErrors(t *testing.T) {
	for _, tc := range []struct {
		o    MetricsOptions
		want string
	}{
		{MetricsOptions{}, "obs.NewMetrics: no safety states"},
		{MetricsOptions{SafetyStates: []string{"ok", "ok"}}, `obs.NewMetrics: safety states: "ok" twice`},
		{MetricsOptions{SafetyStates: []string{"ok", ""}}, `obs.NewMetrics: safety states: empty name`},
		{MetricsOptions{SafetyStates: []string{"ok"}, TransitionReasons: []string{"other"}}, `obs.NewMetrics: transition reasons: "other" twice`},
	} {
		if _, err := NewMetrics(tc.o); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got %v, want %s", tc.o, err, tc.want)
		}
	}
	// The caller's slice is not appended to.
	reasons := make([]string, 1, 4)
	reasons[0] = "a"
	if _, err := NewMetrics(MetricsOptions{SafetyStates: []string{"ok"}, TransitionReasons: reasons}); err != nil {
		t.Fatal(err)
	}
	if full := reasons[:2]; full[1] != "" {
		t.Fatalf("NewMetrics wrote into the caller's array: %q", full)
	}
}
