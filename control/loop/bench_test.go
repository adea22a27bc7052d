package loop_test

import (
	"context"
	"testing"
	"time"

	"robodistill/control/loop"
)

// BenchmarkLoop runs the real loop with an empty step and reports wake lateness over
// b.N cycles: p50, p99 and max in ns, and overruns. ns/op is about the period. The
// "fifo" runs ask for SCHED_FIFO priority 50 (ordinary scheduling where not permitted).
func BenchmarkLoop(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
		spin time.Duration
		prio int
	}{
		{"500Hz", 500, 200 * time.Microsecond, 0},
		{"1kHz", 1000, 200 * time.Microsecond, 0},
		{"50Hz-nospin", 50, 0, 0},
		{"50Hz-nospin-fifo", 50, 0, 50},
		{"500Hz-fifo", 500, 200 * time.Microsecond, 50},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := loop.Config{Rate: bc.rate, Spin: bc.spin, Window: min(max(b.N, 1), 1<<20), Priority: bc.prio}
			l, err := loop.New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			b.ResetTimer()
			if err := l.Run(ctx, func(loop.Tick) {
				if n++; n == b.N {
					cancel()
				}
			}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s := l.Snapshot()
			b.ReportMetric(float64(s.RecentLateness.Quantile(0.5)), "p50-late-ns")
			b.ReportMetric(float64(s.RecentLateness.Quantile(0.99)), "p99-late-ns")
			b.ReportMetric(float64(s.RecentLateness.Max()), "max-late-ns")
			b.ReportMetric(float64(s.Overruns), "overruns")
		})
	}
}
