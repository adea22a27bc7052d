package metaworld

import (
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"robodistill/sim/frames"
)

var update = flag.Bool("update", false, "rewrite golden files")

func newEnv(t testing.TB, name string, opts Options) *Env {
	t.Helper()
	task, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(task, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestTolerance(t *testing.T) {
	for _, tc := range []struct {
		x, lo, hi, margin float64
		s                 Sigmoid
		want              float64
	}{
		{0.03, 0, 0.05, 0.5, LongTail, 1},   // inside the bounds
		{0.55, 0, 0.05, 0.5, LongTail, 0.1}, // at the margin: value_at_margin
		// d = (0.3-0.05)/0.5 = 0.5, scale = sqrt(1/0.1-1) = 3, 1/((0.5*3)^2+1) = 1/3.25
		{0.3, 0, 0.05, 0.5, LongTail, 1 / 3.25},
		{0.3, 0, 0.05, 0, LongTail, 0}, // margin 0 is a step
		// gaussian: d = 1 -> exp(-0.5 * (sqrt(-2 ln 0.1))^2) = 0.1
		{-1, 0, 0, 1, Gaussian, 0.1},
		// reciprocal: d = 0.5, scale 9 -> 1/(4.5+1)
		{1.5, 0, 1, 1, Reciprocal, 1 / 5.5},
		// linear: d = 0.5, scale 0.9 -> 1-0.45
		{1.5, 0, 1, 1, Linear, 0.55},
	} {
		if got := Tolerance(tc.x, tc.lo, tc.hi, tc.margin, tc.s); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Tolerance(%v, %v, %v, %v, %v) = %v, want %v", tc.x, tc.lo, tc.hi, tc.margin, tc.s, got, tc.want)
		}
	}
	if got := HamacherProduct(0.5, 0.5); math.Abs(got-0.25/0.75) > 1e-15 {
		t.Errorf("HamacherProduct(0.5, 0.5) = %v", got)
	}
	if got := HamacherProduct(0, 0); got != 0 {
		t.Errorf("HamacherProduct(0, 0) = %v", got)
	}
	if got := RectPrismTolerance(Vec3{0.5, 0.5, 0.5}, Vec3{0, 0, 0}, Vec3{1, 1, 1}); got != 0.125 {
		t.Errorf("RectPrismTolerance inside = %v", got)
	}
	if got := RectPrismTolerance(Vec3{2, 0.5, 0.5}, Vec3{0, 0, 0}, Vec3{1, 1, 1}); got != 1 {
		t.Errorf("RectPrismTolerance outside = %v", got)
	}
}

func TestQuatFromMat(t *testing.T) {
	// Identity -> (0, 0, 0, 1); 90° about z -> (0, 0, sin 45°, cos 45°); 180° about x
	// -> (1, 0, 0, 0) (scipy picks the positive x component).
	s := math.Sqrt(0.5)
	for _, tc := range []struct {
		m    []float64
		want [4]float64
	}{
		{[]float64{1, 0, 0, 0, 1, 0, 0, 0, 1}, [4]float64{0, 0, 0, 1}},
		{[]float64{0, -1, 0, 1, 0, 0, 0, 0, 1}, [4]float64{0, 0, s, s}},
		{[]float64{1, 0, 0, 0, -1, 0, 0, 0, -1}, [4]float64{1, 0, 0, 0}},
	} {
		got := quatFromMat(tc.m)
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("quatFromMat(%v) = %v, want %v", tc.m, got, tc.want)
				break
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range []string{"drawer-open", "drawer-open-v3", "Drawer-Open-v2"} {
		if task, err := Lookup(n); err != nil || task.Name != "drawer-open" {
			t.Errorf("Lookup(%q) = %v, %v", n, task, err)
		}
	}
	_, err := Lookup("fly-to-moon")
	if err == nil || !strings.Contains(err.Error(), "fly-to-moon") || !strings.Contains(err.Error(), "reach") {
		t.Errorf("unknown task error %v should name it and list the known tasks", err)
	}
	seen := map[string]bool{}
	for _, task := range Tasks() {
		if seen[task.Name] || task.Goal == "" || task.Scripted == nil || task.Scene == "" {
			t.Errorf("task %q incomplete or duplicated", task.Name)
		}
		seen[task.Name] = true
	}
}

func TestBadInputs(t *testing.T) {
	task, _ := Lookup("reach")
	// A missing assets folder is a clear error that says where to get them.
	_, err := New(task, Options{Assets: filepath.Join(t.TempDir(), "nowhere")})
	if !errors.Is(err, ErrAssets) || !strings.Contains(err.Error(), "scripts/bootstrap") {
		t.Errorf("missing assets: %v", err)
	}
	t.Setenv(AssetsEnv, "/nonexistent/metaworld")
	if _, err := New(task, Options{}); !errors.Is(err, ErrAssets) || !strings.Contains(err.Error(), AssetsEnv) {
		t.Errorf("bad %s: %v", AssetsEnv, err)
	}
	t.Setenv(AssetsEnv, "")

	// A broken scene names the file and MuJoCo's message.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sawyer_xyz"), 0o755)
	os.MkdirAll(filepath.Join(dir, "objects"), 0o755)
	os.WriteFile(filepath.Join(dir, "sawyer_xyz", "broken.xml"), []byte("<mujoco><worldbody>"), 0o644)
	broken := *task
	broken.Scene = "sawyer_xyz/broken.xml"
	_, err = New(&broken, Options{Assets: dir})
	if err == nil || !strings.Contains(err.Error(), "broken.xml") || !strings.Contains(err.Error(), "XML") {
		t.Errorf("broken scene: %v", err)
	}
	// A scene without the Sawyer's bodies is rejected with the missing names.
	os.WriteFile(filepath.Join(dir, "sawyer_xyz", "empty.xml"), []byte("<mujoco><worldbody><geom type='plane' size='1 1 1'/></worldbody></mujoco>"), 0o644)
	broken.Scene = "sawyer_xyz/empty.xml"
	if _, err = New(&broken, Options{Assets: dir}); err == nil || !strings.Contains(err.Error(), `"hand"`) {
		t.Errorf("scene without a robot: %v", err)
	}
	if _, err := New(task, Options{Rate: 100}); err == nil || !strings.Contains(err.Error(), "100") {
		t.Errorf("bad rate: %v", err)
	}

	e := newEnv(t, "reach", Options{})
	if _, err := e.Reset(1); err != nil {
		t.Fatal(err)
	}
	if err := e.Render("nocam", 32, 32, make([]byte, 32*32*3)); err == nil || !strings.Contains(err.Error(), "corner") {
		t.Errorf("unknown camera: %v (should list the scene's cameras)", err)
	}
	if _, _, _, _, err := e.Step(Action{math.NaN(), 0, 0, 0}); err == nil {
		t.Error("NaN action accepted")
	}
}

func TestEpisodeLength(t *testing.T) {
	for _, tc := range []struct{ rate, steps int }{{80, 500}, {50, 313}} {
		e := newEnv(t, "reach", Options{Rate: tc.rate})
		if e.MaxSteps() != tc.steps {
			t.Fatalf("rate %d: %d steps, want %d", tc.rate, e.MaxSteps(), tc.steps)
		}
		if _, err := e.Reset(0); err != nil {
			t.Fatal(err)
		}
		var end bool
		var err error
		n := 0
		for !end {
			if _, _, _, end, err = e.Step(Action{}); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != tc.steps {
			t.Fatalf("episode ended after %d steps", n)
		}
		if _, _, _, _, err := e.Step(Action{}); !errors.Is(err, ErrEpisodeOver) {
			t.Fatalf("step past the end: %v", err)
		}
	}
}

// A unit action moves the hand target at the same velocity at 80 and 50 Hz, and actions
// are clipped to [-1, 1].
func TestRateVelocity(t *testing.T) {
	move := func(rate, steps int, a Action) Vec3 {
		e := newEnv(t, "reach", Options{Rate: rate})
		if _, err := e.Reset(3); err != nil {
			t.Fatal(err)
		}
		start := e.MocapPos()
		for i := 0; i < steps; i++ {
			if _, _, _, _, err := e.Step(a); err != nil {
				t.Fatal(err)
			}
		}
		return e.MocapPos().Sub(start)
	}
	// 0.2 s: 16 steps at 80 Hz, 10 at 50 Hz; 0.8 m/s in y -> 0.16 m.
	d80 := move(80, 16, Action{0, 1, 0, 0})
	d50 := move(50, 10, Action{0, 5, 0, 0}) // clipped to 1
	if math.Abs(d80[1]-0.16) > 1e-9 || math.Abs(d50[1]-0.16) > 1e-9 {
		t.Fatalf("mocap moved %v at 80 Hz and %v at 50 Hz, want 0.16 m in y", d80, d50)
	}
}

// KinematicsOnly skips MetaWorld's full mj_forward after each step. The poses it gives are
// the same, so the first steps agree to solver tolerance; the warm start it leaves behind
// differs, and contact-rich trajectories can then drift apart. This measures both.
func TestKinematicsOnlyDrift(t *testing.T) {
	for _, task := range Tasks() {
		t.Run(task.Name, func(t *testing.T) {
			fast := newEnv(t, task.Name, Options{KinematicsOnly: true})
			full := newEnv(t, task.Name, Options{})
			of, _ := fast.Reset(11)
			ol, _ := full.Reset(11)
			if of != ol {
				t.Fatal("reset observations differ")
			}
			worstObs, worstR, early := 0.0, 0.0, 0.0
			for i := 0; i < 150; i++ {
				a := task.Scripted(&ol)
				a[0] += 0.3 * math.Sin(float64(i)/7)
				var rf, rl float64
				var err error
				if of, rf, _, _, err = fast.Step(a); err != nil {
					t.Fatal(err)
				}
				if ol, rl, _, _, err = full.Step(a); err != nil {
					t.Fatal(err)
				}
				for k := range of {
					worstObs = math.Max(worstObs, math.Abs(of[k]-ol[k]))
				}
				worstR = math.Max(worstR, math.Abs(rf-rl))
				if i == 9 {
					early = worstObs
				}
			}
			t.Logf("max |obs diff|: %.3g in 10 steps, %.3g in 150; max |reward diff| %.3g", early, worstObs, worstR)
			if early > 1e-6 {
				t.Fatalf("kinematics-only poses differ by %.3g within 10 steps", early)
			}
		})
	}
}

// Same task, seed and actions: bit-identical observations and frames, also with several
// environments stepping in parallel.
func TestDeterminismParallel(t *testing.T) {
	type result struct {
		obs   []Obs
		frame []byte
	}
	run := func(name string) (result, error) {
		task, err := Lookup(name)
		if err != nil {
			return result{}, err
		}
		e, err := New(task, Options{})
		if err != nil {
			return result{}, err
		}
		defer e.Close()
		o, err := e.Reset(42)
		if err != nil {
			return result{}, err
		}
		var res result
		for i := 0; i < 60; i++ {
			if o, _, _, _, err = e.Step(task.Scripted(&o)); err != nil {
				return result{}, err
			}
			res.obs = append(res.obs, o)
		}
		res.frame = make([]byte, 48*48*3)
		return res, e.Render("corner", 48, 48, res.frame)
	}
	names := []string{"reach", "drawer-open", "reach", "drawer-open"}
	got := make([]result, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = run(n) }()
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	for i := 2; i < 4; i++ {
		ref, err := run(names[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []result{got[i], got[i-2]} {
			for k := range ref.obs {
				if g.obs[k] != ref.obs[k] {
					t.Fatalf("%s: step %d observation differs between runs", names[i], k)
				}
			}
			if string(g.frame) != string(ref.frame) {
				t.Fatalf("%s: frames differ between runs", names[i])
			}
		}
	}
}

// The render of a known state matches a golden PNG within a small tolerance (llvmpipe is
// deterministic on one machine; the tolerance absorbs Mesa version differences).
func TestGoldenFrames(t *testing.T) {
	for _, tc := range []struct {
		task, camera string
		seed         uint64
		steps, size  int
	}{
		{"reach", "corner", 0, 0, 64},
		{"drawer-open", "topview", 1, 30, 64},
	} {
		e := newEnv(t, tc.task, Options{})
		o, err := e.Reset(tc.seed)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < tc.steps; i++ {
			if o, _, _, _, err = e.Step(e.Task().Scripted(&o)); err != nil {
				t.Fatal(err)
			}
		}
		f := frames.NewRGB(tc.size, tc.size)
		if err := e.Render(tc.camera, tc.size, tc.size, f.Pix); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tc.task+"_"+tc.camera+".golden.png")
		if *update {
			if err := f.WritePNG(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := frames.ReadPNG(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		mean, frac, err := frames.Diff(f, want, 24)
		if err != nil {
			t.Fatal(err)
		}
		if mean > 2 || frac > 0.02 {
			t.Errorf("%s: differs from %s: mean abs diff %.2f, %.1f%% of pixels off by more than 24", tc.task, path, mean, 100*frac)
		}
	}
}

// Corner cameras are defined upside down by MetaWorld; Render turns them upright unless
// RawCameras is set.
func TestCornerCameraUpright(t *testing.T) {
	up := newEnv(t, "reach", Options{})
	raw := newEnv(t, "reach", Options{RawCameras: true})
	const n = 32
	a, b := frames.NewRGB(n, n), frames.NewRGB(n, n)
	for _, e := range []*Env{up, raw} {
		if _, err := e.Reset(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := up.Render("corner", n, n, a.Pix); err != nil {
		t.Fatal(err)
	}
	if err := raw.Render("corner", n, n, b.Pix); err != nil {
		t.Fatal(err)
	}
	b.Rotate180()
	if string(a.Pix) != string(b.Pix) {
		t.Fatal("upright corner frame is not the raw frame turned by 180°")
	}
}

// Env.Step is the training hot path: it allocates nothing in steady state.
func TestStepAllocs(t *testing.T) {
	for _, task := range Tasks() {
		e := newEnv(t, task.Name, Options{})
		o, err := e.Reset(0)
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if o, _, _, _, err = e.Step(task.Scripted(&o)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per step", task.Name, allocs)
		}
	}
}
