// Package frames holds the small image utilities the simulator side shares: RGB8 frames
// to and from PNG, orientation fixes for cameras and pixel comparisons for golden tests.
package frames

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
)

// RGB is a packed RGB8 image, first row at the top.
type RGB struct {
	W, H int
	Pix  []byte // len W*H*3
}

// NewRGB allocates a black w×h frame.
func NewRGB(w, h int) *RGB { return &RGB{W: w, H: h, Pix: make([]byte, w*h*3)} }

// Rotate180 turns the frame upside down in place (a camera mounted upside down).
func (f *RGB) Rotate180() {
	n := f.W * f.H
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		a, b := f.Pix[3*i:3*i+3], f.Pix[3*j:3*j+3]
		a[0], b[0] = b[0], a[0]
		a[1], b[1] = b[1], a[1]
		a[2], b[2] = b[2], a[2]
	}
}

// Image converts to an image.RGBA.
func (f *RGB) Image() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, f.W, f.H))
	for i := 0; i < f.W*f.H; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = f.Pix[3*i], f.Pix[3*i+1], f.Pix[3*i+2], 255
	}
	return img
}

// EncodePNG writes f as PNG.
func (f *RGB) EncodePNG(w io.Writer) error { return png.Encode(w, f.Image()) }

// PNG returns the frame as PNG bytes.
func (f *RGB) PNG() []byte {
	var b bytes.Buffer
	_ = f.EncodePNG(&b) // writing to a bytes.Buffer cannot fail
	return b.Bytes()
}

// WritePNG writes f to path.
func (f *RGB) WritePNG(path string) error {
	if err := os.WriteFile(path, f.PNG(), 0o644); err != nil {
		return fmt.Errorf("frames.WritePNG: %w", err)
	}
	return nil
}

// DecodePNG reads a PNG into an RGB frame (alpha dropped).
func DecodePNG(r io.Reader) (*RGB, error) {
	img, err := png.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("frames.DecodePNG: %w", err)
	}
	b := img.Bounds()
	f := NewRGB(b.Dx(), b.Dy())
	for y := 0; y < f.H; y++ {
		for x := 0; x < f.W; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := 3 * (y*f.W + x)
			f.Pix[i], f.Pix[i+1], f.Pix[i+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
		}
	}
	return f, nil
}

// ReadPNG reads a PNG file.
func ReadPNG(path string) (*RGB, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return DecodePNG(fh)
}

// Diff compares two frames of the same size: the mean absolute difference per channel
// value (0..255) and the fraction of pixels where any channel differs by more than tol.
func Diff(a, b *RGB, tol int) (mean float64, frac float64, err error) {
	if a.W != b.W || a.H != b.H {
		return 0, 0, fmt.Errorf("frames.Diff: sizes %dx%d and %dx%d differ", a.W, a.H, b.W, b.H)
	}
	var sum, over int
	for i := 0; i < a.W*a.H; i++ {
		worst := 0
		for c := 0; c < 3; c++ {
			d := int(a.Pix[3*i+c]) - int(b.Pix[3*i+c])
			if d < 0 {
				d = -d
			}
			sum += d
			worst = max(worst, d)
		}
		if worst > tol {
			over++
		}
	}
	n := a.W * a.H
	return float64(sum) / float64(3*n), float64(over) / float64(n), nil
}
