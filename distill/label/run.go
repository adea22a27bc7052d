package label

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Runner is one labelling run: it draws pairs from Sampler, has Labeler answer them on
// Workers goroutines and appends each label to Store as soon as it is answered, until
// Store holds Pairs labels of this labeller.
//
// Resuming: pairs that Store already holds for this labeller are skipped as the sampler
// draws them, and count toward Pairs. With a deterministic sampler (Uniform and the same
// seed) a run killed at any moment and run again ends with exactly the labels an
// uninterrupted run would have written, each pair once.
type Runner struct {
	Source  Source
	Sampler Sampler
	Labeler Labeler
	Store   *Store
	// Pairs is the number of labels of this labeller the store should hold at the end.
	Pairs int
	// Workers answer pairs concurrently (default GOMAXPROCS). For a VLM, match the
	// client's concurrency limit.
	Workers int
	// Batch is the number of pairs asked of the sampler at once (default 64).
	Batch int
	Log   *zap.Logger
	// Now stamps records (default time.Now).
	Now func() time.Time
	// OnLabel, if set, is called after each stored label, from one goroutine at a time.
	OnLabel func(Record, Summary)
}

// Summary reports a run. It is the one-line JSON of `robodistill label --json`.
type Summary struct {
	Labeler string `json:"labeler"`
	Out     string `json:"out"`
	// Target is Pairs; Existing the labels of this labeller found in the store;
	// Labelled the labels this run added.
	Target   int `json:"target"`
	Existing int `json:"existing"`
	Labelled int `json:"labelled"`
	// Skipped counts drawn pairs that the store already held.
	Skipped int `json:"skipped"`
	AnswerCounts
	Inconsistent int     `json:"inconsistent"`
	Usage        Usage   `json:"usage"`
	ElapsedSec   float64 `json:"elapsed_sec"`
	LabelsPerSec float64 `json:"labels_per_sec"`
}

// Run labels until the store holds r.Pairs labels of the labeller, ctx is done or a
// labeller or store error stops it. Finished labels are stored either way; the summary
// counts them.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	log := r.Log
	if log == nil {
		log = zap.NewNop()
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	workers := r.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	batch := r.Batch
	if batch <= 0 {
		batch = 64
	}
	info := r.Labeler.Info()
	lkey := info.Key()
	episodes := r.Source.Episodes()
	sum := Summary{Labeler: info.Name(), Out: r.Store.Path(), Target: r.Pairs, Existing: r.Store.Count(lkey)}
	need := r.Pairs - sum.Existing
	log = log.With(zap.String("labeler", info.Name()))
	if need <= 0 {
		log.Info("store already holds the labels asked for", zap.Int("existing", sum.Existing))
		return sum, nil
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan Query)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards sum and OnLabel
		perr error      // the producer's error
	)
	wg.Add(1)
	go func() { // producer: the only caller of the sampler, so its sequence is deterministic
		defer wg.Done()
		defer close(jobs)
		for sent := 0; sent < need; {
			pairs, err := r.Sampler.Sample(ctx, min(batch, need-sent))
			for _, p := range pairs {
				if r.Store.Has(lkey, p) {
					mu.Lock()
					sum.Skipped++
					mu.Unlock()
					continue
				}
				if sent == need {
					break
				}
				select {
				case jobs <- NewQuery(p, episodes):
					sent++
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					perr = err
				}
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range jobs {
				l, err := r.Labeler.Label(ctx, q)
				if err != nil {
					cancel(fmt.Errorf("label %s/%s: %w", q.A.Last().Hash, q.B.Last().Hash, err))
					continue // drain
				}
				rec := NewRecord(q, info, l, now())
				if err := r.Store.Append(&rec); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				sum.count(&rec)
				if r.OnLabel != nil {
					r.OnLabel(rec, sum)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum.ElapsedSec = time.Since(start).Seconds()
	if sum.ElapsedSec > 0 {
		sum.LabelsPerSec = float64(sum.Labelled) / sum.ElapsedSec
	}
	err := context.Cause(ctx)
	if errors.Is(err, context.Canceled) && perr != nil {
		err = perr
	} else if err == nil {
		err = perr
	}
	if err != nil {
		return sum, fmt.Errorf("label.Runner.Run: %w", err)
	}
	log.Info("labelling done", zap.Int("labelled", sum.Labelled), zap.Int("existing", sum.Existing),
		zap.Float64("labels_per_sec", sum.LabelsPerSec))
	return sum, nil
}

func (s *Summary) count(r *Record) {
	s.Labelled++
	s.AnswerCounts.add(r.Answer)
	if r.Consistent != nil && !*r.Consistent {
		s.Inconsistent++
	}
	if r.Usage != nil {
		s.Usage.Add(*r.Usage)
	}
}

// NewRecord assembles the record of label l of query q.
func NewRecord(q Query, info LabelerInfo, l Label, at time.Time) Record {
	a, b := q.A.Last(), q.B.Last()
	r := Record{
		V: RecordVersion, A: a.Hash, B: b.Hash,
		AEpisode: q.EpisodeA, AStep: a.Step, BEpisode: q.EpisodeB, BStep: b.Step,
		Task: q.Task, Goal: q.Goal, Labeler: info,
		Answer: l.Answer, Confidence: l.Confidence, Votes: l.Votes, Orders: l.Orders,
		Consistent: l.Consistent, Usage: l.Usage, Time: at.UTC(),
	}
	if len(q.A) > 1 || len(q.B) > 1 {
		r.ASegment, r.BSegment = q.A.Hashes(), q.B.Hashes()
	}
	if q.A.HasTruth() && q.B.HasTruth() {
		r.Truth = &Truth{A: q.A.Return(1), B: q.B.Return(1), ASuccess: a.Success, BSuccess: b.Success}
	}
	return r
}
