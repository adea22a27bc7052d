package vision

import (
	"math"
	"testing"
)

// ProcessBytes then Normalize must give Process's tensor bit for bit, except for gray
// made from colour, where ProcessBytes rounds the luma to a byte (at most half a level).
func TestProcessBytesNormalize(t *testing.T) {
	gray := DefaultConfig()
	gray.Channels, gray.Mean, gray.Std = Gray, []float64{0.5}, []float64{0.25}
	flipped := DefaultConfig()
	flipped.Flip, flipped.Channels, flipped.Crop = FlipBoth, BGR, &Rect{10, 4, 100, 90}
	cases := []struct {
		name string
		cfg  Config
		img  ImageView
	}{
		{"rgb8", DefaultConfig(), frame("rgb8", 160, 120, 0, 1)},
		{"bgr8 cropped, flipped, to bgr", flipped, frame("bgr8", 160, 120, 5, 2)},
		{"mono8 to rgb", DefaultConfig(), frame("mono8", 99, 77, 1, 3)},
		{"bgr8 to gray", gray, frame("bgr8", 200, 150, 0, 4)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			want := make([]float32, p.Len())
			if err := p.Process(tc.img, want); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, p.Len())
			if err := p.ProcessBytes(tc.img, b); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, p.Len())
			p.Normalize(b, got)
			tol := 0.0
			if tc.cfg.Channels == Gray {
				tol = 0.5 * tc.cfg.Scale / tc.cfg.Std[0] * (1 + 1e-6)
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > tol {
					t.Fatalf("value %d: %v after Normalize, Process gives %v", i, got[i], want[i])
				}
			}
		})
	}
	p := mustNew(t, DefaultConfig())
	if err := p.ProcessBytes(frame("rgb8", 64, 64, 0, 1), make([]byte, 5)); err == nil {
		t.Error("a short destination was accepted")
	}
	if err := p.ProcessBytes(ImageView{Encoding: "yuv", Width: 2, Height: 2, Step: 6, Data: make([]byte, 12)}, make([]byte, p.Len())); err == nil {
		t.Error("an unknown encoding was accepted")
	}
}
