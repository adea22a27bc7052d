// Package loop runs the daemon's control step at a fixed rate and measures how well it
// keeps time.
//
//	l, err := loop.New(cfg, nil) // nil: the real clock
//	err = l.Run(ctx, func(t loop.Tick) { ... one control cycle at t.Woke ... })
//
// Run locks its goroutine to an OS thread and wakes at absolute deadlines start +
// k·period: it sleeps until Config.Spin before each deadline and busy-waits the rest.
// A step that runs past the next deadline makes the loop skip the deadlines it missed
// (counted as overruns) rather than run late cycles back to back. Each cycle's
// lateness and compute time go into histograms with fixed log-spaced buckets (1 µs to
// 1 s, exportable as Prometheus histograms) and into rings of the latest samples for
// exact quantiles; recording allocates nothing and never blocks on a reader.
// [Loop.Progress] counts completed steps for a watchdog on another goroutine, and
// [Loop.Snapshot] copies the statistics.
//
// Time comes from a [Clock]; tests use looptest's fake clock to check deadlines,
// skipping and tick fields exactly.
package loop
