package onnxio_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/onnxio/onnxref"
)

// parityTol is the bound on |ONNX Runtime − Go forward|.
const parityTol = 1e-5

// exportAll saves every test model into dir and returns their paths.
func exportAll(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	for _, tm := range testModels {
		p := filepath.Join(dir, tm.Name+".onnx")
		if _, err := onnxio.Save(p, tm.Net(7), tm.Manifest()); err != nil {
			t.Fatalf("%s: %v", tm.Name, err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestChecker runs Debian's onnx checker (full_check) on every exported model.
func TestChecker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	paths := exportAll(t, t.TempDir())
	version, err := onnxref.Tools{}.Check(ctx, paths...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("onnx %s: check_model(full_check=True) accepts %d models", version, len(paths))

	// Python's protobuf writes known fields in field-number order, as Marshal does: the
	// files should survive its load and save byte for byte.
	script := "import sys, onnx\nfor p in sys.argv[1:]:\n    print(open(p, 'rb').read() == onnx.load(p).SerializeToString())"
	out, err := exec.CommandContext(ctx, onnxref.DefaultPython, append([]string{"-c", script}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, slices.Repeat([]string{"True"}, len(paths))) {
		t.Errorf("onnx.load then SerializeToString changes the bytes: %q", out)
	}
}

// TestORTParity runs every exported model in ONNX Runtime at batch 1 (the golden input)
// and batch 3 (random inputs) and compares with the Go forward pass.
func TestORTParity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	paths := exportAll(t, dir)
	for i, tm := range testModels {
		t.Run(tm.Name, func(t *testing.T) {
			v, err := onnxio.Verify(paths[i])
			if err != nil {
				t.Fatal(err)
			}
			m := v.Manifest
			net := tm.Net(7)
			in1 := append([]int{1}, m.Input.Shape...)
			golden, err := onnxio.GoldenInput(m.Golden.Pattern, numel(in1))
			if err != nil {
				t.Fatal(err)
			}
			in3 := append([]int{3}, m.Input.Shape...)
			rng := rand.New(rand.NewPCG(11, uint64(i)))
			batch := make([]float32, numel(in3))
			for j := range batch {
				batch[j] = float32(2*rng.Float64() - 1)
			}
			res, err := onnxref.Tools{}.RunORT(ctx, paths[i],
				[]onnxref.Tensor{{Name: m.Input.Name, Shape: in1, Data: golden}},
				[]onnxref.Tensor{{Name: m.Input.Name, Shape: in3, Data: batch}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.InputNames, []string{m.Input.Name}) || !slices.Equal(res.OutputNames, []string{m.Output.Name}) {
				t.Fatalf("ONNX Runtime sees inputs %v and outputs %v", res.InputNames, res.OutputNames)
			}
			for r, x := range []*nn.Tensor{{Shape: in1, Data: golden}, {Shape: in3, Data: batch}} {
				want := net.Forward(x)
				got := res.Runs[r][0]
				if !slices.Equal(got.Shape, want.Shape) {
					t.Fatalf("batch %d: ONNX Runtime output shape %v, Go %v", x.Shape[0], got.Shape, want.Shape)
				}
				d := maxAbsDiff(got.Data, want.Data[:want.Len()])
				t.Logf("batch %d: max |ORT %s − Go| = %.3g (max |Go| %.3g)", x.Shape[0], res.Version, d, maxAbs(want.Data[:want.Len()]))
				if d > parityTol {
					t.Errorf("batch %d: max abs diff %g > %g", x.Shape[0], d, parityTol)
				}
				if r == 0 {
					if err := m.CheckGolden(got.Data); err != nil {
						t.Errorf("ONNX Runtime fails the manifest's golden check: %v", err)
					}
				} else if other := tm.Net(8).Forward(x); maxAbsDiff(got.Data, other.Data[:other.Len()]) < 1e-3 {
					// The comparison would pass whatever ONNX Runtime computed.
					t.Errorf("a network with other weights also matches ONNX Runtime's output")
				}
			}
		})
	}
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
