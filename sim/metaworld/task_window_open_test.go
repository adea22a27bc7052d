package metaworld

import (
	"errors"
	"testing"
	"time"
)

// wssNewEnv opens task's Env, skipping the test when the MetaWorld assets are missing.
func wssNewEnv(t *testing.T, task *Task, opts Options) *Env {
	t.Helper()
	e, err := New(task, opts)
	if errors.Is(err, ErrAssets) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// wssScriptedRate runs the task's scripted policy for seeds 0..n-1 at rate and counts the
// episodes with Info.Success at any step, as MetaWorld's evaluations do.
func wssScriptedRate(t *testing.T, task *Task, rate, n int) (int, []uint64) {
	t.Helper()
	e := wssNewEnv(t, task, Options{Rate: rate})
	ok := 0
	var failed []uint64
	start := time.Now()
	for seed := uint64(0); seed < uint64(n); seed++ {
		o, err := e.Reset(seed)
		if err != nil {
			t.Fatal(err)
		}
		success := false
		for !success {
			var info Info
			var done bool
			o, _, info, done, err = e.Step(task.Scripted(&o))
			if err != nil {
				t.Fatal(err)
			}
			success = info.Success
			if done {
				break
			}
		}
		if success {
			ok++
		} else {
			failed = append(failed, seed)
		}
	}
	t.Logf("%s at %d Hz: scripted policy succeeded in %d/%d episodes (failed seeds %v, %.1fs)",
		task.Name, rate, ok, n, failed, time.Since(start).Seconds())
	return ok, failed
}

func TestWindowOpenScripted(t *testing.T) {
	wssScriptedRate(t, windowOpenTask, Rate80, 20)
	wssScriptedRate(t, windowOpenTask, Rate50, 20)
}
func TestSoccerScripted(t *testing.T) {
	wssScriptedRate(t, soccerTask, Rate80, 20)
	wssScriptedRate(t, soccerTask, Rate50, 20)
}
func TestSweepIntoScripted(t *testing.T) {
	wssScriptedRate(t, sweepIntoTask, Rate80, 20)
	wssScriptedRate(t, sweepIntoTask, Rate50, 20)
}
