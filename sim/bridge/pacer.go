package bridge

import "time"

// pacer schedules real-time ticks on a fixed grid start + k·period, so the rate does not
// drift however long each tick's work takes. A tick whose work ends after the next
// deadline is an overrun; the next ticks then run back to back until the loop has caught
// up, so the simulation keeps pace with wall time (a commanded velocity means the same
// distance per wall-clock second) and subscribers see the configured rate on average. A
// loop more than maxLag periods behind gives up on the missed ticks (they are counted as
// skipped) and continues from the current grid point.
type pacer struct {
	start    time.Time
	period   time.Duration
	maxLag   int64
	k        int64 // index of the tick that ran last
	overruns uint64
	skipped  uint64
}

// maxLagPeriods is how far behind (in periods) the real-time loop catches up.
const maxLagPeriods = 5

func newPacer(start time.Time, period time.Duration) *pacer {
	return &pacer{start: start, period: period, maxLag: maxLagPeriods}
}

// next is called when a tick's work is done at now; it returns the next tick's deadline
// (not after now when that tick is already due).
func (p *pacer) next(now time.Time) time.Time {
	p.k++
	d := p.deadline(p.k)
	if !now.After(d) {
		return d
	}
	p.overruns++
	if behind := int64(now.Sub(d) / p.period); behind >= p.maxLag {
		p.k += behind
		p.skipped += uint64(behind)
		d = p.deadline(p.k)
	}
	return d
}

func (p *pacer) deadline(k int64) time.Time { return p.start.Add(time.Duration(k) * p.period) }
