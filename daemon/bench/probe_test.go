package bench

import (
	"testing"
	"time"
)

// TestWakeProbe: the probe wakes at its rate, keeps every lateness, reports a priority
// one above the loop's when the machine grants it (and says why when it does not), and
// Stop can be called twice.
func TestWakeProbe(t *testing.T) {
	p := startWakeProbe(200, 10, time.Second)
	time.Sleep(300 * time.Millisecond)
	f := p.Stop()
	if f.Wakes < 30 || f.Wakes > 70 {
		t.Fatalf("%d wakes in 300 ms at 200 Hz", f.Wakes)
	}
	if !f.Exact || f.P50 < 0 || f.P50 > f.P99 || f.P99 > f.Max {
		t.Fatalf("quantiles %+v", f.Dist)
	}
	if f.Priority != 11 && (f.Priority != 0 || f.Error == "") {
		t.Fatalf("priority %d, error %q: want 11, or 0 with the refusal", f.Priority, f.Error)
	}
	if again := p.Stop(); again != f {
		t.Fatal("a second Stop returned other figures")
	}
	if f := startWakeProbe(0, 0, time.Second).Stop(); f.Wakes != 0 || f.Error == "" {
		t.Fatalf("rate 0: %+v", f)
	}
}
