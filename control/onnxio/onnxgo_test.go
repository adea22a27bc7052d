package onnxio_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

// TestOnnxGo decodes every exported model with onnx-go v0.5.0 into its Gorgonia backend
// (the runtime the daemon starts from), runs the golden input twice at batch 1 and
// compares with the Go forward pass. Running twice catches state kept between runs, such
// as the bias drift onnx-go's Gemm has. A model onnx-go cannot run (Model.OnnxGoError)
// must fail its first run with that error.
func TestOnnxGo(t *testing.T) {
	dir := t.TempDir()
	for _, tm := range testModels {
		t.Run(tm.Name, func(t *testing.T) {
			p := filepath.Join(dir, tm.Name+".onnx")
			net := tm.Net(7)
			m, err := onnxio.Save(p, net, tm.Manifest())
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			backend := gorgonnx.NewGraph()
			model := onnxgo.NewModel(backend)
			if err := model.UnmarshalBinary(data); err != nil {
				t.Fatalf("onnx-go cannot decode the model: %v", err)
			}
			if len(model.Input) != 1 || len(model.Output) != 1 {
				t.Fatalf("onnx-go sees %d inputs and %d outputs, want 1 and 1", len(model.Input), len(model.Output))
			}
			shape := append([]int{1}, m.Input.Shape...)
			x, err := onnxio.GoldenInput(m.Golden.Pattern, numel(shape))
			if err != nil {
				t.Fatal(err)
			}
			want := net.Forward(&nn.Tensor{Shape: shape, Data: x})
			for run := 1; run <= 2; run++ {
				in := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), x...)))
				if err := model.SetInput(0, in); err != nil {
					t.Fatal(err)
				}
				err := backend.Run()
				if tm.OnnxGoError != "" {
					// A model onnx-go cannot run: it must say so, not compute something.
					if err == nil || !strings.Contains(err.Error(), tm.OnnxGoError) {
						t.Fatalf("onnx-go run: error %v, want one containing %q", err, tm.OnnxGoError)
					}
					t.Logf("onnx-go refuses the model: %v", err)
					return
				}
				if err != nil {
					t.Fatalf("onnx-go run %d: %v", run, err)
				}
				outs, err := model.GetOutputTensors()
				if err != nil {
					t.Fatal(err)
				}
				got, ok := outs[0].Data().([]float32)
				if !ok {
					t.Fatalf("onnx-go output is %T", outs[0].Data())
				}
				d := maxAbsDiff(got, want.Data[:want.Len()])
				t.Logf("run %d: output shape %v, max |onnx-go − Go| = %.3g", run, outs[0].Shape(), d)
				if d > parityTol {
					t.Errorf("run %d: max abs diff %g > %g", run, d, parityTol)
				}
			}
		})
	}
}
