package collect

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"robodistill/control/episode"
	"robodistill/sim/metaworld"
	"robodistill/sim/rollout"
)

// small is a quick configuration: short full-length episodes of a noisy scripted policy.
func small(out string) Config {
	task, _ := metaworld.Lookup("reach")
	return Config{Task: task, Policy: "scripted-noise:0.3", Episodes: 3, Seed: 11, Camera: "corner",
		Size: 24, MaxSteps: 20, Full: true, Out: out}
}

func run(t *testing.T, cfg Config) Summary {
	t.Helper()
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bagsOf reads every episode bag of a collection.
func bagsOf(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "episodes", "*"))
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func sameBags(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d files vs %d", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Fatalf("%s differs", name)
		}
	}
}

// What the bags hold is what the simulator did: replay every episode independently and
// compare frame, state, observation, action, reward and success at each step.
func TestRecordsTheSimulator(t *testing.T) {
	cfg := small(filepath.Join(t.TempDir(), "c"))
	cfg.Workers = 1
	s := run(t, cfg)
	if s.Episodes != 3 || s.New != 3 || s.Resumed != 0 || s.Frames != 3*21 || s.Steps != 3*20 || s.Bytes == 0 || s.Task != "reach" {
		t.Fatalf("summary %+v", s)
	}
	c, err := episode.OpenCollection(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env, err := metaworld.New(cfg.Task, metaworld.Options{MaxSteps: cfg.MaxSteps})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pf, _ := rollout.ParsePolicy(cfg.Policy)
	rgb := make([]byte, 3*cfg.Size*cfg.Size)
	var st metaworld.RobotState
	for _, entry := range c.Entries() {
		n := entry.Episode
		seed := cfg.Seed + uint64(n)
		ep, err := c.Episode(n)
		if err != nil {
			t.Fatal(err)
		}
		m := ep.Meta
		if m == nil || m.Task != "reach" || m.Seed != seed || m.Episode != n || m.Camera != "corner" || m.Width != 24 ||
			m.Rate != 80 || m.ActionScale != 0.01 || m.Policy != cfg.Policy || m.MaxSteps != 20 || m.Goal != cfg.Task.Goal {
			t.Fatalf("meta %+v", m)
		}
		o, err := env.Reset(seed)
		if err != nil {
			t.Fatal(err)
		}
		pol := pf(cfg.Task, seed)
		var ret float64
		for k := 0; k < ep.Len(); k++ {
			s, err := ep.Step(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := env.Render("corner", 24, 24, rgb); err != nil {
				t.Fatal(err)
			}
			env.RobotState(&st)
			if !bytes.Equal(s.Frame.Data, rgb) || s.Hash != entry.Frames[k].Hash {
				t.Fatalf("episode %d step %d: frame differs", n, k)
			}
			if !slices.Equal(s.Obs, o[:]) {
				t.Fatalf("episode %d step %d: obs %v, want %v", n, k, s.Obs, o)
			}
			if s.Hand.Pos != st.HandPos || s.Hand.Quat != st.HandQuat || !slices.Equal(s.Joints.Position, st.JointPos[:]) ||
				!slices.Equal(s.Joints.Velocity, st.JointVel[:]) || s.Objects[0].Pos != st.Objects[0].Pos || *s.Goal != o.Goal() {
				t.Fatalf("episode %d step %d: state differs", n, k)
			}
			if s.Status == nil || s.Status.Seed != seed || s.Status.Step != k {
				t.Fatalf("episode %d step %d: status %+v", n, k, s.Status)
			}
			if k == ep.Len()-1 {
				if s.Command != nil || !s.Status.Truncated {
					t.Fatalf("last step: command %+v, status %+v", s.Command, s.Status)
				}
				break
			}
			a := pol.Act(&o)
			for i := range a {
				if want := math.Max(-1, math.Min(1, a[i])); math.Abs(s.Command.Action[i]-want) > 1e-12 {
					t.Fatalf("episode %d step %d: action %v, policy %v", n, k, s.Command.Action, a)
				}
			}
			var r float64
			var info metaworld.Info
			if o, r, info, _, err = env.Step(a); err != nil {
				t.Fatal(err)
			}
			next, err := ep.Step(k + 1)
			if err != nil {
				t.Fatal(err)
			}
			if next.Status.Reward != r || next.Status.Success != info.Success {
				t.Fatalf("episode %d step %d: reward %v success %v, simulator %v %v", n, k+1, next.Status.Reward, next.Status.Success, r, info.Success)
			}
			ret += r
		}
		if entry.Return != ret || entry.Seed != seed || entry.Steps != 21 {
			t.Fatalf("entry %+v, return %v", entry, ret)
		}
		ep.Close()
	}
	if err := c.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Files do not depend on the number of workers; a run continues where the last one
// stopped; other arguments are refused before anything is written.
func TestResumeAndWorkers(t *testing.T) {
	base := t.TempDir()
	one := small(filepath.Join(base, "one"))
	one.Workers = 1
	run(t, one)

	two := small(filepath.Join(base, "two"))
	two.Workers, two.Episodes = 2, 1
	if s := run(t, two); s.Episodes != 1 || s.New != 1 {
		t.Fatalf("first part: %+v", s)
	}
	two.Episodes = 3
	if s := run(t, two); s.Episodes != 3 || s.New != 2 || s.Resumed != 1 {
		t.Fatalf("continued: %+v", s)
	}
	if s := run(t, two); s.New != 0 || s.Resumed != 3 || s.FramesPerSec != 0 {
		t.Fatalf("nothing to do: %+v", s)
	}
	sameBags(t, bagsOf(t, one.Out), bagsOf(t, two.Out))

	other := two
	other.Seed, other.Policy = 12, "random"
	_, err := Run(context.Background(), other)
	if !errors.Is(err, episode.ErrSpecMismatch) || !strings.Contains(err.Error(), `policy is "scripted-noise:0.3" there, "random" here`) ||
		!strings.Contains(err.Error(), `seed is "11" there, "12" here`) {
		t.Fatalf("different arguments: %v", err)
	}
}

func TestBadArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c")
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Camera = "fisheye" }, `unknown camera "fisheye" (the scene has [`},
		{func(c *Config) { c.Policy = "greedy" }, `unknown policy "greedy"`},
		{func(c *Config) { c.Size = 0 }, "size 0 outside 1..480"},
		{func(c *Config) { c.Episodes = 0 }, "episodes 0 < 1"},
		{func(c *Config) { c.Rate = 60 }, "rate 60 Hz not supported"},
		{func(c *Config) { c.Task = nil }, "no task"},
	} {
		cfg := small(out)
		tc.edit(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", cfg, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused run created the folder: %v", err)
	}
}

// Cancelling keeps the completed episodes and discards the unfinished one; the next run
// completes the collection identically.
func TestCancel(t *testing.T) {
	base := t.TempDir()
	ref := small(filepath.Join(base, "ref"))
	run(t, ref)

	cfg := small(filepath.Join(base, "c"))
	cfg.Workers = 1
	ctx, cancel := context.WithCancel(context.Background())
	cfg.OnEpisode = func(p Progress) { cancel() }
	s, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) || s.Episodes != 1 {
		t.Fatalf("cancelled run: %+v %v", s, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(cfg.Out, "episodes", ".*")); len(tmp) != 0 {
		t.Fatalf("left %v", tmp)
	}
	cfg.OnEpisode = nil
	if s := run(t, cfg); s.Resumed != 1 || s.New != 2 {
		t.Fatalf("continued: %+v", s)
	}
	sameBags(t, bagsOf(t, ref.Out), bagsOf(t, cfg.Out))
}
