//go:build race

package bridge

// raceEnabled: the race detector slows the Go side of every tick several times, so
// real-time rate bounds are reported but not enforced.
const raceEnabled = true
