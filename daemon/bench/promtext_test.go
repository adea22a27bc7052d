package bench

import (
	"math"
	"strings"
	"testing"
)

// A scrape shaped like robodistilld's (docs/daemon-config.md), trimmed.
const scrape = `# HELP go_memstats_mallocs_total Total number of heap objects allocated.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 123456
# HELP robodistilld_loop_lateness_seconds How late each cycle started.
# TYPE robodistilld_loop_lateness_seconds histogram
robodistilld_loop_lateness_seconds_bucket{le="5e-05"} 10
robodistilld_loop_lateness_seconds_bucket{le="0.0001"} 60
robodistilld_loop_lateness_seconds_bucket{le="0.0002"} 90
robodistilld_loop_lateness_seconds_bucket{le="0.0004"} 99
robodistilld_loop_lateness_seconds_bucket{le="+Inf"} 100
robodistilld_loop_lateness_seconds_sum 0.0123
robodistilld_loop_lateness_seconds_count 100
robodistilld_model_info{kind="policy",path="/m/po\"l\\icy\n.onnx",sha256="ab"} 1
robodistilld_safety_state{state="ok"} 0
robodistilld_safety_state{state="hold"} 1
robodistilld_loop_cycles_total 100 1700000000000
process_start_time_seconds 1.7e+09
weird_nan NaN
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(scrape))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"go_memstats_mallocs_total", nil, 123456},
		{"robodistilld_loop_cycles_total", nil, 100},
		{"robodistilld_safety_state", []string{"state", "hold"}, 1},
		{"robodistilld_safety_state", []string{"state", "ok"}, 0},
		{"robodistilld_model_info", []string{"path", "/m/po\"l\\icy\n.onnx"}, 1},
		{"process_start_time_seconds", nil, 1.7e9},
	} {
		got, err := m.Value(tc.name, tc.labels...)
		if err != nil || got != tc.want {
			t.Errorf("%s%v = %v, %v; want %v", tc.name, tc.labels, got, err, tc.want)
		}
	}
	if v, err := m.Value("weird_nan"); err != nil || !math.IsNaN(v) {
		t.Errorf("NaN sample: %v %v", v, err)
	}
	if _, err := m.Value("robodistilld_safety_state", "state", "estop"); err == nil || err.Error() != "metric not exported: robodistilld_safety_state[state estop]" {
		t.Errorf("missing series: %v", err)
	}
	h, err := m.Histogram("robodistilld_loop_lateness_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 100 || h.Sum != 0.0123 || len(h.Bounds) != 4 || len(h.Cumulative) != 5 || h.Cumulative[4] != 100 {
		t.Errorf("histogram %+v", h)
	}
	if _, err := m.Histogram("robodistilld_cycle_compute_seconds"); err == nil || err.Error() != "metric not exported: histogram robodistilld_cycle_compute_seconds" {
		t.Errorf("missing histogram: %v", err)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{a=\"b\"} 1", `metrics line 1: "{a=\"b\"} 1": no metric name`},
		{"ok 1\n9lives 1", `metrics line 2: "9lives 1": no metric name`},
		{"m", "metrics line 1: m: want a value and an optional timestamp after the name, got \"\""},
		{"m 1 2 3", "metrics line 1: m: want a value and an optional timestamp after the name, got \" 1 2 3\""},
		{"m one", `metrics line 1: m: value "one": not a number`},
		{"m 1 soon", `metrics line 1: m: timestamp "soon" is not an integer`},
		{`m{a="x" 1`, `metrics line 1: m: labels: want , or } after the value of "a"`},
		{`m{a="x} 1`, `metrics line 1: m: labels: value of "a" not terminated`},
		{`m{a=x} 1`, `metrics line 1: m: labels: want a quoted value for "a"`},
		{`m{a} 1`, `metrics line 1: m: labels: want = after "a"`},
		{`m{="x"} 1`, `metrics line 1: m: labels: want a label name at "=\"x\"} 1"`},
		{`m{a="\t"} 1`, `metrics line 1: m: labels: value of "a": unknown escape \t`},
		{`m{a="1",a="2"} 1`, `metrics line 1: m: labels: "a" twice`},
	} {
		_, err := ParseMetrics(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestHistogramErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"h_bucket 1", "histogram h: a bucket without le"},
		{`h_bucket{le="x"} 1`, `histogram h: bucket le="x" is not a bound`},
		{"h_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\nh_bucket{le=\"+Inf\"} 5", "histogram h: buckets not increasing at le=2"},
		{"h_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4", "histogram h: +Inf bucket 4 below the last bucket 5"},
	} {
		m, err := ParseMetrics(strings.NewReader(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Histogram("h"); err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// hist builds a histogram from per-bucket counts (the last is the +Inf bucket).
func hist(bounds []float64, counts ...float64) Histogram {
	h := Histogram{Bounds: bounds}
	for _, c := range counts {
		h.Count += c
		h.Cumulative = append(h.Cumulative, h.Count)
	}
	return h
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestHistogramQuantiles(t *testing.T) {
	b := []float64{1, 2, 4, 8}
	h := hist(b, 10, 60, 29, 1, 0) // 100 samples
	for _, tc := range []struct {
		q             float64
		value, lo, hi float64
	}{
		{0.05, 0.5, 0, 1},   // rank 5 of the 10 in (0, 1]
		{0.5, 1.6667, 1, 2}, // rank 50: 40 of the 60 in (1, 2]
		{0.99, 4, 2, 4},     // rank 99: the last of (2, 4]
		{1, 8, 4, 8},        // rank 100: the one in (4, 8]
	} {
		e, ok := h.Quantile(tc.q)
		if !ok || math.Abs(e.Value-tc.value) > 1e-4 || e.Lo != tc.lo || e.Hi != tc.hi {
			t.Errorf("q %v: %+v, want %v in (%v, %v]", tc.q, e, tc.value, tc.lo, tc.hi)
		}
	}
	if e, _ := h.Max(); e.Value != 8 || e.Lo != 4 || e.Hi != 8 {
		t.Errorf("max %+v", e)
	}
	// Beyond the last bound: the figure is only known to exceed it.
	over := hist(b, 0, 0, 0, 98, 2)
	if e, _ := over.Quantile(0.99); e.Value != 8 || !math.IsInf(e.Hi, 1) {
		t.Errorf("p99 in +Inf bucket: %+v", e)
	}
	if e, _ := over.Max(); e.Value != 8 || !math.IsInf(e.Hi, 1) {
		t.Errorf("max in +Inf bucket: %+v", e)
	}
	if _, ok := (Histogram{Bounds: b, Cumulative: make([]float64, 5)}).Quantile(0.5); ok {
		t.Error("quantile of an empty histogram")
	}
	for _, tc := range []struct{ x, lo, hi float64 }{
		{2, 0.7, 0.7},  // a bound: exact
		{3, 0.7, 0.99}, // inside (2, 4]
		{0.5, 0, 0.1},
		{-1, 0, 0},
		{100, 0.99, 1}, // beyond the last bound: the +Inf bucket's samples may be either side
	} {
		x := tc.x
		h := h
		if x == 100 {
			h = hist(b, 10, 60, 29, 0, 1)
		}
		lo, hi := h.AtMost(x)
		if !near(lo, tc.lo) || !near(hi, tc.hi) {
			t.Errorf("AtMost(%v) = %v, %v; want %v, %v", x, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestHistogramSub(t *testing.T) {
	b := []float64{1, 2}
	a := hist(b, 1, 2, 3)
	c := hist(b, 4, 2, 5)
	d, err := c.Sub(a)
	if err != nil {
		t.Fatal(err)
	}
	if d.Count != 5 || d.Cumulative[0] != 3 || d.Cumulative[1] != 3 || d.Cumulative[2] != 5 {
		t.Errorf("delta %+v", d)
	}
	if _, err := a.Sub(c); err == nil || !strings.Contains(err.Error(), "went backwards") {
		t.Errorf("backwards: %v", err)
	}
	if _, err := a.Sub(hist([]float64{1, 3}, 1, 1, 1)); err == nil || !strings.Contains(err.Error(), "buckets changed") {
		t.Errorf("other buckets: %v", err)
	}
}

// What parses must make sense: every sample named, histograms either an error or
// consistent, quantiles inside their buckets.
func FuzzParseMetrics(f *testing.F) {
	f.Add(scrape)
	f.Add("h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n")
	f.Add(`m{a="\\\"\n",b="c"} -Inf 12`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMetrics(strings.NewReader(in))
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, s := range m.Samples {
			if s.Name == "" {
				t.Fatalf("sample without a name from %q", in)
			}
			names[strings.TrimSuffix(s.Name, "_bucket")] = true
		}
		for name := range names {
			h, err := m.Histogram(name)
			if err != nil {
				continue
			}
			if len(h.Cumulative) != len(h.Bounds)+1 {
				t.Fatalf("%s: %d counts for %d bounds", name, len(h.Cumulative), len(h.Bounds))
			}
			for _, q := range []float64{0.5, 0.99} {
				e, ok := h.Quantile(q)
				if ok && !(e.Lo <= e.Value && e.Value <= e.Hi) && !math.IsNaN(e.Value) {
					t.Fatalf("%s q%v: %+v outside its bucket", name, q, e)
				}
			}
			lo, hi := h.AtMost(1)
			if lo > hi {
				t.Fatalf("%s: AtMost gives %v > %v", name, lo, hi)
			}
		}
	})
}
