package onnxio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"robodistill/control/onnxio"
	"robodistill/vision"
)

// validReward is a complete reward manifest, golden output included.
func validReward(t testing.TB) onnxio.Manifest {
	t.Helper()
	_, m, err := onnxio.Build(rewardCNN(7), rewardManifest())
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

func TestManifestErrors(t *testing.T) {
	base := validReward(t)
	const prefix = "onnxio.ParseManifest: "
	for _, tc := range []struct {
		name string
		edit func(m *onnxio.Manifest)
		want string
	}{
		{"version", func(m *onnxio.Manifest) { m.Version = 2 }, "version: 2 is not supported (this build reads 1)"},
		{"kind", func(m *onnxio.Manifest) { m.Kind = "critic" }, `kind: unknown value "critic" (want reward or policy)`},
		{"input name", func(m *onnxio.Manifest) { m.Input.Name = "" }, "input.name: required"},
		{"input name form", func(m *onnxio.Manifest) { m.Input.Name = "0in" },
			`input.name: "0in" is not a valid name (a letter, then letters, digits or _.-/, at most 64)`},
		{"input shape rank", func(m *onnxio.Manifest) { m.Input.Shape = []int{1, 3, 64, 64} }, "input.shape: 4 dimensions, want 1 to 3"},
		{"input shape dim", func(m *onnxio.Manifest) { m.Input.Shape = []int{3, 0, 64} }, "input.shape[1]: must be between 1 and 16777216, got 0"},
		{"input shape size", func(m *onnxio.Manifest) { m.Input.Shape = []int{4096, 4096, 4096} }, "input.shape: [4096 4096 4096] has more than 16777216 elements"},
		{"vision missing", func(m *onnxio.Manifest) { m.Input.Vision = nil }, "input.vision: required for an image input (shape [3 64 64])"},
		{"vision invalid", func(m *onnxio.Manifest) { m.Input.Vision.Std = []float64{1, 0, 1} }, "input.vision.std[1]: must be positive and finite, got 0"},
		{"vision shape", func(m *onnxio.Manifest) { m.Input.Vision.Width = 32 },
			"input.shape: [3 64 64], but input.vision gives [3 64 32] (channels, height, width)"},
		{"vision on state", func(m *onnxio.Manifest) { m.Input.Shape = []int{39} }, "input.vision: only for image inputs ([C H W]), not shape [39]"},
		{"observation on image", func(m *onnxio.Manifest) { m.Input.Observation = "x" }, "input.observation: only for state inputs, not images"},
		{"output name", func(m *onnxio.Manifest) { m.Output.Name = "image" }, `output.name: "image" is also the input's name`},
		{"output shape", func(m *onnxio.Manifest) { m.Output.Shape = []int{2} }, "output.shape: a reward model gives [1] per sample, not [2]"},
		{"output meaning", func(m *onnxio.Manifest) { m.Output.Meaning = "" }, "output.meaning: required"},
		{"reward missing", func(m *onnxio.Manifest) { m.Reward = nil }, "reward: required for kind reward"},
		{"reward on policy", func(m *onnxio.Manifest) {
			m.Kind = onnxio.KindPolicy
			m.Training.LabelsSHA256 = nil
		}, "reward: only for kind reward, not policy"},
		{"reward std", func(m *onnxio.Manifest) { m.Reward.Std = -1 }, "reward.std: must be positive and finite, got -1"},
		{"threshold name", func(m *onnxio.Manifest) { m.Reward.Thresholds[0].Name = "" }, "reward.thresholds[0].name: required"},
		{"threshold twice", func(m *onnxio.Manifest) { m.Reward.Thresholds = append(m.Reward.Thresholds, m.Reward.Thresholds[0]) },
			`reward.thresholds[1].name: "success" appears twice`},
		{"data hash", func(m *onnxio.Manifest) { m.Training.DataSHA256 = []string{strings.Repeat("A", 64)} },
			`training.data_sha256[0]: "` + strings.Repeat("A", 64) + `" is not a lowercase hex sha256`},
		{"labels hash", func(m *onnxio.Manifest) { m.Training.LabelsSHA256[1] = "abc" }, `training.labels_sha256[1]: "abc" is not a lowercase hex sha256`},
		{"labels missing", func(m *onnxio.Manifest) { m.Training.LabelsSHA256 = nil }, "training.labels_sha256: required for kind reward"},
		{"labeler", func(m *onnxio.Manifest) { m.Training.Labeler = "" }, "training.labeler: required"},
		{"code version", func(m *onnxio.Manifest) { m.CodeVersion = "" }, "code_version: required"},
		{"created", func(m *onnxio.Manifest) { m.Created = time.Time{} }, "created: required"},
		{"golden pattern", func(m *onnxio.Manifest) { m.Golden.Pattern = "zeros" }, `golden.pattern: unknown value "zeros" (want "lattice-v1")`},
		{"golden output", func(m *onnxio.Manifest) { m.Golden.Output = nil }, "golden.output: 0 values, output.shape needs 1"},
		{"golden tolerance", func(m *onnxio.Manifest) { m.Golden.Tolerance = 0 }, "golden.tolerance: must be positive and finite, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := clone(t, base)
			tc.edit(&m)
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = onnxio.ParseManifest(js)
			if err == nil || err.Error() != prefix+tc.want {
				t.Errorf("error\n  %v\nwant\n  %s", err, prefix+tc.want)
			}
		})
	}
}

func TestManifestSyntaxErrors(t *testing.T) {
	good, err := json.Marshal(validReward(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"unknown key", strings.Replace(string(good), `"kind"`, `"sha256":"x","kind"`, 1), `json: unknown field "sha256"`},
		{"unknown nested key", strings.Replace(string(good), `"flip"`, `"gamma":2.2,"flip"`, 1), `json: unknown field "gamma"`},
		{"trailing data", string(good) + "{}", "data after the manifest"},
		{"not JSON", "manifest", "invalid character 'm' looking for beginning of value"},
		{"wrong type", strings.Replace(string(good), `"version":1`, `"version":"1"`, 1), "cannot unmarshal string into Go struct field Manifest.version of type int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onnxio.ParseManifest([]byte(tc.data))
			if !errors.Is(err, onnxio.ErrFormat) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrFormat ending with %q", err, tc.want)
			}
		})
	}
}

// TestManifestJSON checks the stable form: a round trip gives equal bytes, and the
// vision configuration appears exactly as vision.Config.JSON writes it.
func TestManifestJSON(t *testing.T) {
	m := validReward(t)
	js, err := m.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnxio.ParseManifest(js)
	if err != nil {
		t.Fatal(err)
	}
	js2, err := back.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, js2) {
		t.Errorf("round trip changed the JSON:\n%s\n%s", js, js2)
	}
	var raw struct {
		Input struct {
			Vision json.RawMessage `json:"vision"`
		} `json:"input"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	want, err := m.Input.Vision.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw.Input.Vision, want) {
		t.Errorf("manifest's input.vision\n  %s\nvision.Config.JSON\n  %s", raw.Input.Vision, want)
	}
	// The sidecar is the manifest's keys plus sha256, and the manifest reader refuses it.
	sc := onnxio.Sidecar{Manifest: m, SHA256: strings.Repeat("0", 64)}
	scJSON, err := sc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxio.ParseSidecar(scJSON); err != nil {
		t.Errorf("ParseSidecar: %v", err)
	}
	if _, err := onnxio.ParseManifest(scJSON); err == nil || !strings.Contains(err.Error(), `unknown field "sha256"`) {
		t.Errorf("ParseManifest of a sidecar: %v", err)
	}
	sc.SHA256 = "x"
	if scJSON, err = sc.JSON(); err != nil {
		t.Fatal(err)
	}
	if _, err := onnxio.ParseSidecar(scJSON); err == nil || err.Error() != `onnxio.ParseSidecar: sha256: "x" is not a lowercase hex sha256` {
		t.Errorf("ParseSidecar with a bad hash: %v", err)
	}
}

func TestGolden(t *testing.T) {
	x, err := onnxio.GoldenInput(onnxio.PatternLattice, 300)
	if err != nil {
		t.Fatal(err)
	}
	// Element i is ((97·i + 13) mod 256)/128 − 1.
	for _, c := range []struct {
		i    int
		want float32
	}{{0, 13.0/128 - 1}, {1, 110.0/128 - 1}, {2, 207.0/128 - 1}, {3, 48.0/128 - 1}, {299, float32((97*299+13)%256)/128 - 1}} {
		if x[c.i] != c.want {
			t.Errorf("x[%d] = %v, want %v", c.i, x[c.i], c.want)
		}
	}
	if _, err := onnxio.GoldenInput("zeros", 1); err == nil {
		t.Error("unknown pattern accepted")
	}
	m := validReward(t)
	out := m.Golden.Output
	if err := m.CheckGolden(out); err != nil {
		t.Error(err)
	}
	if err := m.CheckGolden([]float32{out[0] + 2e-4}); err == nil || !strings.Contains(err.Error(), "outputs differ by") {
		t.Errorf("CheckGolden with a wrong value: %v", err)
	}
	if err := m.CheckGolden([]float32{float32(math.NaN())}); err == nil {
		t.Error("CheckGolden accepts NaN")
	}
	if err := m.CheckGolden(nil); err == nil || err.Error() != "onnxio: golden check: 0 outputs, want 1" {
		t.Errorf("CheckGolden with no values: %v", err)
	}
}

func TestCheckVision(t *testing.T) {
	m := validReward(t)
	if err := m.CheckVision(vision.DefaultConfig()); err != nil {
		t.Error(err)
	}
	other := vision.DefaultConfig()
	other.Flip = vision.FlipVertical
	err := m.CheckVision(other)
	if !errors.Is(err, onnxio.ErrMismatch) || !strings.Contains(err.Error(), `"flip":"vertical"`) {
		t.Errorf("CheckVision with another flip: %v", err)
	}
	p := policyManifest()
	if err := p.CheckVision(vision.DefaultConfig()); !errors.Is(err, onnxio.ErrMismatch) {
		t.Errorf("CheckVision on a state policy: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	good, err := json.Marshal(validReward(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"kind":"policy","input":{"name":"obs","shape":[39]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnxio.ParseManifest(data)
		if err != nil {
			return
		}
		// What parses, re-encodes to something that parses to the same JSON.
		js, err := m.JSON()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := onnxio.ParseManifest(js)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", js, err)
		}
		js2, _ := m2.JSON()
		if !bytes.Equal(js, js2) {
			t.Fatalf("not stable:\n%s\n%s", js, js2)
		}
	})
}

// clone deep-copies a manifest through its JSON.
func clone(t *testing.T, m onnxio.Manifest) onnxio.Manifest {
	t.Helper()
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var c onnxio.Manifest
	if err := json.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
