package bench

import (
	"context"
	"time"

	"robodistill/control/loop"
)

// WakeFloor is what the machine itself allows a loop's wake lateness during a run: a
// bare control/loop in the bench process, at the loop's rate and one SCHED_FIFO priority
// above it (so that the loop under test never delays it), whose step does nothing. A
// daemon whose lateness tail matches this floor is waiting for the kernel (other
// processes' CPU time, its preemption model, a virtual machine's vCPUs), not for its
// own work.
type WakeFloor struct {
	Dist
	Priority int `json:"priority"` // the probe thread's SCHED_FIFO priority (0: ordinary scheduling)
	Wakes    int `json:"wakes"`
	// Error says why the probe could not run, or could not get its priority.
	Error string `json:"error,omitempty"`
}

// wakeProbe runs the floor's loop until Stop.
type wakeProbe struct {
	loop   *loop.Loop
	cancel context.CancelFunc
	done   chan struct{}
	sched  loop.Scheduling
	err    error
	result *WakeFloor // Stop's, for a second call
}

// startWakeProbe starts a probe at rate Hz, one priority above prio (ordinary scheduling
// when prio is 0), that keeps the lateness of every wake for up to span.
func startWakeProbe(rate, prio int, span time.Duration) *wakeProbe {
	p := &wakeProbe{done: make(chan struct{})}
	cfg := loop.Defaults()
	cfg.Rate, cfg.Spin = float64(rate), 0                        // as robodistilld by default: no spin
	cfg.Window = min(int(span.Seconds()*float64(rate))+1, 1<<20) // loop.Config's limit
	if prio > 0 {
		cfg.Priority = min(prio+1, loop.MaxPriority)
	}
	cfg.Scheduled = func(s loop.Scheduling) { p.sched = s }
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if p.loop, p.err = loop.New(cfg, nil); p.err != nil {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		p.err = p.loop.Run(ctx, func(loop.Tick) {})
	}()
	return p
}

// Stop ends the probe and returns its figures: exact, from the loop's window of recent
// lateness (loop.Snapshot). Calls after the first return the same figures.
func (p *wakeProbe) Stop() *WakeFloor {
	if p.result != nil {
		return p.result
	}
	p.cancel()
	<-p.done
	f := &WakeFloor{Priority: p.sched.Priority}
	p.result = f
	switch {
	case p.err != nil:
		f.Error = p.err.Error()
	case p.sched.Err != nil:
		f.Error = p.sched.Err.Error()
	}
	if p.loop == nil {
		return f
	}
	w := p.loop.Snapshot().RecentLateness
	if f.Wakes = len(w.Sorted); f.Wakes == 0 {
		return f
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	f.Dist = Dist{P50: ms(w.Quantile(0.5)), P99: ms(w.Quantile(0.99)), Max: ms(w.Max()), Exact: true}
	return f
}
