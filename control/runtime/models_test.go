package runtime_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/vision"
)

// The three networks of control/onnxio's tests (models_test.go there), rebuilt here:
// test files of another package cannot be imported.

// rewardCNN is the reward network on 3×64×64 frames.
func rewardCNN(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 1))
	return nn.NewSequential(
		nn.NewConv2d(3, 16, 5, 2, 0, rng), nn.NewReLU(),
		nn.NewConv2d(16, 32, 3, 2, 0, rng), nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(32*14*14, 64, rng), nn.NewReLU(),
		nn.NewLinear(64, 1, rng),
	)
}

// policyMLP is MetaWorld's 39-value state to 4 actions in (−1, 1).
func policyMLP(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 2))
	return nn.NewSequential(
		nn.NewLinear(39, 256, rng), nn.NewReLU(),
		nn.NewLinear(256, 256, rng), nn.NewReLU(),
		nn.NewLinear(256, 4, rng), nn.NewTanh(),
	)
}

// normPolicy has LayerNorm (non-trivial scale and shift), a padded convolution and a
// nested Sequential, on a small gray image.
func normPolicy(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 3))
	ln := nn.NewLayerNorm(24)
	for i := range ln.Weight.Value {
		ln.Weight.Value[i] = 0.5 + rng.Float32()
		ln.Bias.Value[i] = rng.Float32() - 0.5
	}
	return nn.NewSequential(
		nn.NewConv2d(1, 4, 3, 1, 1, rng), nn.NewTanh(),
		nn.NewFlatten(),
		nn.NewSequential(nn.NewLinear(4*8*8, 24, rng), ln, nn.NewReLU()),
		nn.NewLinear(24, 3, rng), nn.NewTanh(),
	)
}

func hash(c byte) string { return strings.Repeat(string(c), 64) }

var created = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func rewardManifest() onnxio.Manifest {
	cfg := vision.DefaultConfig()
	return onnxio.Manifest{
		Version: onnxio.ManifestVersion,
		Kind:    onnxio.KindReward,
		Task:    "reach-v2",
		Input:   onnxio.Input{Name: "image", Shape: []int{3, 64, 64}, Vision: &cfg},
		Output:  onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "Bradley-Terry reward logit of one frame"},
		Reward: &onnxio.RewardNorm{Mean: 0.25, Std: 1.5,
			Thresholds: []onnxio.Threshold{{Name: "success", Value: 2}}},
		Training: onnxio.Training{
			DataSHA256:   []string{hash('a')},
			LabelsSHA256: []string{hash('b'), hash('c')},
			Labeler:      "scripted:bpref-oracle",
		},
		CodeVersion: "test",
		Created:     created,
	}
}

func policyManifest() onnxio.Manifest {
	return onnxio.Manifest{
		Version:     onnxio.ManifestVersion,
		Kind:        onnxio.KindPolicy,
		Task:        "reach-v2",
		Input:       onnxio.Input{Name: "obs", Shape: []int{39}, Observation: "metaworld-v2-39"},
		Output:      onnxio.Output{Name: "action", Shape: []int{4}, Meaning: "end-effector delta xyz and gripper effort, each in [-1, 1]"},
		Training:    onnxio.Training{Labeler: "reward:" + hash('d')},
		CodeVersion: "test",
		Created:     created,
	}
}

func normManifest() onnxio.Manifest {
	cfg := vision.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Channels = 8, 8, vision.Gray
	cfg.Mean, cfg.Std = []float64{0.5}, []float64{0.25}
	m := policyManifest()
	m.Input = onnxio.Input{Name: "image", Shape: []int{1, 8, 8}, Vision: &cfg}
	m.Output = onnxio.Output{Name: "action", Shape: []int{3}, Meaning: "test actions"}
	return m
}

type testModel struct {
	name     string
	net      func(seed uint64) *nn.Sequential
	manifest func() onnxio.Manifest
}

var testModels = []testModel{
	{"reward_cnn", rewardCNN, rewardManifest},
	{"policy_mlp", policyMLP, policyManifest},
	{"norm_policy", normPolicy, normManifest},
}

// save exports tm (weights from seed 7) into dir.
func save(t testing.TB, dir string, tm testModel) string {
	t.Helper()
	p := filepath.Join(dir, tm.name+".onnx")
	if _, err := onnxio.Save(p, tm.net(7), tm.manifest()); err != nil {
		t.Fatalf("%s: %v", tm.name, err)
	}
	return p
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		e := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(e) {
			return math.Inf(1)
		}
		d = max(d, e)
	}
	return d
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// randomInput is n values uniform in [−1, 1).
func randomInput(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 99))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	return x
}
