package rosio

import "runtime"

// allocsPer is testing.AllocsPerRun without its truncation to whole allocations: the
// average number of heap allocations (in every goroutine) per call of f over runs calls,
// after one warm-up call.
func allocsPer(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}
