package reward

import (
	"context"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"robodistill/control/episode/episodetest"
	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/onnxio/onnxref"
	"robodistill/distill/label"
	"robodistill/distill/label/episodes"
)

// runSmall trains a two-member ensemble on a small recorded collection through Run.
func runSmall(t *testing.T) (*Summary, Options) {
	t.Helper()
	dir := t.TempDir()
	eps := filepath.Join(dir, "eps")
	episodetest.Collection(t, eps, episodetest.Options{Episodes: 6, Steps: 25, Size: 32, Seed: 1})
	src, err := episodes.Open(eps, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := syntheticLabels(t, src, 300, 4)
	src.Close()
	labels := filepath.Join(dir, "labels.jsonl")
	st, err := label.OpenStore(labels, label.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := st.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.Epochs = 2
	o := Options{Labels: labels, Episodes: eps, Out: filepath.Join(dir, "models", "reward.onnx"),
		Data: DataOptions{Vision: smallVision(), Seed: 1}, Train: cfg, FloorQuantile: 0.25,
		Count: &onnxio.CountTerm{Beta: 0.5, Cell: 0.05}, CodeVersion: "test"}
	s, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

// TestRunExports checks what a run leaves behind: one verified model per member with
// its manifest, the report files, no checkpoints; and that ONNX Runtime and the onnx
// checker accept the trained models and agree with the Go forward pass.
func TestRunExports(t *testing.T) {
	s, o := runSmall(t)
	if len(s.Models) != 2 || s.Models[1] != filepath.Join(filepath.Dir(o.Out), "reward.1.onnx") {
		t.Fatalf("models %v", s.Models)
	}
	if _, err := os.Stat(o.CheckpointDir()); !os.IsNotExist(err) {
		t.Errorf("checkpoints left behind: %v", err)
	}
	for m, p := range s.Models {
		v, err := onnxio.Verify(p)
		if err != nil {
			t.Fatal(err)
		}
		man := v.Manifest
		if man.Kind != onnxio.KindReward || man.Ensemble == nil || man.Ensemble.Member != m || man.Ensemble.Size != 2 {
			t.Errorf("%s: manifest kind %s ensemble %+v", p, man.Kind, man.Ensemble)
		}
		if !man.Input.Vision.Equal(smallVision()) || !slices.Equal(man.Input.Shape, []int{3, 24, 24}) {
			t.Errorf("%s: input %+v", p, man.Input)
		}
		if man.Reward.Mean != s.Norms[m].Mean || man.Reward.Std != s.Norms[m].Std {
			t.Errorf("%s: reward normalisation %+v, report says %+v", p, man.Reward, s.Norms[m])
		}
		if len(man.Reward.Thresholds) != 1 || man.Reward.Count == nil || man.Reward.Count.Beta != 0.5 {
			t.Errorf("%s: thresholds %v count %v", p, man.Reward.Thresholds, man.Reward.Count)
		}
		if len(man.Training.DataSHA256) != s.Episodes.Train || len(man.Training.LabelsSHA256) != 1 || man.Training.Labeler != "oracle" {
			t.Errorf("%s: training %+v", p, man.Training)
		}
	}
	for _, f := range []string{ReportJSON, RewardsCSV, HistoryCSV, MilestonesPNG} {
		if _, err := os.Stat(filepath.Join(s.Report, f)); err != nil {
			t.Error(err)
		}
	}
	f, _ := os.Open(filepath.Join(s.Report, MilestonesPNG))
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 400 {
		t.Errorf("milestones.png: %v", err)
	}
	f.Close()
	var rep map[string]any
	b, _ := os.ReadFile(filepath.Join(s.Report, ReportJSON))
	if err := json.Unmarshal(b, &rep); err != nil || rep["val_accuracy"] == nil || rep["flops_per_inference"] == nil {
		t.Errorf("report.json: %v %v", err, rep["val_accuracy"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := (onnxref.Tools{}).Check(ctx, s.Models...); err != nil {
		t.Fatal(err)
	}
	// Parity on real frames: ONNX Runtime against the trained Go network.
	rng := rand.New(rand.NewPCG(2, 2))
	x := nn.NewTensor(5, 3, 24, 24)
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	for m, p := range s.Models {
		res, err := onnxref.Tools{}.RunORT(ctx, p, []onnxref.Tensor{{Name: "image", Shape: x.Shape, Data: x.Data}})
		if err != nil {
			t.Fatal(err)
		}
		want := s.Members[m].Net.Forward(x)
		d := 0.0
		for i, v := range res.Runs[0][0].Data {
			d = max(d, math.Abs(float64(v)-float64(want.Data[i])))
		}
		t.Logf("member %d: max |ORT − Go| = %.3g", m, d)
		if d > 1e-5 {
			t.Errorf("member %d: ONNX Runtime differs from the Go forward pass by %g", m, d)
		}
	}
}
