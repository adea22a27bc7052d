package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/vision"
)

// The daemon's policy input (daemon/rosio.Builder): MetaWorld's v2 observation. Written
// out here rather than imported so that the harness depends on the daemon's documented
// contract (docs/daemon-rosio.md, docs/daemon.md), not on its packages.
const (
	ObservationLayout = "metaworld-v2-39"
	ObsDim            = 39
	ActDim            = 4
)

// MetaWorldSpeed is the hand speed, in m/s, of an action component of 1: MetaWorld moves
// the mocap 1 cm per 5 substeps of 2.5 ms. A policy at rate R moves 0.8/R m per step.
const MetaWorldSpeed = 0.8

// ModelSpec describes the untrained models ExportModels writes: the shapes of the real
// ones (distill/reward.NewNet's "cnn2" reward ensemble, distill/policy's deterministic
// actor), random weights.
type ModelSpec struct {
	// Vision is the reward models' preprocessing; it must fit the camera's frames.
	// Default vision.DefaultConfig(): the whole frame resized to 64×64 RGB in [0, 1].
	Vision *vision.Config
	// Members of the reward ensemble. Default 3 (distill/reward's default).
	Members int
	// Hidden is the reward network's hidden layer (default 64) and PolicyHidden the
	// policy MLP's two hidden layers (default 256).
	Hidden, PolicyHidden int
	// Rate is the policy's control rate in Hz (default 50); its action scale is
	// MetaWorldSpeed/Rate.
	Rate int
	// Task names the MetaWorld task in the manifests (default "reach"); the daemon picks
	// the object's quaternion layout from the policy's.
	Task string
	// Seed draws the weights (member m of the ensemble uses Seed+m).
	Seed uint64
}

func (s ModelSpec) withDefaults() ModelSpec {
	if s.Vision == nil {
		v := vision.DefaultConfig()
		s.Vision = &v
	}
	if s.Members == 0 {
		s.Members = 3
	}
	if s.Hidden == 0 {
		s.Hidden = 64
	}
	if s.PolicyHidden == 0 {
		s.PolicyHidden = 256
	}
	if s.Rate == 0 {
		s.Rate = 50
	}
	if s.Task == "" {
		s.Task = "reach"
	}
	return s
}

// Models are the paths of a reward ensemble (member 0; the others are
// onnxio.MemberPath's siblings) and a policy, each with its sidecar.
type Models struct {
	Reward, Policy string
}

// untrainedCreated is the manifests' creation time, fixed so that a second export is
// byte-identical.
var untrainedCreated = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// untrainedLabels stands for the label files an untrained reward model has none of (the
// manifest requires a hash).
var untrainedLabels = func() string {
	s := sha256.Sum256([]byte("robodistill daemon bench: untrained, no labels"))
	return hex.EncodeToString(s[:])
}()

// RewardNet is distill/reward.NewNet's "cnn2" network: conv 16 k5 s2, ReLU, conv 32 k3
// s2, ReLU, flatten, linear to hidden, ReLU, linear to 1.
func RewardNet(shape [3]int, hidden int, rng *rand.Rand) (*nn.Sequential, error) {
	head := []nn.Layer{
		nn.NewConv2d(shape[0], 16, 5, 2, 0, rng), nn.NewReLU(),
		nn.NewConv2d(16, 32, 3, 2, 0, rng), nn.NewReLU(),
		nn.NewFlatten(),
	}
	out, err := nn.NewSequential(head...).OutShape([]int{1, shape[0], shape[1], shape[2]})
	if err != nil {
		return nil, fmt.Errorf("frames of %v are too small for the reward network: %w", shape, err)
	}
	return nn.NewSequential(append(head,
		nn.NewLinear(out[1], hidden, rng), nn.NewReLU(),
		nn.NewLinear(hidden, 1, rng))...), nil
}

// PolicyNet is the deterministic policy distill/policy exports: obs → hidden → hidden →
// action, ReLU between, Tanh last.
func PolicyNet(hidden int, rng *rand.Rand) *nn.Sequential {
	return nn.NewSequential(
		nn.NewLinear(ObsDim, hidden, rng), nn.NewReLU(),
		nn.NewLinear(hidden, hidden, rng), nn.NewReLU(),
		nn.NewLinear(hidden, ActDim, rng), nn.NewTanh(),
	)
}

// ExportModels writes an untrained reward ensemble (dir/reward.onnx, reward.1.onnx, …)
// and an untrained policy (dir/policy.onnx), with their sidecars, that the daemon
// accepts.
func ExportModels(dir string, spec ModelSpec) (Models, error) {
	s := spec.withDefaults()
	if err := s.Vision.Validate(); err != nil {
		return Models{}, fmt.Errorf("bench.ExportModels: vision: %w", err)
	}
	if s.Members < 1 || s.Members > 32 {
		return Models{}, fmt.Errorf("bench.ExportModels: members: %d outside 1..32", s.Members)
	}
	if s.Rate < 1 || s.Rate > 1000 {
		return Models{}, fmt.Errorf("bench.ExportModels: rate: %d Hz outside 1..1000", s.Rate)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Models{}, fmt.Errorf("bench.ExportModels: %w", err)
	}
	ms := Models{Reward: filepath.Join(dir, "reward.onnx"), Policy: filepath.Join(dir, "policy.onnx")}
	vc := *s.Vision
	shape := [3]int{vc.Channels.Count(), vc.Height, vc.Width}
	for m := range s.Members {
		net, err := RewardNet(shape, s.Hidden, rand.New(rand.NewPCG(s.Seed+uint64(m), 1)))
		if err != nil {
			return Models{}, fmt.Errorf("bench.ExportModels: %w", err)
		}
		man := onnxio.Manifest{
			Version: onnxio.ManifestVersion, Kind: onnxio.KindReward, Task: s.Task,
			Input:  onnxio.Input{Name: "image", Shape: shape[:], Vision: &vc},
			Output: onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "reward logit of one frame (untrained: random weights, for timing only)"},
			Reward: &onnxio.RewardNorm{Mean: 0, Std: 1},
			Training: onnxio.Training{LabelsSHA256: []string{untrainedLabels},
				Labeler: "none (untrained, daemon bench)"},
			CodeVersion: "daemonbench", Created: untrainedCreated,
		}
		if s.Members > 1 {
			man.Ensemble = &onnxio.Ensemble{Member: m, Size: s.Members}
		}
		if _, err := onnxio.Save(onnxio.MemberPath(ms.Reward, m), net, man); err != nil {
			return Models{}, fmt.Errorf("bench.ExportModels: reward member %d: %w", m, err)
		}
	}
	pol := PolicyNet(s.PolicyHidden, rand.New(rand.NewPCG(s.Seed, 2)))
	if _, err := onnxio.Save(ms.Policy, pol, policyManifest(s.Task, s.Rate)); err != nil {
		return Models{}, fmt.Errorf("bench.ExportModels: policy: %w", err)
	}
	return ms, nil
}

func policyManifest(task string, rate int) onnxio.Manifest {
	return onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy, Task: task,
		Input:       onnxio.Input{Name: "obs", Shape: []int{ObsDim}, Observation: ObservationLayout},
		Output:      onnxio.Output{Name: "action", Shape: []int{ActDim}, Meaning: "MetaWorld action: hand x, y, z per step and gripper effort, each in [-1, 1] (untrained: random weights, for timing only)"},
		Control:     &onnxio.Control{RateHz: rate, ActionScale: MetaWorldSpeed / float64(rate)},
		Training:    onnxio.Training{Labeler: "none (untrained, daemon bench)"},
		CodeVersion: "daemonbench", Created: untrainedCreated,
	}
}

// Rerate writes the policy src as dst with its manifest's control rate set to rate and
// its action scale changed so that an action means the same velocity (scale·rate is
// kept): the daemon runs a policy only at the rate its manifest names, and the rate sweep
// runs one network at many rates. The graph and weights are unchanged; the manifest is
// embedded again and the sidecar's hash recomputed.
func Rerate(src, dst string, rate int) error {
	if rate < 1 || rate > 1000 {
		return fmt.Errorf("bench.Rerate: rate %d Hz outside 1..1000", rate)
	}
	v, err := onnxio.Verify(src)
	if err != nil {
		return fmt.Errorf("bench.Rerate: %w", err)
	}
	m := *v.Manifest
	if m.Kind != onnxio.KindPolicy || m.Control == nil {
		return fmt.Errorf("bench.Rerate: %s is not a policy with a control section (kind %q)", src, m.Kind)
	}
	c := *m.Control
	c.ActionScale = c.ActionScale * float64(c.RateHz) / float64(rate)
	c.RateHz = rate
	m.Control = &c
	js, err := m.JSON()
	if err != nil {
		return fmt.Errorf("bench.Rerate: %w", err)
	}
	model := *v.Model
	model.Metadata = append([]onnxio.StringEntry(nil), model.Metadata...)
	found := false
	for i := range model.Metadata {
		if model.Metadata[i].Key == onnxio.MetadataKey {
			model.Metadata[i].Value, found = string(js), true
		}
	}
	if !found {
		return fmt.Errorf("bench.Rerate: %s has no %s metadata", src, onnxio.MetadataKey)
	}
	data := model.Marshal()
	sum := sha256.Sum256(data)
	sc := onnxio.Sidecar{Manifest: m, SHA256: hex.EncodeToString(sum[:])}
	side, err := sc.JSON()
	if err != nil {
		return fmt.Errorf("bench.Rerate: %w", err)
	}
	if err := writeAtomic(dst, data); err != nil {
		return fmt.Errorf("bench.Rerate: %w", err)
	}
	if err := writeAtomic(onnxio.SidecarPath(dst), side); err != nil {
		return fmt.Errorf("bench.Rerate: %w", err)
	}
	if _, err := onnxio.Verify(dst); err != nil {
		return fmt.Errorf("bench.Rerate: the written model does not verify: %w", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside path and renames it into place.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
