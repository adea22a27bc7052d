package frames

import (
	"bytes"
	"testing"
)

func TestPNGRoundTripAndRotate(t *testing.T) {
	f := NewRGB(3, 2)
	for i := range f.Pix {
		f.Pix[i] = byte(i * 13)
	}
	g, err := DecodePNG(bytes.NewReader(f.PNG()))
	if err != nil {
		t.Fatal(err)
	}
	if g.W != 3 || g.H != 2 || !bytes.Equal(g.Pix, f.Pix) {
		t.Fatalf("round trip changed the frame: %v vs %v", g.Pix, f.Pix)
	}
	g.Rotate180()
	// The last pixel comes first, the first last.
	if !bytes.Equal(g.Pix[:3], f.Pix[15:18]) || !bytes.Equal(g.Pix[15:18], f.Pix[:3]) {
		t.Fatalf("rotate: %v", g.Pix)
	}
	g.Rotate180()
	if !bytes.Equal(g.Pix, f.Pix) {
		t.Fatal("two rotations are not the identity")
	}
}

func TestDiff(t *testing.T) {
	a, b := NewRGB(2, 2), NewRGB(2, 2)
	b.Pix[0] = 30 // one pixel, one channel off by 30
	mean, frac, err := Diff(a, b, 24)
	if err != nil || mean != 30.0/12 || frac != 0.25 {
		t.Fatalf("mean %v frac %v err %v", mean, frac, err)
	}
	if _, _, err := Diff(a, NewRGB(3, 2), 0); err == nil {
		t.Fatal("size mismatch accepted")
	}
}

func FuzzDecodePNG(f *testing.F) {
	f.Add(NewRGB(2, 2).PNG())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodePNG(bytes.NewReader(b))
		if err == nil && len(img.Pix) != img.W*img.H*3 {
			t.Fatalf("decoded %dx%d with %d bytes", img.W, img.H, len(img.Pix))
		}
	})
}
