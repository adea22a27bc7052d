package bench

import (
	"context"
	"slices"
	"time"

	"robodistill/control/loop"
)

// WakeFloor is what the machine itself allows a loop's wake lateness during a run: a
// bare control/loop in the bench process, at the loop's rate and one SCHED_FIFO priority
// above it (so that the loop under test never delays it), whose step does nothing but
// record its lateness. A daemon whose lateness tail matches this floor is waiting for
// the kernel (other processes' CPU time, its preemption model, a virtual machine's
// vCPUs), not for its own work.
type WakeFloor struct {
	Dist
	Priority int `json:"priority"` // the probe thread's SCHED_FIFO priority (0: ordinary scheduling)
	Wakes    int `json:"wakes"`
	// Error says why the probe could not run, or could not get its priority.
	Error string `json:"error,omitempty"`
}

// wakeProbe runs the floor's loop until Stop.
type wakeProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	prio   int
	sched  loop.Scheduling
	late   []time.Duration
	err    error
	result *WakeFloor // Stop's, for a second call
}

// startWakeProbe starts a probe at rate Hz, one priority above prio (ordinary scheduling
// when prio is 0).
func startWakeProbe(rate, prio int) *wakeProbe {
	p := &wakeProbe{done: make(chan struct{})}
	if prio > 0 {
		p.prio = min(prio+1, loop.MaxPriority)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	cfg := loop.Defaults()
	cfg.Rate, cfg.Priority, cfg.Spin = float64(rate), p.prio, 0 // as robodistilld by default: no spin
	cfg.Scheduled = func(s loop.Scheduling) { p.sched = s }
	l, err := loop.New(cfg, nil)
	if err != nil {
		p.err = err
		close(p.done)
		return p
	}
	p.late = make([]time.Duration, 0, 64<<10)
	go func() {
		defer close(p.done)
		p.err = l.Run(ctx, func(t loop.Tick) { p.late = append(p.late, t.Lateness) })
	}()
	return p
}

// Stop ends the probe and returns its figures (exact: every wake is kept). Calls after
// the first return the same figures.
func (p *wakeProbe) Stop() *WakeFloor {
	if p.result != nil {
		return p.result
	}
	p.cancel()
	<-p.done
	f := &WakeFloor{Priority: p.sched.Priority, Wakes: len(p.late)}
	p.result = f
	switch {
	case p.err != nil:
		f.Error = p.err.Error()
	case p.sched.Err != nil:
		f.Error = p.sched.Err.Error()
	}
	if len(p.late) == 0 {
		return f
	}
	s := slices.Clone(p.late)
	slices.Sort(s)
	q := func(x float64) float64 { return msOf(s[min(len(s)-1, int(x*float64(len(s))))]) }
	f.Dist = Dist{P50: q(0.5), P99: q(0.99), Max: msOf(s[len(s)-1]), Exact: true}
	return f
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
