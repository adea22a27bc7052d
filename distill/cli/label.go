package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"robodistill/distill/label"
	"robodistill/distill/label/episodes"
	"robodistill/distill/label/labelbench"
	"robodistill/distill/label/teacher"
	"robodistill/distill/label/vlm"
)

// labelFlags are the flags of `robodistill label`.
type labelFlags struct {
	episodes, out, spec string
	pairs, workers      int
	seed                uint64
	within              float64
	segment             int
	sync                time.Duration

	// judges (vlm, biased:p)
	orders, samples int
	onDisagree      string

	// vlm
	baseURL, apiKey, model, mode, detail, cache, maxTokensField string
	imageSize, maxTokens, analysisTokens, concurrency, retries  int
	temperature, rps, pricePrompt, priceCompletion              float64
	timeout                                                     time.Duration
	prefix                                                      string // of the labeller flags' names
}

func (a *app) labelCmd() *cobra.Command {
	var lf labelFlags
	c := &cobra.Command{
		Use:   "label",
		Short: "Label pairs of recorded frames with a VLM or a scripted teacher (docs/labels.md)",
		Long: `Sample pairs of frames from a recorded-episode collection and ask a labeller which frame of
each pair shows more progress toward the task's goal; append each label to --out as soon as it
is answered. A run that is interrupted (or killed) continues where it stopped when run again
with the same arguments: --pairs is the number of labels of this labeller the file should hold.

Labellers (--labeler): oracle (the default), mistake:ε, noisy:β, myopic:γ, skip:thr, equal:thr,
biased:p, combinations joined by + (e.g. myopic:0.9+mistake:0.1), and vlm. The VLM's endpoint
comes from --base-url/--api-key/--model or OPENAI_BASE_URL/OPENAI_API_KEY/OPENAI_MODEL; its
answers are cached in --cache, so no question is paid for twice.`,
		Example: `  robodistill label --episodes out/drawer --pairs 2000 --labeler mistake:0.1 --out out/drawer/labels.jsonl --seed 0 --json
  OPENAI_BASE_URL=http://localhost:8000/v1 robodistill label --episodes out/drawer --pairs 500 --labeler vlm --model Qwen/Qwen2.5-VL-7B-Instruct --out out/drawer/vlm.jsonl
  robodistill label stats out/drawer/vlm.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runLabel(cmd, &lf)
		},
	}
	f := c.Flags()
	f.StringVar(&lf.episodes, "episodes", "", "recorded-episode collection folder (robodistill collect --out)")
	f.StringVar(&lf.out, "out", "", "label file to append to (JSON lines)")
	f.IntVar(&lf.pairs, "pairs", 1000, "labels of this labeller the file should hold at the end")
	f.Uint64Var(&lf.seed, "seed", 0, "seed of the pair sampler and of scripted teachers")
	f.Float64Var(&lf.within, "within", 0.5, "share of pairs drawn within one episode (the rest across episodes of the same task)")
	f.IntVar(&lf.segment, "segment", 1, "frames per side (segments for scripted teachers; a VLM sees the last frame)")
	f.IntVar(&lf.workers, "workers", 0, "pairs answered at once (default: --concurrency for vlm, one per core otherwise)")
	f.DurationVar(&lf.sync, "sync", time.Second, "fsync the label file at most this often (0: after every label)")
	lf.addLabelerFlags(f, "")
	_ = c.MarkFlagRequired("episodes")
	_ = c.MarkFlagRequired("out")
	c.AddCommand(a.labelStatsCmd())
	return c
}

// addLabelerFlags registers the flags that choose and configure the labeller, each name
// with prefix ("online-" for the online reward of policy train).
func (lf *labelFlags) addLabelerFlags(f *pflag.FlagSet, prefix string) {
	env := vlm.ConfigFromEnv(os.Getenv)
	lf.prefix = prefix
	f.StringVar(&lf.spec, prefix+"labeler", "oracle", "labeller spec: oracle, mistake:ε, noisy:β, myopic:γ, skip:thr, equal:thr, biased:p (join with +), or vlm")
	f.IntVar(&lf.orders, prefix+"orders", 2, "vlm, biased: ask each pair in both orders (2) or as drawn (1)")
	f.IntVar(&lf.samples, prefix+"samples", 1, "vlm, biased: answers per order, voted on")
	f.StringVar(&lf.onDisagree, prefix+"on-disagree", "tie", "vlm, biased: what a disagreement between the orders becomes: tie or drop")
	f.StringVar(&lf.baseURL, prefix+"base-url", env.BaseURL, "vlm: API root of an OpenAI-compatible server (env OPENAI_BASE_URL)")
	f.StringVar(&lf.apiKey, prefix+"api-key", "", "vlm: API key (default env OPENAI_API_KEY)")
	f.StringVar(&lf.model, prefix+"model", env.Model, "vlm: model name (env OPENAI_MODEL)")
	f.StringVar(&lf.mode, prefix+"prompt", string(vlm.TwoStage), "vlm: two-stage (analyse, then answer) or one-stage")
	f.IntVar(&lf.imageSize, prefix+"image-size", 224, "vlm: longer side of the images sent, in pixels")
	f.StringVar(&lf.detail, prefix+"detail", "", "vlm: OpenAI image detail (low, high, auto); empty: not sent")
	f.Float64Var(&lf.temperature, prefix+"temperature", 0, "vlm: sampling temperature")
	f.IntVar(&lf.maxTokens, prefix+"max-tokens", 256, "vlm: token budget of an answer")
	f.IntVar(&lf.analysisTokens, prefix+"analysis-tokens", 1024, "vlm: token budget of a two-stage analysis")
	f.StringVar(&lf.maxTokensField, prefix+"max-tokens-field", "max_tokens", "vlm: max_tokens or max_completion_tokens (OpenAI reasoning models)")
	f.IntVar(&lf.concurrency, prefix+"concurrency", 4, "vlm: requests in flight")
	f.Float64Var(&lf.rps, prefix+"rps", 0, "vlm: requests started per second (0: no limit)")
	f.DurationVar(&lf.timeout, prefix+"timeout", 2*time.Minute, "vlm: timeout of one attempt")
	f.IntVar(&lf.retries, prefix+"retries", 6, "vlm: retries of a request (429, 5xx, network errors, timeouts)")
	f.StringVar(&lf.cache, prefix+"cache", defaultCacheDir(), "vlm: response cache folder, shared across runs ('none': in memory only)")
	f.Float64Var(&lf.pricePrompt, prefix+"price-prompt", 0, "vlm: USD per million prompt tokens, for the cost estimate")
	f.Float64Var(&lf.priceCompletion, prefix+"price-completion", 0, "vlm: USD per million completion tokens")
}

func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ".robodistill-vlm-cache"
	}
	return filepath.Join(d, "robodistill", "vlm")
}

// labeler builds the labeller of lf.spec over src.
func (a *app) labeler(lf *labelFlags, src label.Source) (label.Labeler, int, error) {
	spec, err := label.ParseSpec(lf.spec)
	if err != nil {
		return nil, 0, fmt.Errorf("--%slabeler: %w", lf.prefix, err)
	}
	copts := label.ConsistentOptions{Orders: lf.orders, Samples: lf.samples, OnDisagree: label.Disagree(lf.onDisagree)}
	if !spec.VLM {
		l, err := teacher.Labeler(spec, lf.seed, copts)
		return l, 0, err
	}
	key := lf.apiKey
	if key == "" {
		key = os.Getenv("OPENAI_API_KEY")
	}
	client, err := vlm.NewClient(vlm.Config{
		BaseURL: lf.baseURL, APIKey: key, Model: lf.model, Timeout: lf.timeout, Retries: retriesFlag(lf.retries),
		Concurrency: lf.concurrency, RPS: lf.rps, MaxTokensField: lf.maxTokensField,
		PricePrompt: lf.pricePrompt, PriceCompletion: lf.priceCompletion,
	}, a.log)
	if err != nil {
		return nil, 0, err
	}
	mode, err := vlm.ParseMode(lf.mode)
	if err != nil {
		return nil, 0, fmt.Errorf("--%sprompt: %w", lf.prefix, err)
	}
	var cache vlm.Cache = vlm.NewMemCache()
	if lf.cache != "none" && lf.cache != "" {
		if cache, err = vlm.OpenDirCache(lf.cache); err != nil {
			return nil, 0, err
		}
	}
	j, err := vlm.NewJudge(vlm.JudgeConfig{Client: client, Source: src, Cache: cache, Mode: mode, ImageSize: lf.imageSize,
		Detail: lf.detail, Temperature: lf.temperature, MaxTokens: lf.maxTokens, AnalysisMaxTokens: lf.analysisTokens, Log: a.log})
	if err != nil {
		return nil, 0, err
	}
	l, err := label.NewConsistent(j, copts)
	return l, client.Config().Concurrency, err
}

// retriesFlag maps --retries 0 (none) to the client's -1.
func retriesFlag(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func (a *app) runLabel(cmd *cobra.Command, lf *labelFlags) error {
	if lf.pairs < 1 {
		return fmt.Errorf("--pairs: %d, want ≥ 1", lf.pairs)
	}
	src, err := episodes.Open(lf.episodes, a.log)
	if err != nil {
		return err
	}
	defer src.Close()
	l, concurrency, err := a.labeler(lf, src)
	if err != nil {
		return err
	}
	sampler, err := label.NewUniform(src, label.UniformOptions{Within: lf.within, Segment: lf.segment, Seed: lf.seed})
	if err != nil {
		return err
	}
	store, err := label.OpenStore(lf.out, label.StoreOptions{SyncEvery: lf.sync, Log: a.log})
	if err != nil {
		return err
	}
	workers := lf.workers
	if workers == 0 && concurrency > 0 {
		workers = concurrency
	}
	log := a.log.With(zap.String("labeler", l.Info().Name()), zap.String("out", lf.out))
	last := time.Time{}
	r := &label.Runner{Source: src, Sampler: sampler, Labeler: l, Store: store, Pairs: lf.pairs, Workers: workers, Log: log,
		OnLabel: func(rec label.Record, s label.Summary) {
			if !a.json && (time.Since(last) > 200*time.Millisecond || s.Existing+s.Labelled == s.Target) {
				last = time.Now()
				fmt.Fprintf(a.stderr, "\rlabels %d/%d  ties %d  abstains %d  inconsistent %d", s.Existing+s.Labelled, s.Target, s.Ties, s.Abstains, s.Inconsistent)
			}
		}}
	s, err := r.Run(cmd.Context())
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if !a.json && s.Labelled > 0 {
		fmt.Fprintln(a.stderr)
	}
	a.human("%s  %d labels in %s (%d existing, %d new)  first %d  second %d  ties %d  abstains %d  inconsistent %d  %.1f labels/s\n",
		s.Labeler, s.Existing+s.Labelled, s.Out, s.Existing, s.Labelled, s.First, s.Second, s.Ties, s.Abstains, s.Inconsistent, s.LabelsPerSec)
	if s.Usage.Requests+s.Usage.Cached > 0 {
		a.human("  requests %d  cached %d  tokens %d prompt + %d completion  est. cost $%.4f\n",
			s.Usage.Requests, s.Usage.Cached, s.Usage.PromptTokens, s.Usage.CompletionTokens, s.Usage.CostUSD)
	}
	if jerr := a.summary(s); jerr != nil {
		return jerr
	}
	if errors.Is(err, label.ErrExhausted) {
		return fmt.Errorf("%w: the collection has too few distinct frame pairs for --pairs %d", err, lf.pairs)
	}
	return err
}

// LabelStatsReport is the JSON of `label stats`.
type LabelStatsReport struct {
	File     string        `json:"file"`
	Labelers []label.Stats `json:"labelers"`
}

func (a *app) labelStatsCmd() *cobra.Command {
	var edges []float64
	var file string
	c := &cobra.Command{
		Use:   "stats --labels LABELS",
		Short: "Label quality per labeller: tie, abstain, parse-failure and order-consistency rates, agreement with ground truth by progress gap",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The file comes from --labels (the documented form) or, for convenience, as
			// the only argument.
			switch {
			case len(args) == 1 && file != "" && args[0] != file:
				return fmt.Errorf("label stats: two label files given (--labels %s and %s)", file, args[0])
			case len(args) == 1:
				file = args[0]
			case file == "":
				return fmt.Errorf("label stats: --labels LABELS is required")
			}
			args = []string{file}
			recs, err := label.ReadFile(args[0])
			if err != nil {
				return err
			}
			rep := LabelStatsReport{File: args[0], Labelers: label.StatsByLabeler(recs, label.StatsOptions{GapEdges: edges})}
			pct := func(p *float64) string {
				if p == nil {
					return "-"
				}
				return fmt.Sprintf("%.1f%%", 100**p)
			}
			for _, s := range rep.Labelers {
				a.human("%s (%s): %d labels  ties %.1f%%  abstains %.1f%%  parse failures %s  order consistency %s  vlm_acc %s  coverage %s\n",
					s.Labeler, s.Kind, s.Count, 100*s.TieRate, 100*s.AbstainRate, pct(s.ParseFailureRate), pct(s.OrderConsistencyRate), pct(s.VLMAcc), pct(s.Coverage))
				for _, b := range s.ByGap {
					hi := "∞"
					if b.Hi != nil {
						hi = fmt.Sprint(*b.Hi)
					}
					a.human("  gap [%v, %s)  %6d labels  %6d decisive  acc %s\n", b.Lo, hi, b.Count, b.Decisive, pct(b.Acc))
				}
				if s.Usage.Requests+s.Usage.Cached > 0 {
					a.human("  requests %d  cached %d  tokens %d + %d  est. cost $%.4f\n", s.Usage.Requests, s.Usage.Cached, s.Usage.PromptTokens, s.Usage.CompletionTokens, s.Usage.CostUSD)
				}
			}
			if len(rep.Labelers) == 0 {
				a.human("%s: no labels\n", args[0])
			}
			return a.summary(rep)
		},
	}
	c.Flags().Float64SliceVar(&edges, "gap-edges", label.DefaultGapEdges, "lower edges of the progress-gap bins, in reward units")
	c.Flags().StringVar(&file, "labels", "", "label file written by 'robodistill label'")
	return c
}

// benchLabelCmd is `robodistill bench label`.
func (a *app) benchLabelCmd() *cobra.Command {
	var o labelbench.Options
	c := &cobra.Command{
		Use:   "label",
		Short: "Scripted labels/s and the VLM client's cost per request against a local instant server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := labelbench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			a.human("label bench: GOMAXPROCS %d\n", rep.GOMAXPROCS)
			a.human("  scripted (oracle, sampler + store)  %9.0f labels/s over %d labels   teacher alone %.0f ns/label\n",
				rep.ScriptedLabelsPerSec, rep.ScriptedLabels, rep.TeacherNsPerLabel)
			a.human("  vlm client, %d requests at concurrency %d, %dpx images (%d-byte bodies)\n", rep.VLMRequests, rep.VLMConcurrency, rep.VLMImageSize, rep.VLMBodyBytes)
			a.human("    %.0f µs/request wall (%.0f requests/s)   %.0f µs CPU/request (client + in-process server)   CPU use %.0f%% of %d cores\n",
				rep.WallUsPerRequest, rep.RequestsPerSec, rep.CPUUsPerRequest, 100*rep.CPUUtilization, rep.GOMAXPROCS)
			a.human("    image encoding (once per frame): %.0f µs\n", rep.EncodeUsPerImage)
			return a.summary(rep)
		},
	}
	f := c.Flags()
	f.IntVar(&o.Labels, "labels", 100000, "scripted labels")
	f.IntVar(&o.Requests, "requests", 4000, "VLM requests")
	f.IntVar(&o.Concurrency, "concurrency", 8, "VLM client concurrency")
	f.IntVar(&o.ImageSize, "image-size", 224, "VLM image side in pixels")
	return c
}
