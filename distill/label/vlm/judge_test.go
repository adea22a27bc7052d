package vlm_test

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/vlm"
	"robodistill/distill/label/vlmtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func src() *labeltest.Source {
	return labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"fill"}, Episodes: 4, Steps: 60, W: 64, H: 64, Seed: 4})
}

type setup struct {
	srv   *vlmtest.Server
	src   *labeltest.Source
	cfg   vlm.Config
	jcfg  vlm.JudgeConfig
	copts label.ConsistentOptions
}

func newSetup(t *testing.T, scfg vlmtest.Config) *setup {
	t.Helper()
	if scfg.ImageW == 0 {
		scfg.ImageW, scfg.ImageH = 48, 48
	}
	srv := vlmtest.NewServer(scfg)
	t.Cleanup(srv.Close)
	s := src()
	return &setup{srv: srv, src: s,
		cfg:  vlm.Config{BaseURL: srv.BaseURL(), APIKey: scfg.APIKey, Model: srv.Model(), Concurrency: 4, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PricePrompt: 1, PriceCompletion: 2},
		jcfg: vlm.JudgeConfig{Source: s, ImageSize: 48, Mode: vlm.OneStage}}
}

// run labels n pairs and returns the stats, the records and the run summary.
func (s *setup) run(t *testing.T, n int, out string) (label.Stats, []label.Record, label.Summary, error) {
	t.Helper()
	c, err := vlm.NewClient(s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	jc := s.jcfg
	jc.Client = c
	j, err := vlm.NewJudge(jc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := label.NewConsistent(j, s.copts)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := label.NewUniform(s.src, label.UniformOptions{Within: 0.5, Seed: 1})
	if out == "" {
		out = filepath.Join(t.TempDir(), "labels.jsonl")
	}
	st, err := label.OpenStore(out, label.StoreOptions{SyncEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, rerr := (&label.Runner{Source: s.src, Sampler: u, Labeler: l, Store: st, Pairs: n, Workers: 4}).Run(context.Background())
	st.Close()
	recs, err := label.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return label.ComputeStats(recs, label.StatsOptions{}), recs, sum, rerr
}

func TestJudgeTruthful(t *testing.T) {
	for _, mode := range []vlm.Mode{vlm.OneStage, vlm.TwoStage} {
		t.Run(string(mode), func(t *testing.T) {
			s := newSetup(t, vlmtest.Config{APIKey: "sk-test", Policy: &vlmtest.Truthful{Varied: true}})
			s.jcfg.Mode = mode
			st, recs, sum, err := s.run(t, 300, "")
			if err != nil {
				t.Fatal(err)
			}
			if *st.ParseFailureRate != 0 || st.Retried != 0 {
				t.Errorf("parse failures %v, retried %d: the parser misread a style", *st.ParseFailureRate, st.Retried)
			}
			if *st.OrderConsistencyRate < 0.98 {
				t.Errorf("order consistency %.3f", *st.OrderConsistencyRate)
			}
			for _, b := range st.ByGap {
				if b.Lo >= 1 && b.Acc != nil && *b.Acc < 0.97 {
					t.Errorf("gap ≥ %v: acc %.3f", b.Lo, *b.Acc)
				}
			}
			perLabel := 2
			if mode == vlm.TwoStage {
				perLabel = 4
			}
			if sum.Usage.Requests != perLabel*300 || s.srv.Stats().Completions != perLabel*300 || sum.Usage.PromptTokens == 0 ||
				math.Abs(sum.Usage.CostUSD-float64(sum.Usage.PromptTokens+2*sum.Usage.CompletionTokens)/1e6) > 1e-9 {
				t.Errorf("usage %+v, server %+v", sum.Usage, s.srv.Stats())
			}
			r := recs[0]
			if r.Labeler.Kind != "vlm" || r.Labeler.Model != "fake-vlm" || r.Labeler.PromptVersion != "pairwise-v1/"+string(mode) ||
				len(r.Labeler.PromptDigest) != 12 || len(r.Orders) != 2 || r.Orders[1].Shown != label.OrderBA || r.Orders[0].Answers[0].Raw == "" {
				t.Errorf("record %+v", r)
			}
			if (mode == vlm.TwoStage) != (r.Orders[0].Answers[0].Analysis != "") {
				t.Errorf("analysis %q in %s mode", r.Orders[0].Answers[0].Analysis, mode)
			}
			t.Logf("%s: vlm_acc %.3f coverage %.3f consistency %.3f", mode, *st.VLMAcc, *st.Coverage, *st.OrderConsistencyRate)
		})
	}
}

// TestPositionBiasCaught: a VLM that answers "first" 40 % of the time whatever it sees
// agrees with itself across orders on ≈ 60 % of pairs; dropping the disagreements keeps
// the labels right, while asking in one order only lets the bias through.
func TestPositionBiasCaught(t *testing.T) {
	biased := &vlmtest.PositionBiased{P: 0.4, Inner: &vlmtest.Truthful{}, Seed: 1}
	s := newSetup(t, vlmtest.Config{Policy: biased})
	s.copts = label.ConsistentOptions{OnDisagree: label.DropOnDisagree}
	st, _, _, err := s.run(t, 400, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := *st.OrderConsistencyRate; c < 0.5 || c > 0.7 {
		t.Errorf("order consistency %.3f, want ≈ 0.6", c)
	}
	oneOrder := newSetup(t, vlmtest.Config{Policy: biased})
	oneOrder.copts = label.ConsistentOptions{Orders: 1}
	st1, _, _, err := oneOrder.run(t, 400, "")
	if err != nil {
		t.Fatal(err)
	}
	if *st.VLMAcc < *st1.VLMAcc+0.1 {
		t.Errorf("acc with the order check %.3f, without %.3f: the check should remove the bias", *st.VLMAcc, *st1.VLMAcc)
	}
	t.Logf("biased VLM: consistency %.3f, acc %.3f (both orders, drop) vs %.3f (one order)", *st.OrderConsistencyRate, *st.VLMAcc, *st1.VLMAcc)
}

// TestRetryPrompt: unreadable replies get one retry prompt; what stays unreadable is a
// parse failure, counted, and the label abstains.
func TestRetryPrompt(t *testing.T) {
	s := newSetup(t, vlmtest.Config{Policy: &vlmtest.Garbled{P: 0.3, Inner: &vlmtest.Truthful{}, Seed: 2}})
	st, _, _, err := s.run(t, 300, "")
	if err != nil {
		t.Fatal(err)
	}
	retried := float64(st.Retried) / float64(st.Answers)
	if retried < 0.22 || retried > 0.38 || *st.ParseFailureRate < 0.04 || *st.ParseFailureRate > 0.15 {
		t.Errorf("retried %.3f (want ≈ 0.3), parse failures %.3f (want ≈ 0.09)", retried, *st.ParseFailureRate)
	}
	if st.Abstains == 0 {
		t.Error("no abstentions despite parse failures")
	}
}

// TestCacheAcrossRuns: the same questions in a new run, with the cache directory of the
// first, cost nothing, and give the same labels.
func TestCacheAcrossRuns(t *testing.T) {
	s := newSetup(t, vlmtest.Config{Policy: &vlmtest.PositionBiased{P: 0.3, Inner: &vlmtest.Truthful{}}})
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		cache, err := vlm.OpenDirCache(filepath.Join(dir, "cache"))
		if err != nil {
			t.Fatal(err)
		}
		s.jcfg.Cache = cache
		_, recs, sum, err := s.run(t, 100, filepath.Join(dir, "run", string(rune('a'+i))+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (sum.Usage.Requests != 200 || sum.Usage.Cached != 0) || i == 1 && (sum.Usage.Requests != 0 || sum.Usage.Cached != 200) {
			t.Errorf("run %d: usage %+v", i, sum.Usage)
		}
		if i == 1 && (!recs[0].Orders[0].Answers[0].Cached || recs[0].Usage.CostUSD != 0) {
			t.Errorf("second run's record not marked cached: %+v", recs[0])
		}
	}
	if c := s.srv.Stats().Completions; c != 200 {
		t.Errorf("server answered %d completions, want 200", c)
	}
}

// TestFaults: 429s, 5xxs, garbage, empty choices and dropped connections on 30 % of
// requests cost retries, not labels.
func TestFaults(t *testing.T) {
	s := newSetup(t, vlmtest.Config{FaultRate: 0.3, RetryAfter: "0.01", Seed: 3})
	// With the default 6 retries, one of the 300 requests failing all 7 attempts has a
	// chance of 300·0.3⁷ ≈ 7 % (the faults follow the requests' order, which concurrency
	// varies); 15 retries make it 300·0.3¹⁶ ≈ 1e-6.
	s.cfg.Retries = 15
	st, _, _, err := s.run(t, 150, "")
	if err != nil {
		t.Fatal(err)
	}
	clean := newSetup(t, vlmtest.Config{})
	want, _, _, _ := clean.run(t, 150, "")
	if st.First != want.First || st.Second != want.Second || st.Ties != want.Ties {
		t.Errorf("labels with faults %+v differ from without %+v", st, want)
	}
	if f := s.srv.Stats().Faults; f < 50 {
		t.Errorf("only %d faults injected", f)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	s := newSetup(t, vlmtest.Config{})
	s.srv.Inject(vlmtest.Fault{Kind: vlmtest.RateLimited, RetryAfter: "1"})
	c, _ := vlm.NewClient(s.cfg, nil)
	start := time.Now()
	if _, err := c.Complete(context.Background(), &vlm.Request{Messages: []vlm.Message{{Role: "user", Parts: []vlm.Part{vlm.Text("hi")}}}}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %v, before Retry-After: 1", el)
	}
	if st := c.Stats(); st.RateLimited != 1 || st.Retries != 1 {
		t.Errorf("stats %+v", st)
	}
	// A hang is cut by the attempt timeout and retried.
	s.srv.Inject(vlmtest.Fault{Kind: vlmtest.Hang})
	s.cfg.Timeout = 100 * time.Millisecond
	c, _ = vlm.NewClient(s.cfg, nil)
	if _, err := c.Complete(context.Background(), &vlm.Request{Messages: []vlm.Message{{Role: "user", Parts: []vlm.Part{vlm.Text("hi")}}}}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Timeouts != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRequestErrors(t *testing.T) {
	s := newSetup(t, vlmtest.Config{ImageW: 32, ImageH: 32, APIKey: "sk-right"})
	s.cfg.APIKey = "sk-wrong"
	_, _, _, err := s.run(t, 5, "")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 (invalid_api_key)") {
		t.Errorf("wrong key: %v", err)
	}
	s.cfg.APIKey = "sk-right"
	_, _, _, err = s.run(t, 5, "")
	if err == nil || !strings.Contains(err.Error(), "image is 48x48, this server expects 32x32") {
		t.Errorf("wrong image size: %v", err)
	}
	s.cfg.Model = "other"
	_, _, _, err = s.run(t, 5, "")
	if err == nil || !strings.Contains(err.Error(), "HTTP 404 (model_not_found)") {
		t.Errorf("wrong model: %v", err)
	}
}

func TestConformanceFake(t *testing.T) {
	srv := vlmtest.NewServer(vlmtest.Config{APIKey: "sk-x"})
	defer srv.Close()
	vlmtest.TestEndpoint(t, vlm.Config{BaseURL: srv.BaseURL(), APIKey: "sk-x", Model: srv.Model()})
}

// TestConformanceReal runs the conformance suite against a real endpoint when asked:
// ROBODISTILL_VLM_CONFORMANCE=1 with OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL.
func TestConformanceReal(t *testing.T) {
	if os.Getenv("ROBODISTILL_VLM_CONFORMANCE") == "" {
		t.Skip("set ROBODISTILL_VLM_CONFORMANCE=1 and OPENAI_* to run against a real endpoint")
	}
	vlmtest.TestEndpoint(t, vlm.ConfigFromEnv(os.Getenv))
}

// TestPromptsGolden keeps the prompt texts in testdata/prompts: a change to a text
// fails here until the golden files are rewritten (-update), as a reminder to bump
// vlm.PromptVersion.
func TestPromptsGolden(t *testing.T) {
	for _, mode := range []vlm.Mode{vlm.OneStage, vlm.TwoStage} {
		p := vlm.Prompts(mode)
		var b strings.Builder
		b.WriteString("version: " + p.ID() + "\ndigest: " + p.Digest() + "\n\n[system]\n" + p.System + "\n\n[user]\n" +
			strings.ReplaceAll(p.Intro, "{goal}", "<goal text>") + "\n" + p.ImageLabels[0] + " <image>\n" + p.ImageLabels[1] + " <image>\n")
		if mode == vlm.TwoStage {
			b.WriteString(p.Analyse + "\n\n[assistant]\n<analysis>\n\n[user]\n" + p.Answer + "\n")
		} else {
			b.WriteString(p.Question + "\n")
		}
		b.WriteString("\n[assistant]\n<unreadable reply>\n\n[user] (once, only when the reply cannot be read)\n" + p.Retry + "\n")
		path := filepath.Join("testdata", "prompts", string(mode)+".golden")
		if *update {
			os.WriteFile(path, []byte(b.String()), 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s changed: bump vlm.PromptVersion and rerun with -update\n%s", path, b.String())
		}
	}
}
