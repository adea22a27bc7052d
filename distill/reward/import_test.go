package reward

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"robodistill/control/onnxio"
	"robodistill/vision"
)

func TestImportNet(t *testing.T) {
	for _, arch := range []string{"cnn2", "cnn3"} {
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
