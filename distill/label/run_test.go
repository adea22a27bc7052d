package label_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/teacher"
)

func runSource() *labeltest.Source {
	return labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Episodes: 4, Steps: 60, Seed: 21})
}

func mistakeTeacher(t testing.TB) label.Labeler {
	sp, _ := label.ParseSpec("mistake:0.3")
	l, err := teacher.Labeler(sp, 5, label.ConsistentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// labelRun runs a labelling run into path; cancel after stopAfter labels when > 0.
func labelRun(t testing.TB, src label.Source, l label.Labeler, path string, pairs, workers, stopAfter int) (label.Summary, error) {
	t.Helper()
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	st, err := label.OpenStore(path, label.StoreOptions{SyncEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &label.Runner{Source: src, Sampler: u, Labeler: l, Store: st, Pairs: pairs, Workers: workers, Batch: 7,
		Now: func() time.Time { return time.Unix(0, 0) }}
	if stopAfter > 0 {
		r.OnLabel = func(_ label.Record, s label.Summary) {
			if s.Labelled >= stopAfter {
				cancel()
			}
		}
	}
	return r.Run(ctx)
}

// answers maps pair key to answer, failing on a pair stored twice.
func answers(t testing.TB, path string) map[string]label.Answer {
	t.Helper()
	recs, err := label.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]label.Answer{}
	for _, r := range recs {
		k := r.Labeler.Key() + "/" + r.PairKey()
		if _, dup := m[k]; dup {
			t.Fatalf("pair %s stored twice", k)
		}
		m[k] = r.Answer
	}
	return m
}

func sameLabels(t testing.TB, got, want map[string]label.Answer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d labels, want %d", len(got), len(want))
	}
	for k, a := range want {
		if got[k] != a {
			t.Fatalf("pair %s: %q, want %q", k, got[k], a)
		}
	}
}

// TestRunCrashResume interrupts runs at random points and cuts the label file inside
// its last record, as a crash during the write would, then resumes: every pair is
// stored exactly once and the labels equal those of an uninterrupted run.
func TestRunCrashResume(t *testing.T) {
	src := runSource()
	l := mistakeTeacher(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.jsonl")
	if s, err := labelRun(t, src, l, ref, 600, 4, 0); err != nil || s.Labelled != 600 {
		t.Fatalf("reference run: %+v %v", s, err)
	}
	want := answers(t, ref)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 8; trial++ {
		path := filepath.Join(dir, "run.jsonl")
		os.Remove(path)
		for round := 0; ; round++ {
			stop := 1 + rng.IntN(200)
			s, err := labelRun(t, src, l, path, 600, 1+rng.IntN(6), stop)
			if err == nil {
				if s.Existing+s.Labelled != 600 {
					t.Fatalf("finished with %d existing + %d labelled", s.Existing, s.Labelled)
				}
				break
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			// Crash in the middle of writing the last record.
			b, _ := os.ReadFile(path)
			if len(b) > 2 {
				last := lastLineStart(b)
				cut := last + rng.IntN(len(b)-last)
				os.WriteFile(path, b[:cut], 0o644)
			}
			if round > 100 {
				t.Fatal("no progress")
			}
		}
		sameLabels(t, answers(t, path), want)
	}
}

func lastLineStart(b []byte) int {
	for i := len(b) - 2; i >= 0; i-- {
		if b[i] == '\n' {
			return i + 1
		}
	}
	return 0
}

type failingLabeler struct {
	label.Labeler
	after int
	n     int
}

func (f *failingLabeler) Label(ctx context.Context, q label.Query) (label.Label, error) {
	f.n++
	if f.n > f.after {
		return label.Label{}, errors.New("endpoint down")
	}
	return f.Labeler.Label(ctx, q)
}

func TestRunErrors(t *testing.T) {
	src := runSource()
	dir := t.TempDir()
	s, err := labelRun(t, src, &failingLabeler{Labeler: mistakeTeacher(t), after: 10}, filepath.Join(dir, "a.jsonl"), 100, 1, 0)
	if err == nil || s.Labelled != 10 {
		t.Fatalf("failing labeller: %+v %v", s, err)
	}
	if got := err.Error(); !strings.Contains(got, "endpoint down") || !strings.Contains(got, "label.Runner.Run: label ") {
		t.Errorf("error %q does not name the operation and cause", got)
	}
	small := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 1, Steps: 5})
	s, err = labelRun(t, small, mistakeTeacher(t), filepath.Join(dir, "b.jsonl"), 100, 2, 0)
	if !errors.Is(err, label.ErrExhausted) || s.Labelled != 10 {
		t.Fatalf("exhausted: %+v %v", s, err)
	}
	// A complete store: nothing to do.
	s, err = labelRun(t, small, mistakeTeacher(t), filepath.Join(dir, "b.jsonl"), 10, 2, 0)
	if err != nil || s.Existing != 10 || s.Labelled != 0 {
		t.Fatalf("complete store: %+v %v", s, err)
	}
}

func TestStatsGolden(t *testing.T) {
	recs, err := label.ReadFile(filepath.Join("testdata", "labels.golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	goldenJSON(t, "stats.golden.json", label.StatsByLabeler(recs, label.StatsOptions{}))
}

func TestStatsByGap(t *testing.T) {
	mk := func(a, b float64, ans label.Answer) label.Record {
		return label.Record{Answer: ans, Truth: &label.Truth{A: a, B: b}, Labeler: label.LabelerInfo{Kind: "teacher", Spec: "x"}}
	}
	recs := []label.Record{
		mk(1, 1.2, label.Second), mk(1, 1.2, label.First), mk(1, 1.2, label.Tie), // gap 0.2: 1 of 2
		mk(5, 1, label.First), mk(1, 5, label.Second), mk(9, 0, label.Abstain), // gap ≥ 4: 2 of 2
		mk(3, 3, label.Tie), // gap 0: not strict
	}
	s := label.ComputeStats(recs, label.StatsOptions{})
	if s.Count != 7 || s.Strict != 6 || s.Decisive != 4 || s.Correct != 3 || *s.VLMAcc != 0.75 || *s.Coverage != 4.0/6 {
		t.Fatalf("stats %+v", s)
	}
	if b := s.ByGap[0]; b.Count != 4 || b.Decisive != 2 || *b.Acc != 0.5 || b.Ties != 2 {
		t.Errorf("bin [0,0.5): %+v", b)
	}
	if b := s.ByGap[4]; b.Count != 3 || b.Decisive != 2 || *b.Acc != 1 || b.Abstains != 1 || b.Hi != nil {
		t.Errorf("bin [4,∞): %+v", b)
	}
	if s.OrderConsistencyRate != nil || s.ParseFailureRate != nil {
		t.Error("judge figures reported for a teacher")
	}
}
