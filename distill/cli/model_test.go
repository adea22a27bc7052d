package cli

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

// modelFixture exports a small policy (4 → 8 → 2) and returns its path and network.
func modelFixture(t *testing.T) (string, *nn.Sequential) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	net := nn.NewSequential(nn.NewLinear(4, 8, rng), nn.NewReLU(), nn.NewLinear(8, 2, rng), nn.NewTanh())
	p := filepath.Join(t.TempDir(), "policy.onnx")
	_, err := onnxio.Save(p, net, onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy, Task: "reach-v2",
		Input:       onnxio.Input{Name: "obs", Shape: []int{4}, Observation: "test-4"},
		Output:      onnxio.Output{Name: "action", Shape: []int{2}, Meaning: "test actions"},
		Training:    onnxio.Training{Labeler: "ground-truth"},
		CodeVersion: "test", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, net
}

func TestModelCheck(t *testing.T) {
	p, _ := modelFixture(t)
	code, out, stderr := run(t, "model", "check", p, "--runs", "20", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s ModelCheck
	if err := json.Unmarshal([]byte(out), &s); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("stdout is not one JSON line: %q (%v)", out, err)
	}
	if s.SelfCheck != "ok" || s.Kind != onnxio.KindPolicy || len(s.SHA256) != 64 || s.Backend != "robodistill" ||
		!slices.Equal(s.Ops, []string{"MatMul", "Add", "Relu", "Tanh"}) || s.Runs != 20 || s.MedianMs <= 0 || s.P99Ms < s.MedianMs ||
		s.GoldenMaxDiff > s.Tolerance {
		t.Errorf("summary %+v", s)
	}
	if nn.CurrentBackend() == nn.OpenBLAS && s.AllocsPerRun > 0.5 {
		t.Errorf("%v allocations per run", s.AllocsPerRun)
	}

	code, out, stderr = run(t, "model", "check", p, "--runs", "5", "--backend", "gorgonia")
	if code != 0 {
		t.Fatalf("gorgonia: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"policy model for reach-v2, sha256 ", "input  obs [4] observation test-4", "ops MatMul Add Relu Tanh (backend gorgonia)", "self-check ok", "median"} {
		if !strings.Contains(out, want) {
			t.Errorf("human output lacks %q:\n%s", want, out)
		}
	}

	// A changed byte fails the check.
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "model", "check", p); code != 1 || !strings.Contains(stderr, "sha256 does not match") {
		t.Errorf("corrupt model: exit %d, stderr %q", code, stderr)
	}
}

func TestModelRun(t *testing.T) {
	p, net := modelFixture(t)
	dir := t.TempDir()
	x := []float32{0.5, -1, 0.25, 2, -0.5, 0, 1, -2} // two samples
	want := slices.Clone(net.Forward(&nn.Tensor{Shape: []int{2, 4}, Data: x}).Data[:4])

	js, _ := json.Marshal(x[:4])
	jsonIn := filepath.Join(dir, "obs.json")
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	f32In := filepath.Join(dir, "obs.f32")
	for f, b := range map[string][]byte{jsonIn: js, f32In: raw} {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	code, out, stderr := run(t, "model", "run", p, "--input", jsonIn)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var y []float32
	if err := json.Unmarshal([]byte(out), &y); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	// One sample goes through GEMV, whose summation order differs from GEMM's and between
	// its two transposes (ONNX MatMul stores Wᵀ): equal to rounding.
	if !near(y, want[:2], 1e-6) {
		t.Errorf("batch 1: %v, want %v", y, want[:2])
	}

	code, out, stderr = run(t, "model", "run", p, "--input", f32In, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r ModelRun
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Shape, []int{2, 2}) || !slices.Equal(r.Output, want) {
		t.Errorf("batch 2: %+v, want shape [2 2] and %v", r, want)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("[1, 2, 3]"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "run", p}, `required flag(s) "input" not set`},
		{[]string{"model", "run", p, "--input", bad}, "--input: 3 values is not a whole number of samples of input.shape [4] (4 values each)"},
		{[]string{"model", "run", p, "--input", filepath.Join(dir, "none.json")}, "no such file"},
		{[]string{"model", "check", p, "--backend", "tflite"}, `backend: unknown value "tflite"`},
		{[]string{"model", "check"}, "accepts 1 arg(s), received 0"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBenchModelSmall(t *testing.T) {
	code, stdout, stderr := run(t, "bench", "model", "--cycles", "20", "--ensemble", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := oneJSON(t, stdout)
	res := m["results"].([]any)
	if len(res) != 3 {
		t.Fatalf("results %v", res)
	}
	native := res[0].(map[string]any)
	if native["allocs_per_cycle"].(float64) != 0 || native["p50_ms"].(float64) <= 0 {
		t.Errorf("native backend: %v", native)
	}
}

func near(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i])-float64(b[i])) > tol {
			return false
		}
	}
	return true
}

func TestBenchPolicySmall(t *testing.T) {
	code, stdout, stderr := run(t, "bench", "policy", "--updates", "10", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := oneJSON(t, stdout)
	if m["go_p50_ms"].(float64) <= 0 || m["torch_p50_ms"].(float64) <= 0 {
		t.Errorf("summary %v", m)
	}
	if code, _, _ := run(t, "bench", "policy", "--updates", "3"); code == 0 {
		t.Error("--updates 3 accepted")
	}
}
