//go:build race

package reward

// raceEnabled: the race detector slows the training loops several-fold.
const raceEnabled = true
