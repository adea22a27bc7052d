// Package onnxiotest holds the networks and manifests the model tests share: a reward CNN,
// a policy MLP, a small net with LayerNorm, a padded convolution and a nested
// Sequential, and a reward network with a spatial soft-argmax, so that the exporter's tests (control/onnxio) and the runtime's
// (control/runtime) check the same models.
package onnxiotest

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

// RewardCNN is the reward network on 3×64×64 frames.
func RewardCNN(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 1))
	return nn.NewSequential(
		nn.NewConv2d(3, 16, 5, 2, 0, rng), nn.NewReLU(),
		nn.NewConv2d(16, 32, 3, 2, 0, rng), nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(32*14*14, 64, rng), nn.NewReLU(),
		nn.NewLinear(64, 1, rng),
	)
}

// PolicyMLP is the policy: MetaWorld's 39-value state to 4 actions in (−1, 1).
func PolicyMLP(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 2))
	return nn.NewSequential(
		nn.NewLinear(39, 256, rng), nn.NewReLU(),
		nn.NewLinear(256, 256, rng), nn.NewReLU(),
		nn.NewLinear(256, 4, rng), nn.NewTanh(),
	)
}

// NormPolicy exercises what the two above do not: LayerNorm (with non-trivial scale and
// shift), a padded convolution and a nested Sequential, on a small gray image.
func NormPolicy(seed uint64) *nn.Sequential {
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

// SpatialReward is distill/reward's "spatial" network on 3×64×64 frames: two
// convolutions (5×5/2 and 3×3/1, 32 channels), SpatialSoftmax to 64 coordinates, a hidden
// layer of 64 and one output. The second convolution's weights are scaled up so that the
// softmax is far from uniform on the test inputs.
func SpatialReward(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 4))
	c2 := nn.NewConv2d(32, 32, 3, 1, 0, rng)
	for i := range c2.Weight.Value {
		c2.Weight.Value[i] *= 32
	}
	return nn.NewSequential(
		nn.NewConv2d(3, 32, 5, 2, 0, rng), nn.NewReLU(),
		c2, nn.NewReLU(),
		nn.NewSpatialSoftmax(),
		nn.NewLinear(64, 64, rng), nn.NewReLU(),
		nn.NewLinear(64, 1, rng),
	)
}

// Hash is a fake sha256 (64 copies of c) for manifests.
func Hash(c byte) string { return strings.Repeat(string(c), 64) }

// Created is the manifests' creation time.
var Created = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// RewardManifest describes RewardCNN.
func RewardManifest() onnxio.Manifest {
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
			DataSHA256:   []string{Hash('a')},
			LabelsSHA256: []string{Hash('b'), Hash('c')},
			Labeler:      "scripted:bpref-oracle",
		},
		CodeVersion: "test",
		Created:     Created,
	}
}

// PolicyManifest describes PolicyMLP.
func PolicyManifest() onnxio.Manifest {
	return onnxio.Manifest{
		Version:     onnxio.ManifestVersion,
		Kind:        onnxio.KindPolicy,
		Task:        "reach-v2",
		Input:       onnxio.Input{Name: "obs", Shape: []int{39}, Observation: "metaworld-v2-39"},
		Output:      onnxio.Output{Name: "action", Shape: []int{4}, Meaning: "end-effector delta xyz and gripper effort, each in [-1, 1]"},
		Training:    onnxio.Training{Labeler: "reward:" + Hash('d')},
		CodeVersion: "test",
		Created:     Created,
	}
}

// NormManifest describes NormPolicy.
func NormManifest() onnxio.Manifest {
	cfg := vision.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Channels = 8, 8, vision.Gray
	cfg.Mean, cfg.Std = []float64{0.5}, []float64{0.25}
	m := PolicyManifest()
	m.Input = onnxio.Input{Name: "image", Shape: []int{1, 8, 8}, Vision: &cfg}
	m.Output = onnxio.Output{Name: "action", Shape: []int{3}, Meaning: "test actions"}
	return m
}

// Model is a test network and its manifest.
type Model struct {
	Name     string
	Net      func(seed uint64) *nn.Sequential // weights drawn from seed
	Manifest func() onnxio.Manifest
	// OnnxGoError, when set, is part of the error onnx-go's decoder gives with its
	// Gorgonia backend: a model it cannot run.
	OnnxGoError string
}

// Models are the test networks.
var Models = []Model{
	{"reward_cnn", RewardCNN, RewardManifest, ""},
	{"policy_mlp", PolicyMLP, PolicyManifest, ""},
	{"norm_policy", NormPolicy, NormManifest, ""},
	// Gorgonia's MatMul takes matrices only; the spatial softmax's is [N, C, H·W]·[H·W, 2].
	{"spatial_reward", SpatialReward, RewardManifest, "onnx: operator Matmul not implemented (dimension too high)"},
}

// Save exports m with the weights of seed 7 into dir as NAME.onnx and its sidecar.
func Save(t testing.TB, dir string, m Model) string {
	t.Helper()
	p := filepath.Join(dir, m.Name+".onnx")
	if _, err := onnxio.Save(p, m.Net(7), m.Manifest()); err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return p
}

// MaxAbsDiff is the largest |a[i] − b[i]|; +Inf when the lengths differ or a value is NaN.
func MaxAbsDiff(a, b []float32) float64 {
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
