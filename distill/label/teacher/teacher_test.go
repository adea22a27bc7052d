package teacher_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/teacher"
)

func source() *labeltest.Source {
	return labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Episodes: 6, Steps: 200, Seed: 11})
}

// run labels n pairs with spec and returns the records and their stats.
func run(t *testing.T, src label.Source, spec string, n int, copts label.ConsistentOptions) ([]label.Record, label.Stats) {
	t.Helper()
	sp, err := label.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := teacher.Labeler(sp, 1, copts)
	if err != nil {
		t.Fatal(err)
	}
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	st, err := label.OpenStore(path, label.StoreOptions{SyncEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &label.Runner{Source: src, Sampler: u, Labeler: l, Store: st, Pairs: n}
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if sum.Labelled != n {
		t.Fatalf("labelled %d of %d", sum.Labelled, n)
	}
	recs, err := label.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs, label.ComputeStats(recs, label.StatsOptions{})
}

func TestOracleAgreesWithTruth(t *testing.T) {
	recs, s := run(t, source(), "oracle", 10000, label.ConsistentOptions{})
	if s.VLMAcc == nil || *s.VLMAcc != 1 || *s.Coverage != 1 {
		t.Fatalf("oracle: acc %v coverage %v over %d strict pairs", *s.VLMAcc, *s.Coverage, s.Strict)
	}
	for _, r := range recs {
		if r.Confidence != 1 || r.Labeler.Spec != "oracle" || r.Labeler.Kind != "teacher" || r.Truth == nil {
			t.Fatalf("record %+v", r)
		}
	}
	t.Logf("oracle: %d labels, acc %.4f, ties %d", s.Count, *s.VLMAcc, s.Ties)
}

func TestMistake(t *testing.T) {
	_, s := run(t, source(), "mistake:0.2", 10000, label.ConsistentOptions{})
	if math.Abs(*s.VLMAcc-0.8) > 0.03 {
		t.Fatalf("mistake:0.2 agrees with ground truth on %.4f, want 0.8 ± 0.03", *s.VLMAcc)
	}
	t.Logf("mistake:0.2: agreement %.4f over %d decisive labels", *s.VLMAcc, s.Decisive)
}

// TestNoisyCalibrated: the Boltzmann teacher prefers A with probability σ(β·ΔR).
func TestNoisyCalibrated(t *testing.T) {
	recs, _ := run(t, source(), "noisy:0.5", 10000, label.ConsistentOptions{})
	type bin struct{ n, first, p float64 }
	bins := map[int]*bin{}
	for _, r := range recs {
		d := r.Truth.A - r.Truth.B
		k := int(math.Floor(d))
		if k < -4 || k > 3 {
			continue
		}
		b := bins[k]
		if b == nil {
			b = &bin{}
			bins[k] = b
		}
		b.n++
		b.p += 1 / (1 + math.Exp(-0.5*d))
		if r.Answer == label.First {
			b.first++
		}
	}
	for k, b := range bins {
		got, want := b.first/b.n, b.p/b.n
		if se := math.Sqrt(want * (1 - want) / b.n); math.Abs(got-want) > 4*se+0.01 {
			t.Errorf("ΔR in [%d,%d): P(first) %.3f, want %.3f (n %v)", k, k+1, got, want, b.n)
		}
	}
}

func TestEqualAndSkip(t *testing.T) {
	recs, _ := run(t, source(), "equal:1", 3000, label.ConsistentOptions{})
	for _, r := range recs {
		if (r.Answer == label.Tie) != (r.Truth.Gap() < 1) {
			t.Fatalf("equal:1 answered %s at gap %.3f", r.Answer, r.Truth.Gap())
		}
	}
	recs, _ = run(t, source(), "skip:5", 3000, label.ConsistentOptions{})
	skipped := 0
	for _, r := range recs {
		if (r.Answer == label.Abstain) != (math.Max(r.Truth.A, r.Truth.B) <= 5) {
			t.Fatalf("skip:5 answered %s with returns %.2f, %.2f", r.Answer, r.Truth.A, r.Truth.B)
		}
		if r.Answer == label.Abstain {
			skipped++
		}
	}
	if skipped == 0 || skipped == len(recs) {
		t.Fatalf("skip:5 skipped %d of %d: the test does not test", skipped, len(recs))
	}
}

func seg(rewards ...float64) label.Segment {
	s := make(label.Segment, len(rewards))
	for i, r := range rewards {
		s[i] = label.FrameInfo{Hash: string(rune('a'+i)) + string(rune('a'+int(r))), Step: i, Reward: r}
	}
	return s
}

func TestMyopic(t *testing.T) {
	// A earns early, B late: plain sums favour A (6 > 5), γ = 0.5 favours B.
	a, b := seg(4, 1, 1), seg(0, 0, 5)
	q := label.Query{Pair: label.Pair{A: a, B: b}}
	for spec, want := range map[string]label.Answer{"oracle": label.First, "myopic:0.5": label.Second, "myopic:0.5+equal:2": label.Tie} {
		sp, _ := label.ParseSpec(spec)
		tch, err := teacher.New(sp, 0)
		if err != nil {
			t.Fatal(err)
		}
		l, err := tch.Label(context.Background(), q)
		if err != nil || l.Answer != want {
			t.Errorf("%s: %s %v, want %s", spec, l.Answer, err, want)
		}
	}
}

// TestBiasedCaughtByOrderConsistency: a teacher that says "first" 30 % of the time
// regardless is inconsistent across orders on ≈30 % of pairs, and the labels that pass
// the check are still right.
func TestBiasedCaughtByOrderConsistency(t *testing.T) {
	_, s := run(t, source(), "biased:0.3", 10000, label.ConsistentOptions{OnDisagree: label.DropOnDisagree})
	if s.OrderConsistencyRate == nil || math.Abs(*s.OrderConsistencyRate-0.7) > 0.03 {
		t.Fatalf("order consistency %v, want 0.7 ± 0.03", s.OrderConsistencyRate)
	}
	if *s.VLMAcc != 1 {
		t.Errorf("consistent labels agree with truth on %.4f, want 1", *s.VLMAcc)
	}
	_, s = run(t, source(), "biased:0.3", 2000, label.ConsistentOptions{Orders: 1})
	if s.OrderConsistencyRate != nil || *s.VLMAcc > 0.9 {
		t.Errorf("asked in one order only: consistency %v, acc %.3f (bias should leak into labels)", s.OrderConsistencyRate, *s.VLMAcc)
	}
	t.Logf("biased:0.3 in one order: acc %.3f", *s.VLMAcc)
}

func TestDeterministicAndErrors(t *testing.T) {
	src := source()
	fs, _ := src.Frames(0)
	sp, _ := label.ParseSpec("mistake:0.5")
	tch, _ := teacher.New(sp, 42)
	q := label.NewQuery(label.Pair{A: label.Segment{fs[3]}, B: label.Segment{fs[100]}}, src.Episodes())
	first, _ := tch.Label(context.Background(), q)
	for i := 0; i < 20; i++ {
		if l, _ := tch.Label(context.Background(), q); l.Answer != first.Answer {
			t.Fatal("the same pair got different labels")
		}
	}
	nt := labeltest.Synthetic(labeltest.SyntheticOptions{NoTruth: true, Episodes: 1, Steps: 5})
	nfs, _ := nt.Frames(0)
	oracle, _ := teacher.New(label.Oracle, 0)
	if _, err := oracle.Label(context.Background(), label.NewQuery(label.Pair{A: label.Segment{nfs[0]}, B: label.Segment{nfs[1]}}, nt.Episodes())); !errors.Is(err, teacher.ErrNoTruth) {
		t.Errorf("no truth: %v", err)
	}
	vlm, _ := label.ParseSpec("vlm")
	if _, err := teacher.New(vlm, 0); err == nil {
		t.Error("teacher.New accepted vlm")
	}
	b, _ := label.ParseSpec("biased:0.1")
	if _, err := teacher.New(b, 0); err == nil {
		t.Error("teacher.New accepted a biased spec")
	}
}

func BenchmarkTeacher(b *testing.B) {
	src := source()
	fs, _ := src.Frames(0)
	sp, _ := label.ParseSpec("noisy:1+mistake:0.1")
	tch, _ := teacher.New(sp, 1)
	q := label.NewQuery(label.Pair{A: label.Segment{fs[3]}, B: label.Segment{fs[100]}}, src.Episodes())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tch.Label(ctx, q)
	}
}
