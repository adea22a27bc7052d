package onnxref_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"robodistill/control/onnxio"
	"robodistill/control/onnxio/onnxref"
)

// TestMissingTools: without a tool the harness fails and says how to install it.
func TestMissingTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	model := writeModel(t, addModel("y"))

	_, err := onnxref.Tools{Python: "/nonexistent/python3"}.Check(ctx, model)
	if !errors.Is(err, onnxref.ErrNoChecker) || !strings.Contains(err.Error(), "apt-get install -y python3-onnx") {
		t.Errorf("Check without Python: %v", err)
	}
	empty := t.TempDir()
	_, err = onnxref.Tools{ORTDir: empty}.RunORT(ctx, model)
	if !errors.Is(err, onnxref.ErrNoORT) || !strings.Contains(err.Error(), "scripts/install-onnxruntime-node") ||
		!strings.Contains(err.Error(), onnxref.InstallCommand(empty)) {
		t.Errorf("RunORT without onnxruntime-node: %v", err)
	}
	_, err = onnxref.Tools{Node: "/nonexistent/node"}.RunORT(ctx, model)
	if !errors.Is(err, onnxref.ErrNoORT) || !strings.Contains(err.Error(), "nodejs") {
		t.Errorf("RunORT without node: %v", err)
	}
}

// TestCheckRejects: a model the checker refuses is an error carrying its message.
func TestCheckRejects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := writeModel(t, addModel("y"))
	if _, err := (onnxref.Tools{}).Check(ctx, good); err != nil {
		t.Fatalf("the checker refuses a good model: %v", err)
	}
	bad := addModel("y")
	bad.Graph.Nodes[0].Inputs[1] = "undefined"
	_, err := onnxref.Tools{}.Check(ctx, good, writeModel(t, bad))
	if err == nil || !strings.Contains(err.Error(), "checker rejected the model") || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("Check of a broken model: %v", err)
	}
}

// TestRunORT runs a one-node model, y = x + x, at two batch sizes.
func TestRunORT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := writeModel(t, addModel("y"))
	res, err := onnxref.Tools{}.RunORT(ctx, p,
		[]onnxref.Tensor{{Name: "x", Shape: []int{1, 2}, Data: []float32{1.5, -2}}},
		[]onnxref.Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 1e-30}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != onnxref.ORTVersion {
		t.Errorf("ONNX Runtime %s, want %s", res.Version, onnxref.ORTVersion)
	}
	want := [][]float32{{3, -4}, {2, 4, 6, 2e-30}}
	for i, run := range res.Runs {
		if got := run[0]; got.Name != "y" || len(got.Data) != len(want[i]) || got.Shape[0] != i+1 {
			t.Fatalf("run %d: %+v", i, got)
		}
		for j := range want[i] {
			if run[0].Data[j] != want[i][j] {
				t.Errorf("run %d: y[%d] = %v, want %v", i, j, run[0].Data[j], want[i][j])
			}
		}
	}
}

// TestInstallScriptVersion keeps scripts/install-onnxruntime-node on ORTVersion.
func TestInstallScriptVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "install-onnxruntime-node"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^version=(\S+)`).FindSubmatch(b)
	if m == nil || string(m[1]) != onnxref.ORTVersion {
		t.Errorf("scripts/install-onnxruntime-node pins %q, onnxref.ORTVersion is %s", m, onnxref.ORTVersion)
	}
}

// addModel is y = x + x on float32 [N, 2].
func addModel(out string) *onnxio.Model {
	vi := func(name string) onnxio.ValueInfo {
		return onnxio.ValueInfo{Name: name, Type: &onnxio.TensorType{ElemType: onnxio.Float,
			Shape: &onnxio.Shape{Dims: []onnxio.Dim{onnxio.DimParam("N"), onnxio.DimValue(2)}}}}
	}
	return &onnxio.Model{
		IRVersion:   onnxio.IRVersion,
		OpsetImport: []onnxio.OpsetID{{Version: onnxio.Opset}},
		Graph: &onnxio.Graph{
			Name:    "add",
			Nodes:   []onnxio.Node{{Inputs: []string{"x", "x"}, Outputs: []string{out}, OpType: "Add"}},
			Inputs:  []onnxio.ValueInfo{vi("x")},
			Outputs: []onnxio.ValueInfo{vi(out)},
		},
	}
}

func writeModel(t *testing.T, m *onnxio.Model) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.onnx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(m.Marshal()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
