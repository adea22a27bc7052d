package runtime_test

import (
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/vision"
)

// tinyReward is a small reward CNN on 3×8×8 frames.
func tinyReward(seed uint64) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 4))
	return nn.NewSequential(nn.NewConv2d(3, 4, 3, 2, 0, rng), nn.NewReLU(), nn.NewFlatten(), nn.NewLinear(4*3*3, 1, rng))
}

func tinyRewardManifest(member, size int, norm onnxio.RewardNorm) onnxio.Manifest {
	m := rewardManifest()
	cfg := vision.DefaultConfig()
	cfg.Width, cfg.Height = 8, 8
	m.Input = onnxio.Input{Name: "image", Shape: []int{3, 8, 8}, Vision: &cfg}
	m.Reward = &norm
	m.Ensemble = &onnxio.Ensemble{Member: member, Size: size}
	return m
}

var ensembleNorms = []onnxio.RewardNorm{
	{Mean: 0.1, Std: 0.5, Thresholds: []onnxio.Threshold{{Name: onnxio.ThresholdFloor, Value: -0.2}}},
	{Mean: -0.2, Std: 2},
	{Mean: 0, Std: 0.25, Thresholds: []onnxio.Threshold{{Name: "success", Value: 1}}},
}

// saveEnsemble writes three members; edit may change member m's manifest.
func saveEnsemble(t *testing.T, dir string, edit func(m int, man *onnxio.Manifest)) string {
	t.Helper()
	path := filepath.Join(dir, "reward.onnx")
	for m, norm := range ensembleNorms {
		man := tinyRewardManifest(m, len(ensembleNorms), norm)
		if edit != nil {
			edit(m, &man)
		}
		if _, err := onnxio.Save(onnxio.MemberPath(path, m), tinyReward(uint64(m)), man); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestPublish(t *testing.T) {
	floor := onnxio.RewardNorm{Mean: 1, Std: 2, Thresholds: []onnxio.Threshold{{Name: "success", Value: 9}, {Name: onnxio.ThresholdFloor, Value: 0.5}}}
	for _, tc := range []struct {
		n    onnxio.RewardNorm
		raw  float32
		want float64
	}{
		{onnxio.RewardNorm{Mean: 1, Std: 2}, 5, 2},
		{onnxio.RewardNorm{Mean: 1, Std: 2}, -3, -2},
		{floor, 5, 2},
		{floor, 2, 0.5}, // at the floor: kept
		{floor, 1.5, 0}, // 0.25 < 0.5
		{floor, -3, 0},
	} {
		if got := tc.n.Publish(tc.raw); got != tc.want {
			t.Errorf("%+v.Publish(%g) = %g, want %g", tc.n, tc.raw, got, tc.want)
		}
	}
}

func TestEnsemble(t *testing.T) {
	path := saveEnsemble(t, t.TempDir(), nil)
	e, err := runtime.LoadEnsemble(path, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Size() != 3 {
		t.Fatalf("%d members", e.Size())
	}
	for f := range 4 {
		frame := randomInput(3*8*8, uint64(f))
		mean, std, err := e.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		// The same from the Go forward passes and the formula.
		var pub []float64
		for m, norm := range ensembleNorms {
			raw := tinyReward(uint64(m)).Forward(&nn.Tensor{Shape: []int{1, 3, 8, 8}, Data: frame}).Data[0]
			z := (float64(raw) - norm.Mean) / norm.Std
			if m == 0 && z < -0.2 {
				z = 0
			}
			pub = append(pub, z)
		}
		wm := (pub[0] + pub[1] + pub[2]) / 3
		ws := math.Sqrt(((pub[0]-wm)*(pub[0]-wm) + (pub[1]-wm)*(pub[1]-wm) + (pub[2]-wm)*(pub[2]-wm)) / 3)
		t.Logf("frame %d: published %v, mean %.4g, std %.4g", f, e.Published(), mean, std)
		if math.Abs(mean-wm) > 1e-6 || math.Abs(std-ws) > 1e-6 {
			t.Errorf("frame %d: mean %g std %g, want %g %g (members %v)", f, mean, std, wm, ws, pub)
		}
	}
	if nn.CurrentBackend() == nn.OpenBLAS {
		frame := randomInput(3*8*8, 9)
		c := e.Clone()
		for name, ens := range map[string]*runtime.Ensemble{"ensemble": e, "clone": c} {
			if a := testing.AllocsPerRun(20, func() { ens.Run(frame) }); a != 0 {
				t.Errorf("%s: %v allocations per Run, want 0", name, a)
			}
		}
	}
}

func TestEnsembleErrors(t *testing.T) {
	otherVision := func(m int, man *onnxio.Manifest) {
		if m == 2 {
			cfg := *man.Input.Vision
			cfg.Mean = []float64{0.5, 0.5, 0.5}
			man.Input.Vision = &cfg
		}
	}
	for _, tc := range []struct {
		name string
		edit func(m int, man *onnxio.Manifest)
		load func(path string) string // which file to load
		is   error
	}{
		{"other vision config", otherVision, nil, onnxio.ErrMismatch},
		{"member index", func(m int, man *onnxio.Manifest) {
			if m == 1 {
				man.Ensemble.Member = 2
			}
		}, nil, onnxio.ErrMismatch},
		{"not member 0", nil, func(p string) string { return onnxio.MemberPath(p, 1) }, onnxio.ErrMismatch},
		{"missing member", nil, func(p string) string {
			os.Remove(onnxio.MemberPath(p, 2))
			return p
		}, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := saveEnsemble(t, t.TempDir(), tc.edit)
			if tc.load != nil {
				p = tc.load(p)
			}
			_, err := runtime.LoadEnsemble(p, runtime.Options{})
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			t.Log(err)
		})
	}
	// A policy is not a reward model.
	p := save(t, t.TempDir(), testModels[1])
	if _, err := runtime.LoadEnsemble(p, runtime.Options{}); !errors.Is(err, onnxio.ErrMismatch) {
		t.Errorf("policy: %v", err)
	}
}

// TestFLOPs: the runtime's count of an exported network equals nn.FLOPs on the network
// (the exporter's MatMul+Add is the Linear's multiply-adds plus its bias).
func TestFLOPs(t *testing.T) {
	for _, tm := range testModels {
		p := save(t, t.TempDir(), tm)
		m, err := runtime.Load(p, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		net := tm.Net(7)
		want, err := nn.FLOPs(net, append([]int{1}, tm.Manifest().Input.Shape...))
		if err != nil {
			t.Fatal(err)
		}
		// The exporter decomposes LayerNorm into MatMul, Sub, Mul, Sqrt and Div, which
		// count a little differently from nn's 8 per element: within 1 % there.
		got := m.FLOPs()
		if tm.Name == "norm_policy" {
			if d := float64(got-want) / float64(want); d > 0.01 || d < -0.01 {
				t.Errorf("%s: runtime counts %d FLOPs, nn %d", tm.Name, got, want)
			}
		} else if got != want {
			t.Errorf("%s: runtime counts %d FLOPs, nn %d", tm.Name, got, want)
		}
	}
}
