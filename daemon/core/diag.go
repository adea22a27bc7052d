package core

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"robodistill/control/loop"
	"robodistill/control/rosnode"
	"robodistill/control/safety"
	"robodistill/daemon/rosio"
	"robodistill/daemon/translog"
)

// diagnostics publishes the diagnostics topic at 1 Hz from snapshots (the loop's
// statistics, the inputs' counters, the controller's atomics) and counts the transition
// log's drops into the metrics. It never touches the control thread's state.
func (d *Daemon) diagnostics(ctx context.Context, ctl *controller, lp *loop.Loop, in *rosio.Inputs, out *rosio.Outputs, tl *translog.Log, node *rosnode.Node) {
	tick := time.NewTicker(diagEvery)
	defer tick.Stop()
	hot := d.log.Named("diagnostics")
	var lastOverruns, dropped uint64
	var ages rosio.Ages
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		snap := lp.Snapshot()
		state, reason := ctl.safetyState()
		if tl != nil {
			for st := tl.Stats(); dropped < st.Dropped; dropped++ {
				d.metrics.TransitionLogDrop()
			}
		}
		in.Ages(now, &ages)
		p50, p99 := ctl.periodQuantiles()
		diag := rosio.Diagnostics{
			HardwareID: node.Name(),
			Loop:       loopTiming(snap, float64(d.cfg.Loop.RateHz), snap.Overruns-lastOverruns, p50, p99),
			Safety:     safetyStatus(state, reason),
			Models:     ctl.active.Load().ids,
			Inputs:     in.Stats(),
			Ages:       &ages,
		}
		lastOverruns = snap.Overruns
		if err := out.Diagnostics(now, &diag); err != nil && err != rosnode.ErrNotConnected {
			hot.Warn("diagnostics not published", zap.Error(err))
		}
	}
}

// periodQuantiles are the p50 and p99 of the recent cycles' periods (wake to wake).
func (c *controller) periodQuantiles() (p50, p99 time.Duration) {
	n := c.nPeriods.Load()
	k := min(n, periodRing)
	if k == 0 {
		return 0, 0
	}
	s := make([]time.Duration, 0, k)
	for i := n - k; i < n; i++ {
		if p := time.Duration(c.periods[i%periodRing].Load()); p > 0 {
			s = append(s, p)
		}
	}
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	w := loop.Window{Sorted: s}
	return w.Quantile(0.5), w.Quantile(0.99)
}

// loopTiming summarises the loop for diagnostics: WARN when cycles overran since the
// last report or the p99 lateness exceeds half a period.
func loopTiming(s loop.Snapshot, rate float64, newOverruns uint64, p50, p99 time.Duration) rosio.LoopTiming {
	lt := rosio.LoopTiming{RateHz: rate, Cycles: s.Cycles, Overruns: s.Overruns,
		PeriodP50: p50, PeriodP99: p99,
		WorkP50: s.RecentCompute.Quantile(0.5), WorkP99: s.RecentCompute.Quantile(0.99), WorkMax: s.RecentCompute.Max(),
		Level: rosio.LevelOK, Message: "on time"}
	late := s.RecentLateness.Quantile(0.99)
	switch {
	case newOverruns > 0:
		lt.Level, lt.Message = rosio.LevelWarn, fmt.Sprintf("%d cycles overran in the last second", newOverruns)
	case s.Period > 0 && late > s.Period/2:
		lt.Level, lt.Message = rosio.LevelWarn, fmt.Sprintf("wake lateness p99 %v is over half a period", late)
	}
	return lt
}

// safetyStatus maps the filter's state to a diagnostic level: OK while the policy
// drives, WARN while holding, ERROR while stopped.
func safetyStatus(s safety.State, r safety.Reason) rosio.SafetyStatus {
	l := rosio.LevelOK
	switch s {
	case safety.Hold:
		l = rosio.LevelWarn
	case safety.Stop, safety.EStop:
		l = rosio.LevelError
	}
	return rosio.SafetyStatus{State: s.String(), Reason: r.String(), Level: l}
}
