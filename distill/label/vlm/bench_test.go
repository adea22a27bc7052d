package vlm_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/vlm"
	"robodistill/distill/label/vlmtest"
)

func benchJudge(b *testing.B, baseURL string, size int) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 2, Steps: 50, W: 224, H: 224})
	c, err := vlm.NewClient(vlm.Config{BaseURL: baseURL, Model: "fake-vlm", Concurrency: 8}, nil)
	if err != nil {
		b.Fatal(err)
	}
	j, err := vlm.NewJudge(vlm.JudgeConfig{Client: c, Source: src, Mode: vlm.OneStage, ImageSize: size})
	if err != nil {
		b.Fatal(err)
	}
	fs, _ := src.Frames(0)
	eps := src.Episodes()
	var qs []label.Query
	for i := 0; i+1 < len(fs); i++ {
		qs = append(qs, label.NewQuery(label.Pair{A: label.Segment{fs[i]}, B: label.Segment{fs[i+1]}}, eps))
	}
	ctx := context.Background()
	for _, q := range qs { // warm the image cache: measured is the per-request cost
		if _, err := j.Judge(ctx, q, label.OrderAB, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := j.Judge(ctx, qs[i%len(qs)], label.OrderAB, 0); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkJudgeInstant is the client's cost per request against a server that answers
// at once without looking at the request.
func BenchmarkJudgeInstant(b *testing.B) {
	srv := httptest.NewServer(vlmtest.Instant("fake-vlm", `{"answer": "first"}`))
	defer srv.Close()
	benchJudge(b, srv.URL+"/v1", 224)
}

// BenchmarkJudgeFake is the same against the validating fake (which decodes the PNGs).
func BenchmarkJudgeFake(b *testing.B) {
	srv := vlmtest.NewServer(vlmtest.Config{})
	defer srv.Close()
	benchJudge(b, srv.BaseURL(), 224)
}
