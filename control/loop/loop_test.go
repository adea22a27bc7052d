package loop_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"robodistill/control/loop"
	"robodistill/control/loop/looptest"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

func TestConfigErrors(t *testing.T) {
	if err := loop.Defaults().Validate(); err != nil {
		t.Fatalf("Defaults: %v", err)
	}
	for _, tc := range []struct {
		cfg  loop.Config
		want string
	}{
		{loop.Config{Rate: 0, Window: 1}, "loop.rate_hz: must be > 0 and ≤ 10000, got 0"},
		{loop.Config{Rate: -50, Window: 1}, "loop.rate_hz: must be > 0 and ≤ 10000, got -50"},
		{loop.Config{Rate: 20000, Window: 1}, "loop.rate_hz: must be > 0 and ≤ 10000, got 20000"},
		{loop.Config{Rate: 1000, Spin: -1, Window: 1}, "loop.spin: must be ≥ 0 and shorter than the period 1ms, got -1ns"},
		{loop.Config{Rate: 1000, Spin: ms, Window: 1}, "loop.spin: must be ≥ 0 and shorter than the period 1ms, got 1ms"},
		{loop.Config{Rate: 50, Window: 0}, "loop.window: must be 1 to 1048576, got 0"},
		{loop.Config{Rate: 50, Window: 1<<20 + 1}, "loop.window: must be 1 to 1048576, got 1048577"},
		{loop.Config{}, "loop.rate_hz: must be > 0 and ≤ 10000, got 0\nloop.window: must be 1 to 1048576, got 0"},
	} {
		err := tc.cfg.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
		if l, err2 := loop.New(tc.cfg, nil); l != nil || err2 == nil || err2.Error() != tc.want {
			t.Errorf("New(%+v) = %v, %v; want the validation error", tc.cfg, l, err2)
		}
	}
	// NaN fails every comparison; the message must still name the key.
	if err := (loop.Config{Rate: nan(), Window: 1}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "loop.rate_hz:") {
		t.Errorf("NaN rate: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }

func TestPeriod(t *testing.T) {
	for rate, want := range map[float64]time.Duration{50: 20 * ms, 1000: ms, 300: 3333333 * time.Nanosecond, 0.25: 4 * time.Second} {
		if got := (loop.Config{Rate: rate}).Period(); got != want {
			t.Errorf("rate %v: period %v, want %v", rate, got, want)
		}
	}
}

// runFake runs a 100 Hz loop on a fake clock until it has called step n times. compute
// gives each tick's compute time; the step advances the clock by it.
func runFake(t *testing.T, clk *looptest.Clock, n int, compute func(loop.Tick) time.Duration) (*loop.Loop, []loop.Tick) {
	t.Helper()
	l, err := loop.New(loop.Config{Rate: 100, Window: 64}, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ticks []loop.Tick
	err = l.Run(ctx, func(tk loop.Tick) {
		ticks = append(ticks, tk)
		clk.Advance(compute(tk))
		if len(ticks) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(ticks) != n {
		t.Fatalf("%d steps, want %d", len(ticks), n)
	}
	return l, ticks
}

func tick(index uint64, woke, period time.Duration, late time.Duration, missed uint64) loop.Tick {
	return loop.Tick{Index: index, Deadline: t0.Add(time.Duration(index) * 10 * ms), Woke: t0.Add(woke),
		Lateness: late, Period: period, Missed: missed}
}

func TestDeadlines(t *testing.T) {
	clk := looptest.NewClock(t0)
	l, ticks := runFake(t, clk, 5, func(loop.Tick) time.Duration { return 3 * ms })
	for k, got := range ticks {
		period := 10 * ms
		if k == 0 {
			period = 0
		}
		if want := tick(uint64(k), time.Duration(k)*10*ms, period, 0, 0); got != want {
			t.Errorf("tick %d:\n got %+v\nwant %+v", k, got, want)
		}
	}
	// The loop woke for deadline 5, saw the cancellation and returned without a step.
	if now := clk.Now(); now != t0.Add(50*ms) {
		t.Errorf("clock at %v after Run, want t0+50ms", now.Sub(t0))
	}
	s := l.Snapshot()
	if s.Cycles != 5 || l.Progress() != 5 || s.Overruns != 0 || s.Period != 10*ms {
		t.Errorf("cycles %d, progress %d, overruns %d, period %v; want 5, 5, 0, 10ms", s.Cycles, l.Progress(), s.Overruns, s.Period)
	}
	if got := s.RecentCompute.Sorted; fmt.Sprint(got) != "[3ms 3ms 3ms 3ms 3ms]" {
		t.Errorf("recent compute %v", got)
	}
	if s.Compute.Sum != 15*ms || s.Compute.Count != 5 || s.Lateness.Sum != 0 || s.Lateness.Cumulative[0] != 5 {
		t.Errorf("compute sum %v count %d, lateness sum %v ≤1µs %d", s.Compute.Sum, s.Compute.Count, s.Lateness.Sum, s.Lateness.Cumulative[0])
	}
}

func TestLateWake(t *testing.T) {
	clk := looptest.NewClock(t0)
	clk.SetOversleep(300 * time.Microsecond)
	l, ticks := runFake(t, clk, 4, func(loop.Tick) time.Duration { return ms })
	late := 300 * time.Microsecond
	want := []loop.Tick{
		tick(0, 0, 0, 0, 0), // deadline 0 is the start: no sleep
		tick(1, 10*ms+late, 10*ms+late, late, 0),
		tick(2, 20*ms+late, 10*ms, late, 0), // absolute deadlines: lateness does not pile up
		tick(3, 30*ms+late, 10*ms, late, 0),
	}
	for k := range want {
		if ticks[k] != want[k] {
			t.Errorf("tick %d:\n got %+v\nwant %+v", k, ticks[k], want[k])
		}
	}
	s := l.Snapshot()
	if q := s.RecentLateness.Quantile(0.5); q != late {
		t.Errorf("p50 lateness %v, want %v", q, late)
	}
	if s.RecentLateness.Max() != late || s.RecentLateness.Quantile(0) != 0 {
		t.Errorf("lateness window %v", s.RecentLateness.Sorted)
	}
}

func TestOverrunSkips(t *testing.T) {
	clk := looptest.NewClock(t0)
	compute := map[uint64]time.Duration{
		1: 10 * ms,       // ends exactly at the next deadline: on time
		2: 25 * ms,       // ends at 45 ms: deadlines 30 and 40 are missed
		5: 10*ms + 1,     // ends 1 ns after deadline 6: missed
		7: 20 * ms,       // ends exactly at deadline 9: deadline 8 missed, 9 runs at once
		9: 3*10*ms + 1e3, // ends 1 µs after deadline 12
	}
	l, ticks := runFake(t, clk, 7, func(tk loop.Tick) time.Duration { return compute[tk.Index] })
	want := []loop.Tick{
		tick(0, 0, 0, 0, 0),
		tick(1, 10*ms, 10*ms, 0, 0),
		tick(2, 20*ms, 10*ms, 0, 0),
		tick(5, 50*ms, 30*ms, 0, 2),
		tick(7, 70*ms, 20*ms, 0, 1),
		tick(9, 90*ms, 20*ms, 0, 1),
		tick(13, 130*ms, 40*ms, 0, 3),
	}
	for k := range want {
		if ticks[k] != want[k] {
			t.Errorf("tick %d:\n got %+v\nwant %+v", k, ticks[k], want[k])
		}
	}
	if s := l.Snapshot(); s.Overruns != 7 || s.Cycles != 7 {
		t.Errorf("overruns %d, cycles %d; want 7, 7", s.Overruns, s.Cycles)
	}
}

func TestLateWakeOverruns(t *testing.T) {
	clk := looptest.NewClock(t0)
	clk.SetOversleep(25 * ms) // every sleep wakes 2.5 periods late
	l, ticks := runFake(t, clk, 3, func(loop.Tick) time.Duration { return 0 })
	want := []loop.Tick{
		tick(0, 0, 0, 0, 0),
		tick(1, 35*ms, 35*ms, 25*ms, 0), // woke at 35 ms: deadlines 2 and 3 passed
		tick(4, 65*ms, 30*ms, 25*ms, 2),
	}
	for k := range want {
		if ticks[k] != want[k] {
			t.Errorf("tick %d:\n got %+v\nwant %+v", k, ticks[k], want[k])
		}
	}
	if s := l.Snapshot(); s.Overruns != 4 { // 2 before tick 4, 2 after it
		t.Errorf("overruns %d, want 4", s.Overruns)
	}
}

func TestCancelled(t *testing.T) {
	l, err := loop.New(loop.Config{Rate: 100, Window: 1}, looptest.NewClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx, func(loop.Tick) { t.Error("step called after cancellation") }); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	// A loop can run again after Run returns; indexes restart.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var idx []uint64
	if err := l.Run(ctx, func(tk loop.Tick) {
		if idx = append(idx, tk.Index); len(idx) == 2 {
			cancel()
		}
	}); err != nil || fmt.Sprint(idx) != "[0 1]" {
		t.Errorf("second Run = %v, ticks %v", err, idx)
	}
}

func TestAlreadyRunning(t *testing.T) {
	clk := looptest.NewClock(t0)
	l, err := loop.New(loop.Config{Rate: 100, Window: 1}, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inStep, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- l.Run(ctx, func(loop.Tick) {
			close(inStep)
			<-release
			cancel()
		})
	}()
	<-inStep
	if err := l.Run(ctx, func(loop.Tick) {}); err == nil || err.Error() != "loop.Run: already running" {
		t.Errorf("second Run = %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestConcurrentReaders reads Progress and Snapshot while the loop records; run with
// -race.
func TestConcurrentReaders(t *testing.T) {
	clk := looptest.NewClock(t0)
	l, err := loop.New(loop.Config{Rate: 1000, Window: 128}, clk)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		for ctx.Err() == nil {
			p := l.Progress()
			s := l.Snapshot()
			if p < last || s.Cycles < p || s.Compute.Count < p || len(s.RecentCompute.Sorted) > 128 {
				t.Errorf("progress %d after %d, snapshot cycles %d, count %d, window %d",
					p, last, s.Cycles, s.Compute.Count, len(s.RecentCompute.Sorted))
				return
			}
			last = p
		}
	}()
	k := 0
	if err := l.Run(ctx, func(loop.Tick) {
		if k++; k == n {
			cancel()
		}
		clk.Advance(time.Duration(k%2000) * time.Microsecond)
	}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s := l.Snapshot()
	if s.Cycles != n || s.Compute.Count != n || s.Lateness.Count != n || len(s.RecentCompute.Sorted) != 128 {
		t.Errorf("cycles %d, counts %d %d, window %d", s.Cycles, s.Compute.Count, s.Lateness.Count, len(s.RecentCompute.Sorted))
	}
	// Compute times of 1000 µs and more overran; the skipped deadlines are counted.
	if s.Overruns == 0 {
		t.Error("no overruns counted")
	}
}

// TestRealClock runs the real loop briefly; it asserts no timing, only behaviour.
func TestRealClock(t *testing.T) {
	l, err := loop.New(loop.Config{Rate: 1000, Spin: 100 * time.Microsecond, Window: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var prev loop.Tick
	n := 0
	err = l.Run(ctx, func(tk loop.Tick) {
		if tk.Woke.Before(tk.Deadline) || tk.Lateness < 0 || (n > 0 && tk.Index <= prev.Index) {
			t.Errorf("tick %+v after %+v", tk, prev)
		}
		if prev, n = tk, n+1; n == 25 {
			cancel()
		}
	})
	if err != nil || n != 25 || l.Progress() != 25 {
		t.Fatalf("Run = %v after %d steps, progress %d", err, n, l.Progress())
	}
	if s := l.Snapshot(); s.Cycles != 25 || s.Lateness.Count != 25 || len(s.RecentLateness.Sorted) != 25 {
		t.Errorf("snapshot %+v", s)
	}

	// Cancelled from another goroutine, as on SIGTERM.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx, func(loop.Tick) {}) }()
	for l.Progress() < 25+5 {
		time.Sleep(ms)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestHistogram(t *testing.T) {
	b := loop.Bounds()
	if len(b) != 31 || b[0] != time.Microsecond || b[30] != time.Second {
		t.Fatalf("bounds %v", b)
	}
	for i := 1; i < len(b); i++ {
		if r := float64(b[i]) / float64(b[i-1]); r < 1.5 || r > 1.65 {
			t.Errorf("bounds %v, %v: ratio %.3f is not log-spaced at 5 per decade", b[i-1], b[i], r)
		}
	}
	b[0] = 0
	if loop.Bounds()[0] != time.Microsecond {
		t.Error("Bounds returns the package's own slice")
	}

	// Compute times on a fake clock, at 0.25 Hz so that none overruns.
	samples := []time.Duration{500, 1000, 1500, 3 * ms, 2 * time.Second}
	clk := looptest.NewClock(t0)
	l, err := loop.New(loop.Config{Rate: 0.25, Window: 3}, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := 0
	if err := l.Run(ctx, func(loop.Tick) {
		clk.Advance(samples[k])
		if k++; k == len(samples) {
			cancel()
		}
	}); err != nil {
		t.Fatal(err)
	}
	h := l.Snapshot().Compute
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	if h.Count != 5 || h.Sum != sum {
		t.Errorf("count %d sum %v, want 5 %v", h.Count, h.Sum, sum)
	}
	cum := map[time.Duration]uint64{time.Microsecond: 2, 1600: 3, 2500 * time.Microsecond: 3, 4 * ms: 4, time.Second: 4}
	for i, bound := range h.Bounds {
		if want, ok := cum[bound]; ok && h.Cumulative[i] != want {
			t.Errorf("≤ %v: %d, want %d", bound, h.Cumulative[i], want)
		}
	}
	buckets := h.Buckets()
	if len(buckets) != 31 || buckets[1e-6] != 2 || buckets[0.004] != 4 || buckets[1] != 4 {
		t.Errorf("Buckets() = %v", buckets)
	}
	for q, want := range map[float64]time.Duration{
		0.2: 500,                     // rank 1 of 2 in (0, 1µs]
		0.6: 1600,                    // rank 3: the top of (1µs, 1.6µs]
		0.7: 3250 * time.Microsecond, // rank 3.5: half way through (2.5ms, 4ms]
		0.8: 4 * ms,
		1:   time.Second, // in the +Inf bucket: the last bound
		-1:  0,           // clamped to 0: the lower edge of the first non-empty bucket
	} {
		if got := h.Quantile(q); got < want-1 || got > want+1 { // ±1 ns of float rounding
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if (loop.Histogram{}).Quantile(0.5) != 0 {
		t.Error("empty histogram quantile")
	}

	w := l.Snapshot().RecentCompute // the last 3 samples
	if fmt.Sprint(w.Sorted) != "[1.5µs 3ms 2s]" || w.Quantile(0.5) != 3*ms || w.Quantile(0.34) != 3*ms ||
		w.Quantile(0.33) != 1500 || w.Quantile(0) != 1500 || w.Max() != 2*time.Second {
		t.Errorf("window %v: p50 %v max %v", w.Sorted, w.Quantile(0.5), w.Max())
	}
	if (loop.Window{}).Max() != 0 {
		t.Error("empty window max")
	}
}

// TestRealtime runs the real loop with a SCHED_FIFO priority. Where the process may not
// have one (no CAP_SYS_NICE, RLIMIT_RTPRIO 0) the loop must still run and say why.
func TestRealtime(t *testing.T) {
	var got []loop.Scheduling
	l, err := loop.New(loop.Config{Rate: 1000, Window: 16, Priority: 10, Scheduled: func(s loop.Scheduling) { got = append(got, s) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var policy, prio uint32
	if err := l.Run(ctx, func(loop.Tick) {
		if n++; n == 1 {
			policy, prio = threadScheduling(t)
		}
		if n == 10 {
			cancel()
		}
	}); err != nil || n != 10 {
		t.Fatalf("Run = %v after %d steps", err, n)
	}
	if len(got) != 1 {
		t.Fatalf("Scheduled called %d times", len(got))
	}
	s := got[0]
	switch {
	case s.Err == nil && (s.Priority != 10 || policy != 1 || prio != 10):
		t.Errorf("scheduling %+v, thread policy %d priority %d; want SCHED_FIFO (1) at 10", s, policy, prio)
	case s.Err != nil && (s.Priority != 0 || policy == 1 || !strings.Contains(s.Err.Error(), "RLIMIT_RTPRIO")):
		t.Errorf("scheduling %+v, thread policy %d", s, policy)
	case s.Err != nil:
		t.Logf("no realtime scheduling here: %v", s.Err)
	}
	if _, err := loop.New(loop.Config{Rate: 50, Window: 1, Priority: 100}, nil); err == nil || !strings.Contains(err.Error(), "loop.realtime_priority") {
		t.Errorf("priority 100: %v", err)
	}
}
