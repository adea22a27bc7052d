package metaworld

import (
	"math"
	"testing"
)

// Shared by the task tests.

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

// refresh recomputes e's observation after a test edited the simulator state.
func refresh(t *testing.T, e *Env) {
	t.Helper()
	if _, err := e.Refresh(); err != nil {
		t.Fatal(err)
	}
}

// scriptedSuccess runs task's scripted policy for seeds 0..n-1 and counts the episodes
// with Info.Success at some step (MetaWorld's evaluation criterion).
func scriptedSuccess(t *testing.T, task *Task, rate, n int) (int, []int) {
	t.Helper()
	e := newEnv(t, task.Name, Options{Rate: rate})
	wins := 0
	var failed []int
	for seed := 0; seed < n; seed++ {
		o, err := e.Reset(uint64(seed))
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for end := false; !end && !ok; {
			var info Info
			if o, _, info, end, err = e.Step(task.Scripted(&o)); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			ok = info.Success
		}
		if ok {
			wins++
		} else {
			failed = append(failed, seed)
		}
	}
	return wins, failed
}

// Each task's scripted policy succeeds in at least 90 % of seeded episodes, or, for a task
// marked with a Caveat, at least the rate recorded with the caveat (less a binomial margin).
func TestScriptedPolicies(t *testing.T) {
	const n80, n50 = 40, 20
	for _, task := range Tasks() {
		t.Run(task.Name, func(t *testing.T) {
			wins, failed := scriptedSuccess(t, task, Rate80, n80)
			rate := float64(wins) / n80
			t.Logf("80 Hz: %d/%d (failed seeds %v)", wins, n80, failed)
			want := 0.9
			if task.Caveat != "" {
				if task.ScriptedSuccess <= 0 || task.ScriptedSuccess >= 0.9 {
					t.Fatalf("caveat without a measured ScriptedSuccess below 0.9: %v", task.ScriptedSuccess)
				}
				want = task.ScriptedSuccess - 0.12 // about two standard errors at n = 40
			}
			if rate < want {
				t.Errorf("scripted success %.2f at 80 Hz, want >= %.2f", rate, want)
			}
			w50, f50 := scriptedSuccess(t, task, Rate50, n50)
			t.Logf("50 Hz: %d/%d (failed seeds %v)", w50, n50, f50)
		})
	}
}

// The same seed and actions give bit-identical observations and rewards in a fresh Env
// and in one that has run another episode first (model edits must not carry over).
func TestDeterminismAllTasks(t *testing.T) {
	for _, task := range Tasks() {
		t.Run(task.Name, func(t *testing.T) {
			const seed, steps = 7, 100
			a := newEnv(t, task.Name, Options{})
			o, err := a.Reset(seed)
			if err != nil {
				t.Fatal(err)
			}
			obs := []Obs{o}
			var acts []Action
			var rews []float64
			for i := 0; i < steps; i++ {
				act := task.Scripted(&o)
				var r float64
				if o, r, _, _, err = a.Step(act); err != nil {
					t.Fatal(err)
				}
				acts, obs, rews = append(acts, act), append(obs, o), append(rews, r)
			}
			replay := func(e *Env, label string) {
				o, err := e.Reset(seed)
				if err != nil {
					t.Fatal(err)
				}
				if o != obs[0] {
					t.Fatalf("%s: reset observation differs", label)
				}
				for i, act := range acts {
					var r float64
					if o, r, _, _, err = e.Step(act); err != nil {
						t.Fatal(err)
					}
					if o != obs[i+1] || math.Float64bits(r) != math.Float64bits(rews[i]) {
						t.Fatalf("%s: step %d differs:\n%v %v\n%v %v", label, i, o, r, obs[i+1], rews[i])
					}
				}
			}
			if _, err := a.Reset(seed + 1); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 30; i++ {
				o := a.Obs()
				if _, _, _, _, err := a.Step(task.Scripted(&o)); err != nil {
					t.Fatal(err)
				}
			}
			replay(a, "same Env after another episode")
			replay(newEnv(t, task.Name, Options{}), "fresh Env")
		})
	}
}
