package loop

import (
	"testing"
	"time"

	"robodistill/control/loop/looptest"
)

// TestCycleAllocs: one cycle's bookkeeping (wait, tick, record, next deadline) allocates
// nothing, on time and when overrunning.
func TestCycleAllocs(t *testing.T) {
	clk := looptest.NewClock(time.Unix(1e9, 0))
	l, err := New(Config{Rate: 1000, Window: 16}, clk)
	if err != nil {
		t.Fatal(err)
	}
	c := cursor{start: clk.Now()}
	k := 0
	step := func(Tick) {
		k++
		clk.Advance(time.Duration(k%3) * 700 * time.Microsecond) // 0, 0.7 and 1.4 ms
	}
	allocs := testing.AllocsPerRun(1000, func() {
		tk := l.wait(&c)
		step(tk)
		l.finish(&c, tk)
	})
	if allocs != 0 {
		t.Errorf("a cycle allocates %v times, want 0", allocs)
	}
	if s := l.Snapshot(); s.Overruns == 0 || s.Cycles < 1000 {
		t.Errorf("overruns %d, cycles %d: the overrun path was not exercised", s.Overruns, s.Cycles)
	}
}

func TestRealClockAllocs(t *testing.T) {
	c := RealClock{Spin: 20 * time.Microsecond}
	if allocs := testing.AllocsPerRun(50, func() { c.SleepUntil(c.Now().Add(50 * time.Microsecond)) }); allocs != 0 {
		t.Errorf("RealClock.SleepUntil allocates %v times, want 0", allocs)
	}
}

// BenchmarkCycle is the loop's own overhead per cycle, on a fake clock.
func BenchmarkCycle(b *testing.B) {
	clk := looptest.NewClock(time.Unix(1e9, 0))
	l, err := New(Config{Rate: 1000, Window: 1024}, clk)
	if err != nil {
		b.Fatal(err)
	}
	c := cursor{start: clk.Now()}
	for b.Loop() {
		l.finish(&c, l.wait(&c))
	}
}
