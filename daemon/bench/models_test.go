package bench

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/daemon/config"
	"robodistill/vision"
)

// The exported models load in the daemon's runtime with every check it makes (hash,
// embedded manifest, golden self-check, ensemble membership), have the real shapes, and
// a second export is byte-identical.
func TestExportModels(t *testing.T) {
	dir := t.TempDir()
	ms, err := ExportModels(dir, ModelSpec{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := runtime.LoadEnsemble(ms.Reward, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]float32, 3*64*64)
	for i := range frame {
		frame[i] = float32(i%255) / 255
	}
	mean, std, err := e.Run(frame)
	if err != nil || math.IsNaN(mean) || std == 0 {
		t.Errorf("ensemble: mean %v std %v err %v (3 different members should disagree)", mean, std, err)
	}
	v, err := onnxio.Verify(onnxio.MemberPath(ms.Reward, 2))
	if err != nil {
		t.Fatal(err)
	}
	man := v.Manifest
	if man.Ensemble == nil || man.Ensemble.Size != 3 || man.Input.Vision == nil || !man.Input.Vision.Equal(vision.DefaultConfig()) {
		t.Errorf("reward member 2 manifest %+v", man)
	}
	// distill/reward.NewNet's cnn2 on 64×64: conv 16 k5 s2 → 30, conv 32 k3 s2 → 14, 6272 → 64 → 1.
	if ops := strings.Join(v.Model.Graph.Ops(), ","); !strings.Contains(ops, "Conv") {
		t.Errorf("reward ops %s", ops)
	}
	if got := v.Model.Graph.Initializers; len(got) != 8 || got[4].Dims[0] != 6272 || got[4].Dims[1] != 64 {
		t.Errorf("reward initializers: %d, linear %v", len(got), got[4].Dims)
	}

	p, err := runtime.Load(ms.Policy, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pm := p.Manifest()
	if pm.Control == nil || pm.Control.RateHz != 50 || math.Abs(pm.Control.ActionScale-0.016) > 1e-12 ||
		pm.Input.Observation != ObservationLayout || pm.Task != "reach" {
		t.Errorf("policy manifest %+v control %+v", pm, pm.Control)
	}
	obs := make([]float32, ObsDim)
	y, err := p.Run(obs, 1)
	if err != nil || len(y) != ActDim {
		t.Fatalf("policy: %v %v", y, err)
	}
	pv, _ := onnxio.Verify(ms.Policy)
	if got := pv.Model.Graph.Initializers; len(got) != 6 || got[0].Dims[0] != 39 || got[0].Dims[1] != 256 || got[2].Dims[1] != 256 || got[4].Dims[1] != 4 {
		t.Errorf("policy initializers %v", got)
	}

	again, err := ExportModels(filepath.Join(dir, "again"), ModelSpec{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{ms.Reward, again.Reward}, {ms.Policy, again.Policy}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ", pair[0], pair[1])
		}
	}

	for _, tc := range []struct {
		spec ModelSpec
		want string
	}{
		{ModelSpec{Members: 33}, "bench.ExportModels: members: 33 outside 1..32"},
		{ModelSpec{Rate: 2000}, "bench.ExportModels: rate: 2000 Hz outside 1..1000"},
		{ModelSpec{Vision: &vision.Config{Version: 1, Width: 4, Height: 4, Flip: "none", Channels: "rgb", Scale: 1, Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}}},
			"bench.ExportModels: frames of [3 4 4] are too small for the reward network: "},
	} {
		_, err := ExportModels(t.TempDir(), tc.spec)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q…", tc.spec, err, tc.want)
		}
	}
}

// Rerate changes only the control section: same weights, same velocity per action.
func TestRerate(t *testing.T) {
	dir := t.TempDir()
	ms, err := ExportModels(dir, ModelSpec{Members: 1})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "policy-500hz.onnx")
	if err := Rerate(ms.Policy, dst, 500); err != nil {
		t.Fatal(err)
	}
	a, err := runtime.Load(ms.Policy, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := runtime.Load(dst, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Manifest().Control
	if c.RateHz != 500 || math.Abs(c.ActionScale*500-MetaWorldSpeed) > 1e-12 {
		t.Errorf("control %+v", c)
	}
	obs := make([]float32, ObsDim)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range obs {
		obs[i] = rng.Float32()
	}
	ya, _ := a.Run(obs, 1)
	ya = append([]float32(nil), ya...)
	yb, _ := b.Run(obs, 1)
	for i := range ya {
		if ya[i] != yb[i] {
			t.Fatalf("outputs differ: %v vs %v", ya, yb)
		}
	}
	if err := Rerate(ms.Reward, filepath.Join(dir, "x.onnx"), 100); err == nil || !strings.Contains(err.Error(), "is not a policy with a control section") {
		t.Errorf("rerating a reward model: %v", err)
	}
	if err := Rerate(ms.Policy, filepath.Join(dir, "x.onnx"), 0); err == nil || err.Error() != "bench.Rerate: rate 0 Hz outside 1..1000" {
		t.Errorf("rate 0: %v", err)
	}
}

// The generated configuration is one the daemon's own loader accepts, with the values
// the harness means.
func TestDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	ms, err := ExportModels(filepath.Join(dir, "m dir"), ModelSpec{Members: 1})
	if err != nil {
		t.Fatal(err)
	}
	dc := DaemonConfig{MasterURI: "http://127.0.0.1:12345/", Host: "127.0.0.1", Node: "robodistilld", Rate: 50,
		Reward: ms.Reward, Policy: ms.Policy, Camera: 224, Listen: "127.0.0.1:9999"}
	for _, logDir := range []string{"", filepath.Join(dir, "log")} {
		dc.LogDir = logDir
		cfg, err := config.Parse(dc.YAML())
		if err != nil {
			t.Fatalf("%v\n%s", err, dc.YAML())
		}
		if cfg.ROS.MasterURI != dc.MasterURI || cfg.ROS.Host != "127.0.0.1" || cfg.Loop.RateHz != 50 || cfg.Models.Reward != ms.Reward ||
			cfg.Models.Policy != ms.Policy || cfg.Vision.CameraWidth != 224 || cfg.Vision.CameraHeight != 224 ||
			cfg.Vision.CameraEncoding != "rgb8" || cfg.HTTP.Listen != dc.Listen || cfg.Log.Enabled != (logDir != "") ||
			(logDir != "" && cfg.Log.Dir != logDir) {
			t.Errorf("parsed %+v", cfg)
		}
	}
	// The --set overrides runDaemon passes.
	path := filepath.Join(dir, "daemon.yaml")
	if err := os.WriteFile(path, dc.YAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "m dir", "policy-100hz.onnx")
	if err := Rerate(ms.Policy, dst, 100); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWithOverrides(path, []string{"loop.rate_hz=100", "models.policy=" + yamlString(dst),
		"http.listen=" + yamlString("127.0.0.1:1234"), "log.enabled=false"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Loop.RateHz != 100 || cfg.Models.Policy != dst || cfg.HTTP.Listen != "127.0.0.1:1234" || cfg.Log.Enabled {
		t.Errorf("overridden %+v", cfg)
	}
}
