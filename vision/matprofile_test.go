//go:build matprofile

package vision

import (
	"bytes"
	"testing"

	"gocv.io/x/gocv"
)

// TestNoMatLeaks counts live Mats (gocv's MatProfile, built with -tags matprofile) around
// many frames, good and bad, and a Close.
func TestNoMatLeaks(t *testing.T) {
	before := gocv.MatProfile.Count()
	cfg := DefaultConfig()
	cfg.Crop = &Rect{8, 4, 300, 200}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := []ImageView{frame("rgb8", 640, 480, 0, 1), frame("bgr8", 320, 240, 7, 2), frame("mono8", 400, 300, 1, 3)}
	bad := []ImageView{
		{"rgba8", 10, 10, 40, make([]byte, 400)},
		{"rgb8", 320, 240, 960, make([]byte, 100)},
		{"rgb8", 100, 100, 300, make([]byte, 30000)}, // crop outside
	}
	dst := make([]float32, p.Len())
	for i := 0; i < 20; i++ {
		for _, img := range good {
			if err := p.Process(img, dst); err != nil {
				t.Fatal(err)
			}
		}
		for _, img := range bad {
			if err := p.Process(img, dst); err == nil {
				t.Fatal("bad frame accepted")
			}
		}
	}
	if n := gocv.MatProfile.Count() - before; n != 1 {
		t.Errorf("%d Mats open while in use, want 1 (the reused output)", n)
	}
	p.Close()
	if n := gocv.MatProfile.Count() - before; n != 0 {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Errorf("%d Mats leaked:\n%s", n, b.String())
	}
}
