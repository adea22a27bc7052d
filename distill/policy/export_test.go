package policy

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

func TestExport(t *testing.T) {
	ag, err := NewAgent(DefaultSAC(), 39, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Task: "reach", ObsDim: 39, ActDim: 4, MaxSteps: 313, Rate: 50, Observation: ObservationMetaWorld,
		Action: "MetaWorld action at 50 Hz"}
	path := filepath.Join(t.TempDir(), "policy.onnx")
	if _, err := Export(path, ag, ExportInfo{Spec: spec, Labeler: "ground-truth", CodeVersion: "test"}); err != nil {
		t.Fatal(err)
	}
	v, err := onnxio.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	m := v.Manifest
	if m.Kind != onnxio.KindPolicy || m.Task != "reach" || m.Input.Name != "obs" || !slices.Equal(m.Input.Shape, []int{39}) ||
		m.Input.Observation != "metaworld-v2-39" || m.Output.Name != "action" || !slices.Equal(m.Output.Shape, []int{4}) ||
		m.Training.Labeler != "ground-truth" || !strings.Contains(m.Output.Meaning, "50 Hz") {
		t.Errorf("manifest %+v", m)
	}

	// The manifest's golden output (the exported network on the lattice input) is the
	// agent's deterministic action for that input.
	golden, err := onnxio.GoldenInput(m.Golden.Pattern, 39)
	if err != nil {
		t.Fatal(err)
	}
	act := make([]float32, 4)
	ag.Act(golden, 1, true, act)
	if !slices.Equal(act, m.Golden.Output) {
		t.Errorf("deterministic action %v, exported golden output %v", act, m.Golden.Output)
	}

	// And on a batch of random observations: to float32 rounding (OpenBLAS chooses its
	// kernels by the output width, 4 here and 8 in the actor; at batch 1 they agree bit
	// for bit, above).
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 17
	obs := make([]float32, n*39)
	for i := range obs {
		obs[i] = float32(rng.NormFloat64())
	}
	want := make([]float32, n*4)
	ag.Act(obs, n, true, want)
	got := ag.DeterministicNet().Forward(&nn.Tensor{Shape: []int{n, 39}, Data: obs})
	var worst float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got.Data[i]-want[i])))
	}
	if worst > 1e-6 {
		t.Errorf("exported network differs from the deterministic actor by %g", worst)
	}
	t.Logf("exported network vs deterministic actor, batch %d: max difference %g", n, worst)

	// A stochastic action is a sample around it, inside [-1, 1].
	ag.Act(obs, n, false, want)
	for _, v := range want {
		if v < -1 || v > 1 {
			t.Fatalf("action %v outside [-1, 1]", v)
		}
	}

	if _, err := Export(path, ag, ExportInfo{Spec: Spec{ObsDim: 2, ActDim: 1}}); err == nil {
		t.Error("a spec of other dimensions was accepted")
	}
}
