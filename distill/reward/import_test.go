package reward

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/vision"
)

func TestImportNet(t *testing.T) {
	for _, arch := range []string{"cnn2", "cnn3", "spatial"} {
		t.Run(arch, func(t *testing.T) {
			shape := [3]int{3, 32, 32}
			net, err := NewNet(arch, shape, 24, rand.New(rand.NewPCG(7, 1)))
			if err != nil {
				t.Fatal(err)
			}
			vc := vision.DefaultConfig()
			vc.Width, vc.Height = 32, 32
			var buf bytes.Buffer
			m := onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindReward, Task: "reach",
				Input:    onnxio.Input{Name: "image", Shape: shape[:], Vision: &vc},
				Output:   onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "test"},
				Reward:   &onnxio.RewardNorm{Mean: 0, Std: 1},
				Training: onnxio.Training{Labeler: "oracle", LabelsSHA256: []string{strings.Repeat("ab", 32)}}, CodeVersion: "test", Created: time.Unix(1.7e9, 0).UTC()}
			if _, err := onnxio.Export(&buf, net, m); err != nil {
				t.Fatal(err)
			}
			got, err := ImportNet(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			ps, qs := net.Params(), got.Params()
			if len(ps) != len(qs) {
				t.Fatalf("%d parameters, want %d", len(qs), len(ps))
			}
			for i := range ps {
				if !slices.Equal(ps[i].Shape, qs[i].Shape) || !slices.Equal(ps[i].Value, qs[i].Value) {
					t.Fatalf("parameter %s differs after the round trip", ps[i].Name)
				}
			}
			if a, h, err := NetArch(got); a != arch || h != 24 || err != nil {
				t.Errorf("the imported network is %q, hidden %d (%v)", a, h, err)
			}
			// The same function: bit-identical rewards on random frames.
			x := nn.NewTensor(3, 3, 32, 32)
			rng := rand.New(rand.NewPCG(3, 3))
			for i := range x.Data {
				x.Data[i] = float32(rng.NormFloat64())
			}
			want := slices.Clone(net.Forward(x).Data)
			if r := got.Forward(x).Data; !slices.Equal(r, want) {
				t.Errorf("rewards %v after the round trip, %v before", r, want)
			}
			// A policy, or a truncated file, is refused.
			if _, err := ImportNet(buf.Bytes()[:buf.Len()/2]); err == nil {
				t.Error("a truncated model was imported")
			}
			m.Kind, m.Input.Vision = onnxio.KindPolicy, nil
			buf.Reset()
			if _, err := onnxio.Export(&buf, net, m); err == nil {
				if _, err := ImportNet(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "reward model") {
					t.Errorf("a policy was imported as a reward network: %v", err)
				}
			}
		})
	}
}

// TestImportNetSpatialGrid: a spatial model whose coordinate grid is not nn.SpatialGrid
// (another convention) is refused rather than imported as a different function.
func TestImportNetSpatialGrid(t *testing.T) {
	shape := [3]int{3, 32, 32}
	net, err := NewNet("spatial", shape, 8, rand.New(rand.NewPCG(7, 1)))
	if err != nil {
		t.Fatal(err)
	}
	vc := vision.DefaultConfig()
	vc.Width, vc.Height = 32, 32
	m := onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindReward,
		Input:    onnxio.Input{Name: "image", Shape: shape[:], Vision: &vc},
		Output:   onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "test"},
		Reward:   &onnxio.RewardNorm{Mean: 0, Std: 1},
		Training: onnxio.Training{Labeler: "oracle", LabelsSHA256: []string{strings.Repeat("ab", 32)}}, CodeVersion: "test", Created: time.Unix(1.7e9, 0).UTC()}
	model, _, err := onnxio.Build(net, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportNet(model.Marshal()); err != nil {
		t.Fatal(err)
	}
	for i := range model.Graph.Initializers {
		if g := &model.Graph.Initializers[i]; g.Name == "4.grid" {
			g.RawData[3] ^= 0x80 // the first x coordinate changes sign
		}
	}
	_, err = ImportNet(model.Marshal())
	if err == nil || !strings.Contains(err.Error(), `layer 4: initializer "4.grid": value 0 is`) {
		t.Errorf("a changed grid: %v", err)
	}
}
