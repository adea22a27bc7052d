package onnxio_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestSaveVerify(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "reward.onnx")
	sc, err := onnxio.Save(p, rewardCNN(7), rewardManifest())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if sc.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sidecar sha256 %s, file %x", sc.SHA256, sum)
	}
	v, err := onnxio.Verify(p)
	if err != nil {
		t.Fatal(err)
	}
	if v.SHA256 != sc.SHA256 || v.Manifest.Kind != onnxio.KindReward || v.Model.Opset() != onnxio.Opset {
		t.Errorf("Verify gives %s %s opset %d", v.SHA256, v.Manifest.Kind, v.Model.Opset())
	}
	if want := []string{"Conv", "Relu", "Flatten", "MatMul", "Add"}; strings.Join(v.Model.Graph.Ops(), " ") != strings.Join(want, " ") {
		t.Errorf("ops %v, want %v", v.Model.Graph.Ops(), want)
	}
	for _, name := range []string{"reward.onnx", "reward.onnx.json"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", name, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("Save left %d files, want 2", len(entries))
	}
	// Saving the same network and manifest again gives the same bytes.
	p2 := filepath.Join(dir, "again.onnx")
	if _, err := onnxio.Save(p2, rewardCNN(7), rewardManifest()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(p2); !bytes.Equal(again, data) {
		t.Error("a second export of the same network differs")
	}
}

// TestVerifyRefuses tampers with a saved pair in every way the daemon must notice.
func TestVerifyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, model, sidecar string)
		is    error
		wants string
	}{
		{"model byte changed", func(t *testing.T, model, _ string) {
			b := read(t, model)
			b[len(b)/2] ^= 1
			write(t, model, b)
		}, onnxio.ErrHash, "sha256 does not match: file "},
		{"sidecar hash changed", func(t *testing.T, _, sidecar string) {
			write(t, sidecar, []byte(replaceHash(string(read(t, sidecar)), strings.Repeat("0", 64))))
		}, onnxio.ErrHash, "sidecar " + strings.Repeat("0", 64)},
		{"sidecar manifest changed", func(t *testing.T, _, sidecar string) {
			write(t, sidecar, []byte(strings.Replace(string(read(t, sidecar)), `"code_version": "test"`, `"code_version": "other"`, 1)))
		}, onnxio.ErrMismatch, "the embedded manifest differs from the sidecar's"},
		{"embedded manifest changed, hash updated", func(t *testing.T, model, sidecar string) {
			b := bytes.Replace(read(t, model), []byte(`"code_version":"test"`), []byte(`"code_version":"tset"`), 1)
			write(t, model, b)
			sum := sha256.Sum256(b)
			write(t, sidecar, []byte(replaceHash(string(read(t, sidecar)), hex.EncodeToString(sum[:]))))
		}, onnxio.ErrMismatch, "the embedded manifest differs from the sidecar's"},
		{"sidecar missing", func(t *testing.T, _, sidecar string) {
			if err := os.Remove(sidecar); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist, "sidecar: open "},
		{"sidecar with unknown key", func(t *testing.T, _, sidecar string) {
			write(t, sidecar, []byte(strings.Replace(string(read(t, sidecar)), `"kind"`, `"extra": 1, "kind"`, 1)))
		}, onnxio.ErrFormat, `json: unknown field "extra"`},
		{"not a model", func(t *testing.T, model, sidecar string) {
			b := []byte("not onnx")
			write(t, model, b)
			sum := sha256.Sum256(b)
			write(t, sidecar, []byte(replaceHash(string(read(t, sidecar)), hex.EncodeToString(sum[:]))))
		}, onnxio.ErrFormat, "onnxio.Decode: malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "policy.onnx")
			if _, err := onnxio.Save(p, policyMLP(1), policyManifest()); err != nil {
				t.Fatal(err)
			}
			tc.edit(t, p, onnxio.SidecarPath(p))
			_, err := onnxio.Verify(p)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("error\n  %v\nwant %v containing %q", err, tc.is, tc.wants)
			}
		})
	}
}

// TestInspectRefuses covers models that decode but are not ours or do not match their
// manifest.
func TestInspectRefuses(t *testing.T) {
	build := func() *onnxio.Model {
		model, _, err := onnxio.Build(policyMLP(1), policyManifest())
		if err != nil {
			t.Fatal(err)
		}
		return model
	}
	for _, tc := range []struct {
		name string
		edit func(m *onnxio.Model)
		is   error
		want string
	}{
		{"no metadata", func(m *onnxio.Model) { m.Metadata = nil }, onnxio.ErrFormat,
			"onnxio.Inspect: malformed: no robodistill.manifest_version metadata (not exported by robodistill?)"},
		{"other version", func(m *onnxio.Model) { m.Metadata[1].Value = "2" }, onnxio.ErrFormat,
			`onnxio.Inspect: malformed: manifest version "2", this build reads 1`},
		{"input renamed", func(m *onnxio.Model) { m.Graph.Inputs[0].Name = "state" }, onnxio.ErrMismatch,
			`onnxio.Inspect: mismatch: graph input "state", manifest input.name "obs"`},
		{"fixed batch", func(m *onnxio.Model) { m.Graph.Outputs[0].Type.Shape.Dims[0] = onnxio.DimValue(1) }, onnxio.ErrMismatch,
			`onnxio.Inspect: mismatch: graph output "action" is not float32 [4] with batch dimension "N", as manifest output.shape says`},
		{"two outputs", func(m *onnxio.Model) { m.Graph.Outputs = append(m.Graph.Outputs, m.Graph.Outputs[0]) }, onnxio.ErrMismatch,
			"onnxio.Inspect: mismatch: the graph has 1 inputs and 2 outputs, want 1 and 1"},
		{"no graph", func(m *onnxio.Model) { m.Graph = nil }, onnxio.ErrMismatch, "onnxio.Inspect: mismatch: the model has no graph"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build()
			tc.edit(m)
			_, _, err := onnxio.Inspect(m.Marshal())
			if !errors.Is(err, tc.is) || err.Error() != tc.want {
				t.Errorf("error\n  %v\nwant %v:\n  %s", err, tc.is, tc.want)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name string
		net  *nn.Sequential
		edit func(m *onnxio.Manifest)
		want string
	}{
		{"input does not fit", policyMLP(1), func(m *onnxio.Manifest) { m.Input.Shape = []int{40} },
			"onnxio.Export: input.shape [40]: layer 0 (*nn.Linear): linear: input shape [1 40], want [N 39]"},
		{"output shape", policyMLP(1), func(m *onnxio.Manifest) { m.Output.Shape = []int{5} },
			"onnxio.Export: output.shape: the network gives [4] per sample, the manifest says [5]"},
		{"bad input shape", policyMLP(1), func(m *onnxio.Manifest) { m.Input.Shape = nil },
			"onnxio.Export: manifest: input.shape: 0 dimensions, want 1 to 3"},
		{"manifest", policyMLP(1), func(m *onnxio.Manifest) { m.Training.Labeler = "" },
			"onnxio.Export: manifest: training.labeler: required"},
		{"unsupported layer", nn.NewSequential(nn.NewLinear(39, 4, rng), &unknownLayer{}), nil,
			"onnxio.Export: layer 1 (*onnxio_test.unknownLayer): no ONNX form for this layer"},
		{"layer norm rank 3", nn.NewSequential(nn.NewLayerNorm(39)), func(m *onnxio.Manifest) {
			m.Input.Shape = []int{2, 39}
			m.Output.Shape = []int{2, 39}
		}, "onnxio.Export: layer 0 (*nn.LayerNorm): exported only on [N, F] inputs, not rank 3"},
		{"empty network", nn.NewSequential(), func(m *onnxio.Manifest) { m.Output.Shape = []int{39} },
			"onnxio.Export: the network has no layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := policyManifest()
			if tc.edit != nil {
				tc.edit(&m)
			}
			var buf bytes.Buffer
			_, err := onnxio.Export(&buf, tc.net, m)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n  %v\nwant\n  %s", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Export wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

// unknownLayer is a layer Export has no ONNX form for.
type unknownLayer struct{ nn.ReLU }

// TestDescribe pins the exported graphs (ops, names, attributes, shapes; no values) in
// testdata/*.golden; rewrite with -update.
func TestDescribe(t *testing.T) {
	for _, tm := range testModels {
		t.Run(tm.Name, func(t *testing.T) {
			model, _, err := onnxio.Build(tm.Net(7), tm.Manifest())
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := onnxio.Describe(&buf, model); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tm.Name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("Describe differs from %s (rerun with -update if intended):\n%s", golden, buf.Bytes())
			}
		})
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceHash sets the sidecar's "sha256" value.
func replaceHash(sidecar, sum string) string {
	i := strings.Index(sidecar, `"sha256": "`) + len(`"sha256": "`)
	return sidecar[:i] + sum + sidecar[i+64:]
}
