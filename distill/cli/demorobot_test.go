package cli

import (
	"math"
	"strings"
	"testing"
)

func TestParsePromQuantiles(t *testing.T) {
	text := `# HELP robodistilld_loop_lateness_seconds how late
# TYPE robodistilld_loop_lateness_seconds histogram
robodistilld_loop_lateness_seconds_bucket{le="0.001"} 50
robodistilld_loop_lateness_seconds_bucket{le="0.002"} 90
robodistilld_loop_lateness_seconds_bucket{le="0.004"} 100
robodistilld_loop_lateness_seconds_bucket{le="+Inf"} 100
robodistilld_loop_lateness_seconds_sum 0.12
robodistilld_loop_lateness_seconds_count 100
robodistilld_loop_cycles_total 100
robodistilld_safety_transitions_total{reason="estop"} 2
`
	h, c, err := parseProm(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	b := h["robodistilld_loop_lateness_seconds"]
	if len(b) != 4 || c["robodistilld_loop_cycles_total"] != 100 || len(c) != 3 {
		t.Fatalf("buckets %v, counters %v", b, c)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.001}, {0.25, 0.0005}, {0.7, 0.0015}, {0.95, 0.003}, {1, 0.004}} {
		if got := histQuantile(b, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile %g: %g, want %g", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(histQuantile(nil, 0.5)) {
		t.Error("an empty histogram has no quantile")
	}
}
