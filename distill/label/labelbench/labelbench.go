// Package labelbench measures labelling throughput, for `robodistill bench label` and
// `make bench`: scripted labels per second through the whole run (sampler, teacher,
// label store), and the VLM client's own cost per request against a local server that
// answers at once.
package labelbench

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/teacher"
	"robodistill/distill/label/vlm"
	"robodistill/distill/label/vlmtest"
)

// Options configures Run.
type Options struct {
	// Dir holds the scratch label file (default: a temporary directory, removed after).
	Dir string
	// Labels is the number of scripted labels (default 100 000).
	Labels int
	// Requests is the number of VLM requests (default 4000), Concurrency the client's
	// limit and the number of workers (default 8), ImageSize the image side (224).
	Requests, Concurrency, ImageSize int
}

// Report is the JSON of `robodistill bench label`.
type Report struct {
	GOMAXPROCS int `json:"gomaxprocs"`
	// Scripted: an oracle run of Labels pairs with a label store (fsync once a second,
	// as the CLI does), on GOMAXPROCS workers.
	ScriptedLabels       int     `json:"scripted_labels"`
	ScriptedLabelsPerSec float64 `json:"scripted_labels_per_sec"`
	// TeacherNsPerLabel is the teacher's decision alone.
	TeacherNsPerLabel float64 `json:"teacher_ns_per_label"`
	// VLM: one-stage questions through Judge (prompt, cache key, request encoding, HTTP,
	// response decoding, answer parsing) with images already encoded, against an
	// in-process server that answers at once.
	VLMRequests    int     `json:"vlm_requests"`
	VLMConcurrency int     `json:"vlm_concurrency"`
	VLMImageSize   int     `json:"vlm_image_size"`
	VLMBodyBytes   int     `json:"vlm_body_bytes"` // request size
	RequestsPerSec float64 `json:"vlm_requests_per_sec"`
	// WallUsPerRequest is elapsed time over requests; CPUUsPerRequest is the process's
	// CPU time (user + system) per request, client and the in-process server together,
	// so an upper bound on the client's; CPUUtilization is that CPU time over
	// elapsed × GOMAXPROCS (1: all cores busy).
	WallUsPerRequest float64 `json:"vlm_wall_us_per_request"`
	CPUUsPerRequest  float64 `json:"vlm_cpu_us_per_request"`
	CPUUtilization   float64 `json:"vlm_cpu_utilization"`
	// EncodeUsPerImage is the one-off cost of resizing and PNG-encoding a frame.
	EncodeUsPerImage float64 `json:"vlm_encode_us_per_image"`
}

// Run measures.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Labels == 0 {
		o.Labels = 100000
	}
	if o.Requests == 0 {
		o.Requests = 4000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.ImageSize == 0 {
		o.ImageSize = 224
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "labelbench-")
		if err != nil {
			return Report{}, fmt.Errorf("labelbench: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	rep := Report{GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if err := scripted(ctx, o, &rep); err != nil {
		return rep, fmt.Errorf("labelbench: scripted: %w", err)
	}
	if err := requests(ctx, o, &rep); err != nil {
		return rep, fmt.Errorf("labelbench: vlm: %w", err)
	}
	return rep, nil
}

func scripted(ctx context.Context, o Options, rep *Report) error {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Episodes: 20, Steps: 500, W: 8, H: 8})
	tch, err := teacher.New(label.Oracle, 0)
	if err != nil {
		return err
	}
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 1})
	if err != nil {
		return err
	}
	pairs, err := u.Sample(ctx, 1000)
	if err != nil {
		return err
	}
	eps := src.Episodes()
	qs := make([]label.Query, len(pairs))
	for i, p := range pairs {
		qs[i] = label.NewQuery(p, eps)
	}
	n := 200000
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := tch.Label(ctx, qs[i%len(qs)]); err != nil {
			return err
		}
	}
	rep.TeacherNsPerLabel = float64(time.Since(start).Nanoseconds()) / float64(n)

	u, _ = label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 2})
	path := filepath.Join(o.Dir, "bench-labels.jsonl")
	os.Remove(path)
	st, err := label.OpenStore(path, label.StoreOptions{SyncEvery: time.Second})
	if err != nil {
		return err
	}
	defer os.Remove(path)
	sum, err := (&label.Runner{Source: src, Sampler: u, Labeler: tch, Store: st, Pairs: o.Labels}).Run(ctx)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rep.ScriptedLabels, rep.ScriptedLabelsPerSec = sum.Labelled, sum.LabelsPerSec
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func requests(ctx context.Context, o Options, rep *Report) error {
	srv := httptest.NewServer(vlmtest.Instant("bench", `{"answer": "first"}`))
	defer srv.Close()
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 2, Steps: 50, W: o.ImageSize, H: o.ImageSize})
	c, err := vlm.NewClient(vlm.Config{BaseURL: srv.URL + "/v1", Model: "bench", Concurrency: o.Concurrency}, nil)
	if err != nil {
		return err
	}
	j, err := vlm.NewJudge(vlm.JudgeConfig{Client: c, Source: src, Mode: vlm.OneStage, ImageSize: o.ImageSize})
	if err != nil {
		return err
	}
	eps := src.Episodes()
	var qs []label.Query
	for e := range eps {
		fs, err := src.Frames(e)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(fs); i += 2 {
			qs = append(qs, label.NewQuery(label.Pair{A: label.Segment{fs[i]}, B: label.Segment{fs[i+1]}}, eps))
		}
	}
	start := time.Now()
	for _, q := range qs { // encodes every frame once
		if _, err := j.Judge(ctx, q, label.OrderAB, 0); err != nil {
			return err
		}
	}
	rep.EncodeUsPerImage = float64(time.Since(start).Microseconds()) / float64(2*len(qs))

	sent0 := c.Stats().BytesSent
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.Concurrency)
	cpu0, t0 := cpuTime(), time.Now()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.Requests) {
					return
				}
				if _, err := j.Judge(ctx, qs[int(i)%len(qs)], label.Order(i%2), 0); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	close(errc)
	if err := errors.Join(<-errc); err != nil {
		return err
	}
	rep.VLMRequests, rep.VLMConcurrency, rep.VLMImageSize = o.Requests, o.Concurrency, o.ImageSize
	rep.RequestsPerSec = float64(o.Requests) / wall.Seconds()
	rep.WallUsPerRequest = float64(wall.Microseconds()) / float64(o.Requests)
	rep.CPUUsPerRequest = float64(cpu.Microseconds()) / float64(o.Requests)
	rep.CPUUtilization = cpu.Seconds() / (wall.Seconds() * float64(rep.GOMAXPROCS))
	rep.VLMBodyBytes = int((c.Stats().BytesSent - sent0) / int64(o.Requests))
	return nil
}
