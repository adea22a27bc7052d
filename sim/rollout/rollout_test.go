package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"

	"robodistill/sim/metaworld"
)

func TestParsePolicy(t *testing.T) {
	for _, ok := range []string{"scripted", "random", "scripted-noise:0.3", "scripted-noise:0", "wander:0.5", "scripted-noise:2,wander:0"} {
		if _, err := ParsePolicy(ok); err != nil {
			t.Errorf("ParsePolicy(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "scripted:1", "random:2", "scripted-noise", "scripted-noise:x", "scripted-noise:-1", "greedy", "wander", "wander:x", "scripted,greedy", "wander:11"} {
		if _, err := ParsePolicy(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParsePolicy(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// TestWander: the wandering policy takes the hand far across the workspace (and a mix
// alternates its policies by episode seed).
func TestWander(t *testing.T) {
	task, _ := metaworld.Lookup("reach")
	pf, err := ParsePolicy("scripted,wander:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pf(task, 4).(scripted); !ok {
		t.Errorf("seed 4 of a mix of two runs %T, want the first policy", pf(task, 4))
	}
	env, err := metaworld.New(task, metaworld.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	o, err := env.Reset(3)
	if err != nil {
		t.Fatal(err)
	}
	p := pf(task, 3)
	start := o.Hand()
	lo, hi := start, start
	for range 300 {
		if o, _, _, _, err = env.Step(p.Act(&o)); err != nil {
			t.Fatal(err)
		}
		h := o.Hand()
		for i := range h {
			lo[i], hi[i] = min(lo[i], h[i]), max(hi[i], h[i])
		}
	}
	if span := hi.Sub(lo); span[0] < 0.2 || span[1] < 0.1 || span[2] < 0.1 {
		t.Errorf("the hand spanned only %.2f × %.2f × %.2f m in 300 steps", span[0], span[1], span[2])
	}
}

// Results do not depend on the number of workers, and noise is seeded per episode.
func TestRunDeterministicAcrossWorkers(t *testing.T) {
	task, _ := metaworld.Lookup("reach")
	pf, _ := ParsePolicy("scripted-noise:0.5")
	run := func(workers int) Summary {
		s, err := Run(context.Background(), Config{Task: task, Policy: pf, Episodes: 4, Seed: 7, Workers: workers, Env: metaworld.Options{MaxSteps: 60}, Full: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := run(1), run(3)
	if a.Episodes != 4 || b.Episodes != 4 {
		t.Fatalf("episodes %d %d", a.Episodes, b.Episodes)
	}
	for i := range a.Results {
		if a.Results[i] != b.Results[i] {
			t.Fatalf("episode %d: %+v with 1 worker, %+v with 3", i, a.Results[i], b.Results[i])
		}
		if a.Results[i].Steps != 60 || a.Results[i].Seed != 7+uint64(i) {
			t.Fatalf("episode %d: %+v", i, a.Results[i])
		}
	}
}

func TestRunScriptedStopsAtSuccess(t *testing.T) {
	task, _ := metaworld.Lookup("reach")
	pf, _ := ParsePolicy("scripted")
	s, err := Run(context.Background(), Config{Task: task, Policy: pf, Episodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.SuccessRate != 1 || s.MeanSteps >= 500 || s.StepsPerSec <= 0 {
		t.Fatalf("summary %+v", s)
	}
	for _, ep := range s.Results {
		if ep.FirstSuccess != ep.Steps {
			t.Fatalf("episode did not end at its first success: %+v", ep)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	task, _ := metaworld.Lookup("reach")
	pf, _ := ParsePolicy("random")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	s, err := Run(ctx, Config{Task: task, Policy: pf, Episodes: 50, Workers: 1, Full: true,
		OnEpisode: func(Episode) {
			if n++; n == 2 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if s.Episodes < 2 || s.Episodes > 3 {
		t.Fatalf("%d episodes finished before the cancel took effect", s.Episodes)
	}
}

func TestRunErrors(t *testing.T) {
	task, _ := metaworld.Lookup("reach")
	pf, _ := ParsePolicy("random")
	if _, err := Run(context.Background(), Config{Task: task, Policy: pf}); err == nil {
		t.Error("zero episodes accepted")
	}
	if _, err := Run(context.Background(), Config{Task: task, Policy: pf, Episodes: 1, Env: metaworld.Options{Assets: "/nope"}}); !errors.Is(err, metaworld.ErrAssets) {
		t.Errorf("missing assets: %v", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"scripted", "random", "scripted-noise:0.3", "scripted-noise:", ":", "scripted-noise:1e309"} {
		f.Add(s)
	}
	task, _ := metaworld.Lookup("reach")
	f.Fuzz(func(t *testing.T, spec string) {
		pf, err := ParsePolicy(spec)
		if err != nil {
			return
		}
		var o metaworld.Obs
		a := pf(task, 1).Act(&o)
		for _, v := range a {
			if v != v || v < -1 || v > 1 {
				t.Fatalf("policy %q gave action %v", spec, a)
			}
		}
	})
}
