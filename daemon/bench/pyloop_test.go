package bench

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/runtime"
	"robodistill/vision"
)

const python = "/usr/bin/python3"

// pyScript writes the embedded pyloop.py and checks that Debian's Python has what it
// imports; a missing package is a failure that says what to install.
func pyScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pyloop.py")
	if err := os.WriteFile(path, PyLoop(), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(python, path, "--check").CombinedOutput(); err != nil {
		t.Fatalf("pyloop.py --check: %v: %s\ninstall python3-rospy python3-torch python3-onnx python3-opencv (scripts/bootstrap)", err, out)
	}
	return path
}

func writeF32(t *testing.T, path string, v []float32) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// The Python loop's preprocessing gives vision/'s tensor bit for bit (the same OpenCV
// INTER_AREA, the same float64 normalisation table) for the bridge's frames and for the
// paths a robot's camera may take: crop, flips, bgr8, gray, mono8, padded rows.
func TestPyPreprocessMatchesVision(t *testing.T) {
	script := pyScript(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	type frame struct {
		enc          string
		w, h, step   int
		crop         *vision.Rect
		flip         vision.Flip
		channels     vision.Channels
		outW, outH   int
		mean, stdDev []float64
	}
	for _, f := range []frame{
		{enc: "rgb8", w: 224, h: 224, step: 672, flip: "none", channels: "rgb", outW: 64, outH: 64},
		{enc: "rgb8", w: 480, h: 480, step: 1440, flip: "vertical", channels: "rgb", outW: 64, outH: 64, mean: []float64{0.5, 0.4, 0.3}, stdDev: []float64{0.2, 0.25, 0.3}},
		{enc: "bgr8", w: 100, h: 80, step: 304, crop: &vision.Rect{X: 10, Y: 5, Width: 60, Height: 50}, flip: "both", channels: "rgb", outW: 24, outH: 20},
		{enc: "rgb8", w: 64, h: 48, step: 192, flip: "horizontal", channels: "bgr", outW: 32, outH: 32},
		{enc: "rgb8", w: 90, h: 90, step: 270, channels: "gray", flip: "none", outW: 30, outH: 30},
		{enc: "mono8", w: 77, h: 33, step: 80, channels: "rgb", flip: "none", outW: 16, outH: 8},
	} {
		vc := vision.DefaultConfig()
		vc.Width, vc.Height, vc.Crop, vc.Flip, vc.Channels = f.outW, f.outH, f.crop, f.flip, f.channels
		n := f.channels.Count()
		vc.Mean, vc.Std = make([]float64, n), make([]float64, n)
		for c := range n {
			vc.Std[c] = 1
			if f.mean != nil {
				vc.Mean[c], vc.Std[c] = f.mean[c], f.stdDev[c]
			}
		}
		data := make([]byte, f.step*f.h)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		p, err := vision.New(vc)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, p.Len())
		if err := p.Process(vision.ImageView{Encoding: f.enc, Width: f.w, Height: f.h, Step: f.step, Data: data}, want); err != nil {
			t.Fatal(err)
		}
		p.Close()

		raw, req, out := filepath.Join(dir, "frame.bin"), filepath.Join(dir, "req.json"), filepath.Join(dir, "out.f32")
		if err := os.WriteFile(raw, data, 0o644); err != nil {
			t.Fatal(err)
		}
		vj, _ := vc.JSON()
		r, _ := json.Marshal(map[string]any{"vision": json.RawMessage(vj), "encoding": f.enc, "width": f.w, "height": f.h,
			"step": f.step, "data_file": raw, "out_file": out})
		if err := os.WriteFile(req, r, 0o644); err != nil {
			t.Fatal(err)
		}
		if o, err := exec.Command(python, script, "--preprocess", req).CombinedOutput(); err != nil {
			t.Fatalf("%+v: pyloop --preprocess: %v: %s", f, err, o)
		}
		got := readF32(t, out)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d values from Python, %d from vision", f, len(got), len(want))
		}
		diffs := 0
		for i := range got {
			if got[i] != want[i] {
				diffs++
			}
		}
		if diffs > 0 {
			t.Errorf("%s %dx%d → %dx%d %s flip %s: %d of %d values differ", f.enc, f.w, f.h, f.outW, f.outH, f.channels, f.flip, diffs, len(got))
		}
	}
}

// The torch modules pyloop builds from the ONNX files compute what the daemon's runtime
// computes, on inputs other than the golden one.
func TestPyModelsMatchRuntime(t *testing.T) {
	script := pyScript(t)
	dir := t.TempDir()
	ms, err := ExportModels(filepath.Join(dir, "models"), ModelSpec{Members: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		path string
		per  int
	}{{ms.Reward, 3 * 64 * 64}, {ms.Reward[:len(ms.Reward)-len(".onnx")] + ".1.onnx", 3 * 64 * 64}, {ms.Policy, ObsDim}} {
		const batch = 3
		in := make([]float32, batch*tc.per)
		for i := range in {
			in[i] = rng.Float32()*2 - 1
		}
		m, err := runtime.Load(tc.path, runtime.Options{MaxBatch: batch})
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Run(in, batch)
		if err != nil {
			t.Fatal(err)
		}
		inF, outF := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.f32")
		writeF32(t, inF, in)
		if o, err := exec.Command(python, script, "--forward", tc.path, inF, outF).CombinedOutput(); err != nil {
			t.Fatalf("pyloop --forward %s: %v: %s", tc.path, err, o)
		}
		got := readF32(t, outF)
		if len(got) != len(want) {
			t.Fatalf("%s: %d outputs from torch, %d from the runtime", tc.path, len(got), len(want))
		}
		worst := 0.0
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		t.Logf("%s: max |torch − runtime| = %.2g over %d outputs", filepath.Base(tc.path), worst, len(got))
		if worst > 1e-4 {
			t.Errorf("%s: torch and the runtime differ by %g", tc.path, worst)
		}
	}
	// A model whose sidecar names another hash is refused, as the daemon refuses it.
	side := ms.Policy + ".json"
	b, _ := os.ReadFile(side)
	if err := os.WriteFile(side, []byte(strings.Replace(string(b), `"sha256": "`, `"sha256": "0`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command(python, script, "--forward", ms.Policy, filepath.Join(dir, "in.f32"), filepath.Join(dir, "o.f32")).CombinedOutput()
	if err == nil || !strings.Contains(string(o), "sidecar says") {
		t.Errorf("tampered sidecar: %v: %s", err, o)
	}
}
