//go:build !matprofile

package vision

import "testing"

// With -tags matprofile gocv records a stack trace per Mat, which allocates; the Mat
// accounting is tested there instead (matprofile_test.go).
func TestZeroAllocs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Crop = &Rect{80, 0, 480, 480}
	cfg.Flip = FlipVertical
	p := mustNew(t, cfg)
	frames := []ImageView{frame("rgb8", 640, 480, 0, 1), frame("bgr8", 640, 480, 16, 2), frame("mono8", 640, 480, 3, 3)}
	dst := make([]float32, p.Len())
	for _, img := range frames {
		if err := p.Process(img, dst); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(50, func() { p.Process(img, dst) }); n != 0 {
			t.Errorf("%s: %v allocations per frame, want 0", img.Encoding, n)
		}
	}
}

// ProcessBytes allocates nothing once its scratch exists.
func TestProcessBytesZeroAllocs(t *testing.T) {
	p := mustNew(t, DefaultConfig())
	b := make([]byte, p.Len())
	img := frame("rgb8", 160, 120, 0, 1)
	if err := p.ProcessBytes(img, b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _ = p.ProcessBytes(img, b) }); n != 0 {
		t.Errorf("ProcessBytes: %v allocations per call in steady state", n)
	}
}
