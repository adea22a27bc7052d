package mujoco

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func load(t *testing.T) (*Model, *Data) {
	t.Helper()
	m, err := Load("testdata/pendulum.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewData(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); m.Close() })
	return m, d
}

func TestVersion(t *testing.T) {
	if v := Version(); v != "2.2.2" {
		t.Fatalf("MuJoCo version %q, want 2.2.2 (Debian bookworm's libmujoco-dev)", v)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.xml")
	os.WriteFile(broken, []byte("<mujoco><worldbody><body><geom type='sphere'/></body></worldbod"), 0o644)
	badRef := filepath.Join(dir, "badref.xml")
	os.WriteFile(badRef, []byte(`<mujoco><worldbody><body><joint type="hinge"/><geom type="mesh" mesh="nothere"/></body></worldbody></mujoco>`), 0o644)
	missingInclude := filepath.Join(dir, "include.xml")
	os.WriteFile(missingInclude, []byte(`<mujoco><include file="does_not_exist.xml"/></mujoco>`), 0o644)
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing.xml"), "no such file"},
		{broken, "XML parse error"},
		{badRef, "nothere"},
		{missingInclude, "does_not_exist.xml"},
	} {
		_, err := Load(tc.path)
		if err == nil {
			t.Fatalf("Load(%s): no error", tc.path)
		}
		if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %q, want the file name and %q", tc.path, err, tc.want)
		}
	}
	// MuJoCo must not have written its log into the working directory.
	if _, err := os.Stat("MUJOCO_LOG.TXT"); err == nil {
		t.Error("MUJOCO_LOG.TXT written")
	}
}

func TestNames(t *testing.T) {
	m, _ := load(t)
	if id, err := m.ID(ObjBody, "pole"); err != nil || m.Name(ObjBody, id) != "pole" {
		t.Fatalf("pole: id %d err %v", id, err)
	}
	_, err := m.ID(ObjCamera, "nope")
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Type != ObjCamera || !strings.Contains(err.Error(), `camera named "nope"`) {
		t.Fatalf("missing camera: %v", err)
	}
	if got := m.Names(ObjCamera); len(got) != 1 || got[0] != "front" {
		t.Fatalf("cameras %v", got)
	}
}

func TestStepAndKinematics(t *testing.T) {
	m, d := load(t)
	d.Ctrl()[0] = 0.5
	copy(d.MocapPos(0), []float64{0.1, 0.2, 0.3})
	if err := d.Step(100); err != nil {
		t.Fatal(err)
	}
	if math.Abs(d.Time()-0.2) > 1e-12 {
		t.Fatalf("time %v after 100 steps of 2 ms", d.Time())
	}
	if d.Qpos()[0] == 0 {
		t.Fatal("torque did not move the pole")
	}
	// After mj_step the poses lag the integrated state; the kinematics pass must give
	// exactly what a full forward pass gives.
	tip := m.MustID(ObjSite, "tip")
	if err := d.Kinematics(); err != nil {
		t.Fatal(err)
	}
	kin := append([]float64(nil), d.SiteXPos(tip)...)
	mocapBody := m.MustID(ObjBody, "target")
	kinMocap := append([]float64(nil), d.XPos(mocapBody)...)
	if err := d.Forward(); err != nil {
		t.Fatal(err)
	}
	for i := range kin {
		if kin[i] != d.SiteXPos(tip)[i] || kinMocap[i] != d.XPos(mocapBody)[i] {
			t.Fatalf("kinematics %v %v != forward %v %v", kin, kinMocap, d.SiteXPos(tip), d.XPos(mocapBody))
		}
	}
	if kinMocap[2] != 0.3 {
		t.Fatalf("mocap body at %v, want the mocap target", kinMocap)
	}
	if err := d.Reset(); err != nil || d.Qpos()[0] != 0 || d.Time() != 0 {
		t.Fatalf("reset: %v qpos %v", err, d.Qpos())
	}
}

func TestRender(t *testing.T) {
	m, d := load(t)
	if err := d.Forward(); err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(m, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cam := m.MustID(ObjCamera, "front")
	const w, h = 96, 64
	img := make([]byte, w*h*3)
	if err := r.Render(d, cam, w, h, img); err != nil {
		t.Fatal(err)
	}
	// The floor is below the horizon: the bottom row must be the grey floor and the top
	// row the (darker) background, i.e. the first row is the top of the image.
	lum := func(y int) float64 {
		s := 0
		for x := 0; x < w; x++ {
			p := img[3*(y*w+x):]
			s += int(p[0]) + int(p[1]) + int(p[2])
		}
		return float64(s) / float64(3*w)
	}
	if top, bottom := lum(0), lum(h-1); !(bottom > top+20) {
		t.Fatalf("row luminance top %.1f bottom %.1f: image upside down or empty", top, bottom)
	}
	// The red pole is visible somewhere.
	red := 0
	for i := 0; i < w*h; i++ {
		if r, g, b := int(img[3*i]), int(img[3*i+1]), int(img[3*i+2]); r > 60 && r > 2*g && r > 2*b {
			red++
		}
	}
	if red < 20 {
		t.Fatalf("only %d red pixels: pole not rendered", red)
	}
	// Bad sizes and buffers are errors, not crashes.
	if err := r.Render(d, cam, MaxRenderSize+1, 10, make([]byte, (MaxRenderSize+1)*30)); err == nil {
		t.Error("oversized render accepted")
	}
	if err := r.Render(d, cam, w, h, img[:10]); err == nil {
		t.Error("short buffer accepted")
	}
	r.Close()
	if err := r.Render(d, cam, w, h, img); !errors.Is(err, ErrClosed) {
		t.Errorf("render after close: %v", err)
	}
}

// Several renderers on several goroutines (each its own GL context and OS thread) give the
// same pixels as one.
func TestRenderParallelDeterministic(t *testing.T) {
	m, d := load(t)
	d.Ctrl()[0] = 1
	if err := d.Step(200); err != nil {
		t.Fatal(err)
	}
	if err := d.Forward(); err != nil {
		t.Fatal(err)
	}
	cam := m.MustID(ObjCamera, "front")
	const n, size = 4, 64
	out := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dd, err := NewData(m)
			if err != nil {
				errs[i] = err
				return
			}
			defer dd.Close()
			dd.CopyFrom(d)
			r, err := NewRenderer(m, RenderOptions{MaxWidth: size, MaxHeight: size})
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			out[i] = make([]byte, size*size*3)
			errs[i] = r.Render(dd, cam, size, size, out[i])
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if string(out[i]) != string(out[0]) {
			t.Fatalf("renderer %d differs from renderer 0", i)
		}
	}
}

func TestCStepLoop(t *testing.T) {
	_, d := load(t)
	if _, err := d.CStepLoop([]float64{0, 0}, nil, 1, false); err == nil {
		t.Fatal("partial step accepted")
	}
	dur, err := d.CStepLoop([]float64{0, 0, 0, 0, 0, 0}, []float64{1, 1}, 5, true)
	if err != nil || dur <= 0 || math.Abs(d.Time()-0.02) > 1e-12 {
		t.Fatalf("dur %v err %v time %v", dur, err, d.Time())
	}
}
