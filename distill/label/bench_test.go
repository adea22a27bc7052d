package label_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/teacher"
)

// BenchmarkScriptedRun is a whole scripted labelling run per op (sampler, oracle, store);
// it reports labels/s.
func BenchmarkScriptedRun(b *testing.B) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Episodes: 20, Steps: 500, W: 8, H: 8})
	tch, _ := teacher.New(label.Oracle, 0)
	const n = 20000
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		u, _ := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: uint64(i)})
		st, err := label.OpenStore(filepath.Join(b.TempDir(), "l.jsonl"), label.StoreOptions{SyncEvery: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := (&label.Runner{Source: src, Sampler: u, Labeler: tch, Store: st, Pairs: n}).Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		st.Close()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "labels/s")
}
