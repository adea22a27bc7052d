package loop

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// bounds are the histograms' bucket upper bounds (inclusive, as Prometheus's "le"):
// log-spaced at five per decade (1, 1.6, 2.5, 4, 6.3 — the R5 preferred numbers) from
// 1 µs to 1 s. Longer samples fall in a last, unbounded bucket.
var bounds = func() []time.Duration {
	mantissa := []time.Duration{1000, 1600, 2500, 4000, 6300} // ns
	var b []time.Duration
	for scale := time.Duration(1); scale < 1e6; scale *= 10 {
		for _, m := range mantissa {
			b = append(b, m*scale)
		}
	}
	return append(b, time.Second)
}()

// Bounds returns the histograms' bucket upper bounds: 31 values log-spaced from 1 µs to
// 1 s at five per decade (1, 1.6, 2.5, 4, 6.3 µs, 10 µs, …), each inclusive as
// Prometheus's "le". Samples above 1 s count only in Histogram.Count.
func Bounds() []time.Duration { return slices.Clone(bounds) }

// stats is written by Run's goroutine alone and read by any. Everything is an atomic, so
// that recording neither allocates nor waits for a reader; a Snapshot taken while the
// loop runs may mix samples of two adjacent cycles.
type stats struct {
	cycles, overruns  atomic.Uint64
	lateness, compute histogram
	lateWin, compWin  window
}

func (s *stats) init(window int) {
	s.lateness.counts = make([]atomic.Uint64, len(bounds)+1)
	s.compute.counts = make([]atomic.Uint64, len(bounds)+1)
	s.lateWin.vals = make([]atomic.Int64, window)
	s.compWin.vals = make([]atomic.Int64, window)
}

func (s *stats) record(lateness, compute time.Duration, missed uint64) {
	s.lateness.record(lateness)
	s.compute.record(compute)
	s.lateWin.record(lateness)
	s.compWin.record(compute)
	if missed > 0 {
		s.overruns.Add(missed)
	}
	s.cycles.Add(1) // last: Progress counts fully recorded cycles
}

type histogram struct {
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64    // ns
}

func (h *histogram) record(d time.Duration) {
	i, _ := slices.BinarySearch(bounds, d) // the first bound ≥ d
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: Bounds(), Cumulative: make([]uint64, len(bounds)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(bounds) {
			s.Cumulative[i] = s.Count
		}
	}
	return s
}

// window is a ring of the latest samples.
type window struct {
	vals []atomic.Int64
	n    atomic.Uint64 // samples written so far
}

func (w *window) record(d time.Duration) {
	n := w.n.Load()
	w.vals[n%uint64(len(w.vals))].Store(int64(d))
	w.n.Store(n + 1)
}

func (w *window) snapshot() Window {
	n := min(w.n.Load(), uint64(len(w.vals)))
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(w.vals[i].Load())
	}
	slices.Sort(s)
	return Window{Sorted: s}
}

// Snapshot is a copy of a loop's statistics.
type Snapshot struct {
	Period   time.Duration
	Cycles   uint64 // completed steps, as Progress
	Overruns uint64 // deadlines skipped because a step ended after them
	// Lateness is Tick.Lateness (wake time minus deadline); Compute is the step's
	// duration, from wake to its return.
	Lateness, Compute Histogram
	// RecentLateness and RecentCompute hold the last Config.Window samples, for exact
	// quantiles.
	RecentLateness, RecentCompute Window
}

// Snapshot copies the statistics. It allocates and sorts; call it from a metrics or
// diagnostics goroutine, not the loop.
func (l *Loop) Snapshot() Snapshot {
	s := &l.stats
	return Snapshot{
		Period:         l.period,
		Cycles:         s.cycles.Load(),
		Overruns:       s.overruns.Load(),
		Lateness:       s.lateness.snapshot(),
		Compute:        s.compute.snapshot(),
		RecentLateness: s.lateWin.snapshot(),
		RecentCompute:  s.compWin.snapshot(),
	}
}

// Histogram is a cumulative histogram over Bounds(), the shape Prometheus exports.
type Histogram struct {
	Bounds     []time.Duration // upper bounds, ascending (a copy of Bounds())
	Cumulative []uint64        // Cumulative[i]: samples ≤ Bounds[i]
	Count      uint64          // all samples, including those above the last bound
	Sum        time.Duration
}

// Buckets returns the cumulative counts keyed by upper bound in seconds, as
// prometheus.NewConstHistogram takes them (with Count and Sum.Seconds()).
func (h Histogram) Buckets() map[float64]uint64 {
	m := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		m[b.Seconds()] = h.Cumulative[i]
	}
	return m
}

// Quantile estimates the q-quantile (q in [0, 1], clamped) by linear interpolation
// inside its bucket, the first bucket starting at 0, as Prometheus's
// histogram_quantile does. Above the last bound it returns the last bound. It returns 0
// for an empty histogram.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || math.IsNaN(q) {
		return 0
	}
	rank := min(max(q, 0), 1) * float64(h.Count)
	var lo time.Duration
	var below uint64
	for i, hi := range h.Bounds {
		if c := h.Cumulative[i]; float64(c) >= rank && c > below {
			frac := (rank - float64(below)) / float64(c-below)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		lo, below = hi, h.Cumulative[i]
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Window is an ascending copy of the latest samples.
type Window struct {
	Sorted []time.Duration
}

// Quantile returns the exact q-quantile by nearest rank (the smallest sample with at
// least a fraction q of the samples ≤ it), or 0 for no samples.
func (w Window) Quantile(q float64) time.Duration {
	n := len(w.Sorted)
	if n == 0 || math.IsNaN(q) {
		return 0
	}
	i := int(math.Ceil(min(max(q, 0), 1)*float64(n))) - 1
	return w.Sorted[max(i, 0)]
}

// Max returns the largest sample, or 0 for no samples.
func (w Window) Max() time.Duration { return w.Quantile(1) }
