package core

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/daemon/config"
	"robodistill/daemon/rosio"
	"robodistill/vision"
)

// The test models. The daemon may not import distill/, so the tests export their own,
// the way distill/reward and distill/policy do: a small reward CNN ensemble (untrained)
// and policies built by hand.

const (
	testRate  = 50
	testScale = 0.016 // MetaWorld's 1 cm per 5 substeps of 2.5 ms, at 50 Hz (8 substeps)
)

var testCreated = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// rewardNet is distill/reward.NewNet's shape, narrower: conv 3→8 k5 s2, conv 8→16 k3 s2,
// a 32-unit hidden layer, on 3×64×64.
func rewardNet(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 1))
	return nn.NewSequential(
		nn.NewConv2d(3, 8, 5, 2, 0, rng), nn.NewReLU(),
		nn.NewConv2d(8, 16, 3, 2, 0, rng), nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(16*14*14, 32, rng), nn.NewReLU(),
		nn.NewLinear(32, 1, rng),
	)
}

func rewardManifest(vc vision.Config, member, size int) onnxio.Manifest {
	m := onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindReward, Task: "reach",
		Input:  onnxio.Input{Name: "image", Shape: []int{vc.Channels.Count(), vc.Height, vc.Width}, Vision: &vc},
		Output: onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "test reward (untrained)"},
		Reward: &onnxio.RewardNorm{Mean: 0.1, Std: 2},
		Training: onnxio.Training{LabelsSHA256: []string{strings.Repeat("b", 64)},
			Labeler: "scripted:test"},
		CodeVersion: "test", Created: testCreated,
	}
	if size > 1 {
		m.Ensemble = &onnxio.Ensemble{Member: member, Size: size}
	}
	return m
}

// saveReward exports an ensemble of size members for 64×64 frames as path (member 0),
// path's MemberPath siblings and their sidecars.
func saveReward(t testing.TB, path string, size int) {
	t.Helper()
	saveRewardVision(t, path, size, vision.DefaultConfig())
}

func saveRewardVision(t testing.TB, path string, size int, vc vision.Config) {
	t.Helper()
	for i := range size {
		if _, err := onnxio.Save(onnxio.MemberPath(path, i), rewardNet(uint64(11+i)), rewardManifest(vc, i, size)); err != nil {
			t.Fatal(err)
		}
	}
}

func policyManifest(task string, rate int, scale float64) onnxio.Manifest {
	m := onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy, Task: task,
		Input:       onnxio.Input{Name: "obs", Shape: []int{rosio.ObsDim}, Observation: ObservationLayout},
		Output:      onnxio.Output{Name: "action", Shape: []int{4}, Meaning: "MetaWorld action: hand x, y, z per step and gripper effort, each in [-1, 1]"},
		Training:    onnxio.Training{Labeler: "hand-written"},
		CodeVersion: "test", Created: testCreated,
	}
	if rate > 0 {
		m.Control = &onnxio.Control{RateHz: rate, ActionScale: scale}
	}
	return m
}

// reachNet is a proportional controller as a policy network: action = tanh(gain ·
// (goal − hand)), gripper 0. It solves reach, so the end-to-end test can see the task
// succeed with a policy it exported itself.
func reachNet(gain float32) *nn.Sequential {
	l := nn.NewLinear(rosio.ObsDim, 4, rand.New(rand.NewPCG(1, 2)))
	clear(l.Weight.Value)
	clear(l.Bias.Value)
	for i := range 3 {
		l.Weight.Value[i*rosio.ObsDim+i] = -gain   // hand position, slots 0-2
		l.Weight.Value[i*rosio.ObsDim+36+i] = gain // goal position, slots 36-38
	}
	return nn.NewSequential(l, nn.NewTanh())
}

// nanNet gives a finite golden output (0) but NaN for every observation the Sawyer can
// be in: h = g1·hand_x − g0·hand_y is exactly 0 on the golden input (g0, g1 its first two
// values) and positive for any hand y in MetaWorld's range; two layers of 1e30 overflow it
// to +Inf, and +Inf − Inf is NaN. The runtime's self-check passes; Run fails with
// ErrNonFinite in the loop.
func nanNet() *nn.Sequential {
	rng := rand.New(rand.NewPCG(3, 4))
	g, _ := onnxio.GoldenInput(onnxio.PatternLattice, rosio.ObsDim)
	l1 := nn.NewLinear(rosio.ObsDim, 1, rng)
	clear(l1.Weight.Value)
	clear(l1.Bias.Value)
	l1.Weight.Value[0], l1.Weight.Value[1] = g[1], -g[0]
	big := func(in, out int, w ...float32) *nn.Linear {
		l := nn.NewLinear(in, out, rng)
		clear(l.Bias.Value)
		for i := range l.Weight.Value {
			l.Weight.Value[i] = w[i%len(w)]
		}
		return l
	}
	return nn.NewSequential(l1, nn.NewReLU(), big(1, 1, 1e30), big(1, 1, 1e30), big(1, 2, 1, -1), big(2, 4, 1), nn.NewTanh())
}

func savePolicy(t testing.TB, path string, net *nn.Sequential, m onnxio.Manifest) {
	t.Helper()
	if _, err := onnxio.Save(path, net, m); err != nil {
		t.Fatal(err)
	}
}

// testConfig is a valid configuration for models in dir (reward.onnx, policy.onnx).
func testConfig(t testing.TB, dir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Models.Reward = filepath.Join(dir, "reward.onnx")
	cfg.Models.Policy = filepath.Join(dir, "policy.onnx")
	cfg.Log.Dir = filepath.Join(dir, "log")
	cfg.HTTP.Listen = "127.0.0.1:0"
	if raceEnabled {
		// The race detector makes the control step several times slower; under SCHED_FIFO
		// it would then take a whole core from the simulated robot the tests run beside
		// it on this 2-core machine, and the robot's state would go stale. Realtime
		// scheduling is exercised without the race detector, and by control/loop.
		cfg.Loop.RealtimePriority = 0
	}
	return cfg
}

// modelDir exports a reward ensemble of 2 and the reach controller into a new folder.
func modelDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	saveReward(t, filepath.Join(dir, "reward.onnx"), 2)
	savePolicy(t, filepath.Join(dir, "policy.onnx"), reachNet(10), policyManifest("reach", testRate, testScale))
	return dir
}

func TestLoadModels(t *testing.T) {
	dir := modelDir(t)
	cfg := testConfig(t, dir)
	m, err := loadModels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if m.reward.Size() != 2 || m.motion.Scale != testScale || m.motion.Rate != testRate || m.task != "reach" {
		t.Errorf("loaded %d members, motion %+v, task %q", m.reward.Size(), m.motion, m.task)
	}
	if len(m.tensor) != 3*64*64 || len(m.objects) != 1 || m.objects[0] != (rosio.Object{Name: "object", Quat: rosio.QuatXYZW}) {
		t.Errorf("tensor %d values, objects %v", len(m.tensor), m.objects)
	}
	if len(m.ids) != 2 || m.ids[0].Name != "reward.onnx (ensemble of 2)" || m.ids[1].SHA256 != m.policySHA || len(m.policySHA) != 64 {
		t.Errorf("ids %+v", m.ids)
	}
}

// TestLoadModelsRefuses: every check the daemon makes on top of the runtime's, and the
// runtime's hash check, with the message naming the file and both sides.
func TestLoadModelsRefuses(t *testing.T) {
	crop := vision.DefaultConfig()
	crop.Crop = &vision.Rect{X: 80, Y: 0, Width: 480, Height: 480}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string, cfg *config.Config)
		want  []string
	}{
		{"policy trained at another rate", func(t *testing.T, dir string, cfg *config.Config) {
			savePolicy(t, cfg.Models.Policy, reachNet(10), policyManifest("reach", 80, 0.01))
		}, []string{"policy " + "DIR/policy.onnx: control.rate_hz is 80 Hz, but loop.rate_hz is 50 Hz: a policy runs at the rate it was trained at"}},
		{"loop at another rate", func(t *testing.T, dir string, cfg *config.Config) {
			cfg.Loop.RateHz = 100
		}, []string{"control.rate_hz is 50 Hz, but loop.rate_hz is 100 Hz"}},
		{"policy without control section", func(t *testing.T, dir string, cfg *config.Config) {
			savePolicy(t, cfg.Models.Policy, reachNet(10), policyManifest("reach", 0, 0))
		}, []string{"control: missing"}},
		{"other observation layout", func(t *testing.T, dir string, cfg *config.Config) {
			m := policyManifest("reach", testRate, testScale)
			m.Input.Observation = "sawyer-joints-9"
			savePolicy(t, cfg.Models.Policy, reachNet(10), m)
		}, []string{`input.observation is "sawyer-joints-9", but the daemon builds "metaworld-v2-39"`}},
		{"reward given as the policy", func(t *testing.T, dir string, cfg *config.Config) {
			cfg.Models.Policy = cfg.Models.Reward
		}, []string{`policy DIR/reward.onnx: kind is "reward", not a policy`}},
		{"crop outside the camera", func(t *testing.T, dir string, cfg *config.Config) {
			saveRewardVision(t, cfg.Models.Reward, 1, crop)
			cfg.Vision.CameraWidth, cfg.Vision.CameraHeight = 320, 240
		}, []string{"reward DIR/reward.onnx: input.vision.crop: x 80 + width 480 = 560 is outside frames of vision.camera_width 320",
			"input.vision.crop: y 0 + height 480 = 480 is outside frames of vision.camera_height 240"}},
		{"mono camera, colour model", func(t *testing.T, dir string, cfg *config.Config) {
			cfg.Vision.CameraEncoding = "mono8"
		}, []string{"input.vision.channels: the model takes rgb frames, but vision.camera_encoding is mono8"}},
		{"policy file changed after export", func(t *testing.T, dir string, cfg *config.Config) {
			b, err := os.ReadFile(cfg.Models.Policy)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(cfg.Models.Policy, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"policy DIR/policy.onnx: ", "sha256"}},
		{"ensemble member missing", func(t *testing.T, dir string, cfg *config.Config) {
			os.Remove(onnxio.MemberPath(cfg.Models.Reward, 1))
		}, []string{"reward DIR/reward.onnx: ", "reward.1.onnx"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := modelDir(t)
			cfg := testConfig(t, dir)
			c.setup(t, dir, &cfg)
			m, err := loadModels(cfg)
			if err == nil {
				m.close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, ErrModel) {
				t.Errorf("error does not wrap ErrModel: %v", err)
			}
			msg := strings.ReplaceAll(err.Error(), dir, "DIR")
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n  %s\ndoes not say\n  %s", msg, w)
				}
			}
		})
	}
}

// TestCompatible: a reload may not change what the running filter and builder were made
// for.
func TestCompatible(t *testing.T) {
	dir := modelDir(t)
	cfg := testConfig(t, dir)
	cur, err := loadModels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.close()
	savePolicy(t, cfg.Models.Policy, reachNet(5), policyManifest("reach-v2", testRate, testScale))
	same, err := loadModels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer same.close()
	if err := compatible(cur, same); err != nil {
		t.Errorf("same scale and layout refused: %v", err)
	}
	savePolicy(t, cfg.Models.Policy, reachNet(5), policyManifest("drawer-open", testRate, 0.02))
	other, err := loadModels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	err = compatible(cur, other)
	for _, w := range []string{"control.action_scale_m is 0.02 m, the running policy's 0.016 m", `task "drawer-open" lays out its objects as [{object wxyz}]`} {
		if err == nil || !strings.Contains(err.Error(), w) || !errors.Is(err, ErrModel) {
			t.Errorf("got %v, want it to say %q", err, w)
		}
	}
}

func TestObjectsFor(t *testing.T) {
	for _, c := range []struct {
		task  string
		quat  rosio.QuatLayout
		known bool
	}{
		{"reach", rosio.QuatXYZW, true}, {"reach-v2", rosio.QuatXYZW, true}, {"drawer-open-v3", rosio.QuatWXYZ, true},
		{"button-press-topdown", rosio.QuatWXYZ, true}, {"window-open", rosio.QuatNone, true},
		{"", rosio.QuatXYZW, false}, {"pick-place-v2", rosio.QuatXYZW, false}, {"door-v", rosio.QuatXYZW, false},
	} {
		objs, known := objectsFor(c.task)
		if known != c.known || len(objs) != 1 || objs[0].Quat != c.quat || objs[0].Name != "object" {
			t.Errorf("objectsFor(%q) = %v, %v; want %s, %v", c.task, objs, known, c.quat, c.known)
		}
	}
}
