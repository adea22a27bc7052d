package runtime_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/vision"
)

// smallNet has every layer kind the exporter writes, in a few hundred bytes.
func smallNet() *nn.Sequential {
	rng := rand.New(rand.NewPCG(1, 2))
	return nn.NewSequential(
		nn.NewConv2d(1, 2, 3, 2, 1, rng), nn.NewReLU(), nn.NewFlatten(),
		nn.NewLinear(2*2*2, 5, rng), nn.NewLayerNorm(5), nn.NewTanh(),
		nn.NewLinear(5, 2, rng),
	)
}

func smallExport(t testing.TB) ([]byte, *onnxio.Manifest) {
	cfg := vision.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Channels, cfg.Mean, cfg.Std = 4, 4, vision.Gray, []float64{0}, []float64{1}
	model, man, err := onnxio.Build(smallNet(), onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy,
		Input:       onnxio.Input{Name: "image", Shape: []int{1, 4, 4}, Vision: &cfg},
		Output:      onnxio.Output{Name: "action", Shape: []int{2}, Meaning: "test"},
		Training:    onnxio.Training{Labeler: "ground-truth"},
		CodeVersion: "test", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return model.Marshal(), man
}

// FuzzLoadBytes feeds the loader (both decoders, the compiler and the self-check) with
// mutations of an exported model: it must return an error or a model that runs, never
// panic.
func FuzzLoadBytes(f *testing.F) {
	data, man := smallExport(f)
	f.Add(data)
	for _, n := range []int{0, 1, 2, 10, 50, 100, len(data) / 2, len(data) - 40, len(data) - 1} {
		f.Add(data[:n])
	}
	for _, i := range []int{3, 20, 60, 200, len(data) - 20} {
		b := append([]byte(nil), data...)
		b[i] ^= 0x5a
		f.Add(b)
	}
	if _, err := runtime.LoadBytes(data, man, runtime.Options{MaxBatch: 2}); err != nil {
		f.Fatalf("the seed model does not load: %v", err)
	}
	x, _ := onnxio.GoldenInput(man.Golden.Pattern, 16)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := runtime.LoadBytes(b, man, runtime.Options{MaxBatch: 2})
		if err != nil {
			return
		}
		if _, err := m.Run(x, 1); err != nil {
			t.Fatalf("loaded (passed the self-check) but Run fails: %v", err)
		}
		if _, err := m.Clone().Run(append(x, x...), 2); err != nil {
			t.Fatalf("a clone fails at batch 2: %v", err)
		}
	})
}
