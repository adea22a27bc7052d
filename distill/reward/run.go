package reward

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/distill/label"
	"robodistill/distill/label/episodes"
	"robodistill/vision"
)

// Options is a `robodistill reward train` run.
type Options struct {
	Labels   string // label file (JSON lines)
	Episodes string // recorded-episode collection the labels were drawn from
	Out      string // member 0's model; the others are onnxio.MemberPath(Out, m)
	// Report is the folder for report.json, rewards.csv, history.csv and milestones.png
	// [Out without its extension + "-report"].
	Report string
	// Labeler keeps only the labels of this labeller (its Name, as `label stats` prints
	// it); required when the file holds several.
	Labeler string
	Data    DataOptions
	Train   Config
	// FloorQuantile, in (0, 1), adds Motif's threshold: published rewards below this
	// quantile of the training frames' become 0. 0: none.
	FloorQuantile float64
	// Count, when set, is written into the manifests for the policy trainer.
	Count       *onnxio.CountTerm
	CodeVersion string
	Log         *zap.Logger
	Progress    Progress
}

// ReportDir is the report folder of a run.
func (o *Options) ReportDir() string {
	if o.Report != "" {
		return o.Report
	}
	return strings.TrimSuffix(o.Out, filepath.Ext(o.Out)) + "-report"
}

// CheckpointDir is where an interrupted run's members are saved: Out + ".train".
func (o *Options) CheckpointDir() string { return o.Out + ".train" }

// Summary is the result of a run: report.json, and the fields of the one-line --json
// summary.
type Summary struct {
	Models  []string `json:"models"`
	Report  string   `json:"report"`
	Task    string   `json:"task"`
	Labeler string   `json:"labeler"`
	Labels  int      `json:"labels"`
	Frames  int      `json:"frames"`
	Pairs   struct {
		Train int `json:"train"`
		Val   int `json:"val"`
	} `json:"pairs"`
	Episodes struct {
		Train int `json:"train"`
		Val   int `json:"val"`
	} `json:"episodes"`
	Dropped Dropped `json:"dropped"`
	Metrics
	Members []MemberResult      `json:"members"`
	Norms   []onnxio.RewardNorm `json:"norms"`
	FLOPs   int64               `json:"flops_per_inference"`
	Params  int                 `json:"params"`
	Config  Config              `json:"config"`
	Vision  json.RawMessage     `json:"vision"`
	Seconds float64             `json:"seconds"`
	Backend nn.Backend          `json:"blas"`
}

// Run trains a reward ensemble on a label file and a collection, exports every member
// with its manifest, and writes the report.
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	if o.Out == "" || filepath.Ext(o.Out) != ".onnx" {
		return nil, fmt.Errorf("--out must name a .onnx file, got %q", o.Out)
	}
	recs, err := label.ReadFile(o.Labels)
	if err != nil {
		return nil, err
	}
	recs, labeler, err := selectLabeler(recs, o.Labeler)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Labels, err)
	}
	src, err := episodes.Open(o.Episodes, log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	d, err := LoadDataset(ctx, recs, src, o.Data)
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", o.Labels, o.Episodes, err)
	}
	log.Info("dataset", zap.Int("train_pairs", len(d.Train)), zap.Int("val_pairs", len(d.Val)),
		zap.Int("train_episodes", len(d.TrainEpisodes)), zap.Int("val_episodes", len(d.ValEpisodes)),
		zap.Int("frames", len(d.Frames)), zap.Int("dropped_mixed", d.Dropped.Mixed), zap.Int("dropped_abstain", d.Dropped.Abstain))

	cfg := o.Train
	cfg.defaults()
	tr := Trainer{Config: cfg, Checkpoints: o.CheckpointDir(), Progress: o.Progress}
	members, err := tr.Train(ctx, d)
	if err != nil {
		return nil, err
	}
	nets := make([]*nn.Sequential, len(members))
	for i := range members {
		nets[i] = members[i].Net
	}

	// Normalisation over the training frames, member by member.
	tf := trainFrames(d)
	raw := make([]float32, len(d.Frames))
	vals := make([]float32, len(tf))
	norms := make([]onnxio.RewardNorm, len(nets))
	for m, net := range nets {
		Score(net, d, tf, raw)
		for i, f := range tf {
			vals[i] = raw[f]
		}
		if norms[m], err = Normalize(vals, o.FloorQuantile); err != nil {
			return nil, fmt.Errorf("member %d: %w", m, err)
		}
		norms[m].Count = o.Count
	}
	scores := ScoreAll(nets, norms, d)

	s := &Summary{Report: o.ReportDir(), Labeler: labeler, Labels: len(recs), Frames: len(d.Frames),
		Dropped: d.Dropped, Metrics: Evaluate(d, scores), Members: members, Norms: norms, Config: cfg,
		Backend: nn.CurrentBackend()}
	s.Task = taskOf(d)
	s.Pairs.Train, s.Pairs.Val = len(d.Train), len(d.Val)
	s.Episodes.Train, s.Episodes.Val = len(d.TrainEpisodes), len(d.ValEpisodes)
	s.Vision, _ = d.Vision.JSON()
	in := []int{1, d.Shape[0], d.Shape[1], d.Shape[2]}
	if s.FLOPs, err = nn.FLOPs(nets[0], in); err != nil {
		return nil, err
	}
	s.Params = nn.NumParams(nets[0].Params())

	man, err := o.manifest(d, src, s)
	if err != nil {
		return nil, err
	}
	for m, net := range nets {
		mm := man
		mm.Reward = &norms[m]
		mm.Ensemble = &onnxio.Ensemble{Member: m, Size: len(nets)}
		path := onnxio.MemberPath(o.Out, m)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if _, err := onnxio.Save(path, net, mm); err != nil {
			return nil, fmt.Errorf("member %d: %w", m, err)
		}
		s.Models = append(s.Models, path)
	}
	s.Seconds = time.Since(start).Seconds()
	if err := writeReport(s, d, scores); err != nil {
		return nil, err
	}
	// The models are written: the checkpoints have done their job.
	if err := os.RemoveAll(o.CheckpointDir()); err != nil {
		log.Warn("could not remove the checkpoints", zap.Error(err))
	}
	return s, nil
}

// LoadLabels joins a label file (only the labels of labeler; "" when the file holds one
// labeller) with the collection its pairs come from, every frame prepared by vc as it is (no
// standardisation): an already trained model's training set, e.g. the anchor of an
// online refresh (policy.OnlineConfig.Anchor).
func LoadLabels(ctx context.Context, labels, collection, labeler string, vc vision.Config, workers int, log *zap.Logger) (*Dataset, error) {
	if log == nil {
		log = zap.NewNop()
	}
	recs, err := label.ReadFile(labels)
	if err != nil {
		return nil, err
	}
	if recs, _, err = selectLabeler(recs, labeler); err != nil {
		return nil, fmt.Errorf("%s: %w", labels, err)
	}
	src, err := episodes.Open(collection, log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	d, err := LoadDataset(ctx, recs, src, DataOptions{Vision: vc, Workers: workers})
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", labels, collection, err)
	}
	return d, nil
}

// selectLabeler keeps one labeller's records.
func selectLabeler(recs []label.Record, want string) ([]label.Record, string, error) {
	names := map[string]int{}
	for i := range recs {
		names[recs[i].Labeler.Name()]++
	}
	if want == "" {
		if len(names) > 1 {
			return nil, "", fmt.Errorf("the file holds labels of %d labellers (%s); choose one with --labeler", len(names), strings.Join(sortedKeys(names), ", "))
		}
		for n := range names {
			want = n
		}
	}
	if names[want] == 0 {
		return nil, "", fmt.Errorf("no labels of labeller %q (the file has: %s)", want, strings.Join(sortedKeys(names), ", "))
	}
	out := recs[:0:0]
	for _, r := range recs {
		if r.Labeler.Name() == want {
			out = append(out, r)
		}
	}
	return out, want, nil
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func taskOf(d *Dataset) string {
	tasks := map[string]int{}
	for _, e := range d.TrainEpisodes {
		tasks[d.Episodes[e].Task]++
	}
	return strings.Join(sortedKeys(tasks), "+")
}

// manifest is what every member's manifest shares.
func (o *Options) manifest(d *Dataset, src *episodes.Source, s *Summary) (onnxio.Manifest, error) {
	vc := d.Vision
	m := onnxio.Manifest{
		Version: onnxio.ManifestVersion,
		Kind:    onnxio.KindReward,
		Task:    s.Task,
		Input:   onnxio.Input{Name: "image", Shape: d.Shape[:], Vision: &vc},
		Output: onnxio.Output{Name: "reward", Shape: []int{1},
			Meaning: "raw Bradley-Terry reward of the frame (higher: more progress toward the goal); publish (r - reward.mean) / reward.std"},
		Training:    onnxio.Training{Labeler: s.Labeler},
		CodeVersion: o.CodeVersion,
		Created:     time.Now().UTC().Truncate(time.Second),
	}
	if m.CodeVersion == "" {
		m.CodeVersion = "dev"
	}
	h, err := fileSHA256(o.Labels)
	if err != nil {
		return m, err
	}
	m.Training.LabelsSHA256 = []string{h}
	for _, e := range d.TrainEpisodes {
		h, err := fileSHA256(src.File(e))
		if err != nil {
			return m, err
		}
		m.Training.DataSHA256 = append(m.Training.DataSHA256, h)
	}
	return m, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
