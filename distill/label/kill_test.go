package label_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/vlm"
	"robodistill/distill/label/vlmtest"
)

// The kill test re-runs this test binary as a labelling process (TestMain sees
// ROBODISTILL_LABEL_CHILD) and kills it with SIGKILL at random moments.
func TestMain(m *testing.M) {
	if os.Getenv("ROBODISTILL_LABEL_CHILD") != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	killPairs = 200
	maxKills  = 8
)

// slowLabeler makes a scripted run last long enough to be killed in the middle.
type slowLabeler struct{ label.Labeler }

func (s slowLabeler) Label(ctx context.Context, q label.Query) (label.Label, error) {
	time.Sleep(10 * time.Millisecond)
	return s.Labeler.Label(ctx, q)
}

// childLabeler is the labeller of a kill-test run: "teacher", or "vlm" against baseURL
// with a response cache in cacheDir.
func childLabeler(t testing.TB, kind, baseURL, cacheDir string, src label.Source) (label.Labeler, error) {
	if kind == "teacher" {
		return slowLabeler{mistakeTeacher(t)}, nil
	}
	c, err := vlm.NewClient(vlm.Config{BaseURL: baseURL, Model: "fake-vlm", Concurrency: 4, MinBackoff: time.Millisecond}, nil)
	if err != nil {
		return nil, err
	}
	cache, err := vlm.OpenDirCache(cacheDir)
	if err != nil {
		return nil, err
	}
	j, err := vlm.NewJudge(vlm.JudgeConfig{Client: c, Source: src, Cache: cache, Mode: vlm.OneStage, ImageSize: 32})
	if err != nil {
		return nil, err
	}
	return label.NewConsistent(j, label.ConsistentOptions{})
}

func child() error {
	src := runSource()
	l, err := childLabeler(&testing.T{}, os.Getenv("ROBODISTILL_LABEL_CHILD"), os.Getenv("KILL_BASE_URL"), os.Getenv("KILL_CACHE"), src)
	if err != nil {
		return err
	}
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 8})
	if err != nil {
		return err
	}
	st, err := label.OpenStore(os.Getenv("KILL_OUT"), label.StoreOptions{SyncEvery: -1})
	if err != nil {
		return err
	}
	defer st.Close()
	r := &label.Runner{Source: src, Sampler: u, Labeler: l, Store: st, Pairs: killPairs, Workers: 4}
	_, err = r.Run(context.Background())
	return err
}

// TestKillResume kills labelling processes with SIGKILL at random points and reruns
// them until one finishes: every answered pair is stored exactly once, the labels equal
// an uninterrupted run's, and (VLM) a question is paid for again only if it was in
// flight when the process died.
func TestKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, kind := range []string{"teacher", "vlm"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			src := runSource()
			refSrv := vlmtest.NewServer(vlmtest.Config{ImageW: 32, ImageH: 32})
			defer refSrv.Close()
			refL, err := childLabeler(t, kind, refSrv.BaseURL(), filepath.Join(dir, "refcache"), src)
			if err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(dir, "ref.jsonl")
			start := time.Now()
			if _, err := labelRun(t, src, refL, ref, killPairs, 4, 0); err != nil {
				t.Fatal(err)
			}
			// Kill within the time a whole run takes (plus the child's start-up).
			window := int(time.Since(start)/time.Millisecond) + 50
			want := answers(t, ref)
			srv := vlmtest.NewServer(vlmtest.Config{ImageW: 32, ImageH: 32, Latency: time.Millisecond})
			defer srv.Close()

			out := filepath.Join(dir, "labels.jsonl")
			rng := rand.New(rand.NewPCG(uint64(len(kind)), 3))
			kills := 0
			for round := 0; ; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "ROBODISTILL_LABEL_CHILD="+kind, "KILL_OUT="+out,
					"KILL_BASE_URL="+srv.BaseURL(), "KILL_CACHE="+filepath.Join(dir, "cache"))
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				w := window
				if round == 0 {
					w = window / 4 // the first child dies early, so every run of the test kills one
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("child failed: %v", err)
					}
				case <-time.After(time.Duration(20+rng.IntN(w)) * time.Millisecond):
					if kills == maxKills { // enough: let this one finish
						if err := <-done; err != nil {
							t.Fatalf("child failed: %v", err)
						}
						break
					}
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					continue
				}
				break
			}
			got := answers(t, out)
			sameLabels(t, got, want)
			st := srv.Stats()
			dup := st.DuplicatePaid
			t.Logf("%s: %d kills, %d labels, %d completions, %d of them questions paid twice", kind, kills, len(got), st.Completions, dup)
			if kills == 0 {
				t.Error("no run was killed: the test does not test")
			}
			// At most the requests in flight at each kill (4 workers) are asked again.
			if kind == "vlm" && dup > 4*kills {
				t.Errorf("%d questions paid twice after %d kills: the cache did not answer repeats", dup, kills)
			}
		})
	}
}
