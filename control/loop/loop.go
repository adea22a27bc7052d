package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// MaxRate is the highest rate Config accepts, in Hz.
const MaxRate = 10000

// Config configures a Loop. The yaml keys are the names Validate reports, under the
// daemon's "loop" section.
type Config struct {
	// Rate is the loop's frequency in Hz; the period is 1/Rate rounded to the nanosecond.
	Rate float64 `yaml:"rate_hz"`
	// Spin is the last stretch before each deadline that the real clock busy-waits
	// instead of sleeping, to cut wake lateness. 0 sleeps all the way.
	Spin time.Duration `yaml:"spin"`
	// Window is how many of the latest lateness and compute samples Snapshot computes
	// exact quantiles over.
	Window int `yaml:"window"`
	// Priority, when 1–99, runs the loop's thread under SCHED_FIFO at that priority, so
	// that no ordinary process on the machine delays its wake-ups or its steps. 0 leaves
	// the thread's scheduling alone. Failing to get it (no CAP_SYS_NICE or RLIMIT_RTPRIO)
	// does not stop the loop; Scheduled learns the outcome.
	Priority int `yaml:"realtime_priority"`
	// Scheduled, if set, is called once from Run's thread before the first step, with
	// the scheduling the thread got.
	Scheduled func(Scheduling) `yaml:"-"`
}

// Scheduling is the loop thread's scheduling, as Run set it up.
type Scheduling struct {
	// Priority is the SCHED_FIFO priority the thread runs at; 0 is the ordinary
	// time-sharing scheduler.
	Priority int
	// Err is why the requested priority could not be set; nil if it was or none was asked.
	Err error
}

// MaxPriority is the highest SCHED_FIFO priority Config accepts.
const MaxPriority = 99

// Defaults returns the daemon's loop: 50 Hz, 200 µs spin, a window of 1024 cycles, the
// ordinary scheduler.
func Defaults() Config {
	return Config{Rate: 50, Spin: 200 * time.Microsecond, Window: 1024}
}

// Validate checks c; every error names its key, e.g. "loop.rate_hz: must be > 0 and ≤ 10000, got 0".
func (c Config) Validate() error {
	var errs []error
	if !(c.Rate > 0 && c.Rate <= MaxRate) {
		errs = append(errs, fmt.Errorf("loop.rate_hz: must be > 0 and ≤ %d, got %v", MaxRate, c.Rate))
	} else if c.Spin < 0 || c.Spin >= c.Period() {
		errs = append(errs, fmt.Errorf("loop.spin: must be ≥ 0 and shorter than the period %v, got %v", c.Period(), c.Spin))
	}
	if c.Window < 1 || c.Window > 1<<20 {
		errs = append(errs, fmt.Errorf("loop.window: must be 1 to %d, got %d", 1<<20, c.Window))
	}
	if c.Priority < 0 || c.Priority > MaxPriority {
		errs = append(errs, fmt.Errorf("loop.realtime_priority: must be 0 (ordinary scheduling) to %d, got %d", MaxPriority, c.Priority))
	}
	return errors.Join(errs...)
}

// Period returns 1/Rate rounded to the nanosecond.
func (c Config) Period() time.Duration {
	return time.Duration(math.Round(float64(time.Second) / c.Rate))
}

// Clock is the loop's time source. The loop calls it from its own goroutine only.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t or later; at once if t has passed.
	SleepUntil(t time.Time)
}

// RealClock is the system's monotonic clock. SleepUntil blocks the calling thread until
// Spin before t (on Linux with clock_nanosleep, which a realtime thread wakes from within
// tens of µs; time.Sleep wakes a few hundred µs late) and busy-waits the rest.
type RealClock struct {
	Spin time.Duration
}

// Now returns time.Now(), which carries the monotonic reading all loop arithmetic uses.
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until c.Spin before t, then spins until t.
func (c RealClock) SleepUntil(t time.Time) {
	if d := time.Until(t) - c.Spin; d > 0 {
		sleep(d)
	}
	for time.Now().Before(t) {
	}
}

// Tick is what the step function learns about its cycle.
type Tick struct {
	// Index is the deadline's number since Run started: Deadline = start + Index·period.
	// It jumps by Missed+1 after an overrun.
	Index    uint64
	Deadline time.Time
	Woke     time.Time     // when the loop woke for this deadline (the cycle's "now")
	Lateness time.Duration // Woke - Deadline
	Period   time.Duration // Woke minus the previous tick's Woke; 0 on the first tick
	Missed   uint64        // deadlines skipped since the previous tick because it overran
}

// Loop runs a step function at a fixed rate. Run it from one goroutine; Progress and
// Snapshot may be called from any goroutine.
type Loop struct {
	period  time.Duration
	clock   Clock
	prio    int
	sched   func(Scheduling)
	running atomic.Bool
	stats   stats
}

// New returns a loop for cfg. A nil clock is RealClock{Spin: cfg.Spin}.
func New(cfg Config, clock Clock) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = RealClock{Spin: cfg.Spin}
	}
	l := &Loop{period: cfg.Period(), clock: clock, prio: cfg.Priority, sched: cfg.Scheduled}
	l.stats.init(cfg.Window)
	return l, nil
}

// Period returns the loop's period.
func (l *Loop) Period() time.Duration { return l.period }

// Progress returns the number of completed steps. It only grows while the loop makes
// progress, so a watchdog fed from it stops being fed when a step hangs.
func (l *Loop) Progress() uint64 { return l.stats.cycles.Load() }

// Run calls step once per period on a locked OS thread (under SCHED_FIFO when
// Config.Priority asks for it, restored on return) until ctx is cancelled, and then
// returns nil. Deadlines are absolute, start + k·period, so lateness does not accumulate.
// A step that ends after the next deadline makes the loop skip every deadline that has
// passed: they count as overruns, and the loop waits for the first deadline still ahead
// instead of running late cycles back to back. Cancellation is noticed after each wake,
// so Run returns at most one period after ctx is done, without calling step again.
func (l *Loop) Run(ctx context.Context, step func(Tick)) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("loop.Run: already running")
	}
	defer l.running.Store(false)
	runtime.LockOSThread()
	sched := Scheduling{}
	if l.prio > 0 {
		if sched.Err = setRealtime(l.prio); sched.Err == nil {
			sched.Priority = l.prio
		}
	}
	defer func() {
		// A thread that keeps realtime scheduling must not go back to the runtime's pool:
		// left locked, it ends with Run's goroutine.
		if sched.Priority == 0 || clearRealtime() == nil {
			runtime.UnlockOSThread()
		}
	}()
	if l.sched != nil {
		l.sched(sched)
	}

	done := ctx.Done()
	c := cursor{start: l.clock.Now()}
	for {
		t := l.wait(&c)
		select {
		case <-done:
			return nil
		default:
		}
		step(t)
		l.finish(&c, t)
	}
}

// cursor is Run's position on the deadline grid.
type cursor struct {
	start    time.Time
	k        uint64 // the next deadline's index
	prevWoke time.Time
	missed   uint64
}

func (l *Loop) deadline(c *cursor, k uint64) time.Time {
	return c.start.Add(time.Duration(k) * l.period)
}

// wait sleeps until the next deadline and describes the tick.
func (l *Loop) wait(c *cursor) Tick {
	d := l.deadline(c, c.k)
	l.clock.SleepUntil(d)
	woke := l.clock.Now()
	t := Tick{Index: c.k, Deadline: d, Woke: woke, Lateness: woke.Sub(d), Missed: c.missed}
	if !c.prevWoke.IsZero() {
		t.Period = woke.Sub(c.prevWoke)
	}
	return t
}

// finish records the cycle and picks the next deadline: the first not before now.
func (l *Loop) finish(c *cursor, t Tick) {
	end := l.clock.Now()
	next := c.k + 1
	if over := end.Sub(l.deadline(c, next)); over > 0 {
		next += uint64((over-1)/l.period) + 1
	}
	missed := next - c.k - 1
	l.stats.record(t.Lateness, end.Sub(t.Woke), missed)
	c.k, c.prevWoke, c.missed = next, t.Woke, missed
}
