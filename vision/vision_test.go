package vision

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// frame makes a deterministic test frame: smooth gradients plus noise, with `pad` extra
// bytes per row filled with 0xEE (which must never reach the output).
func frame(enc string, w, h, pad int, seed uint64) ImageView {
	ch := encodingChannels(enc)
	rng := rand.New(rand.NewPCG(seed, 99))
	step := w*ch + pad
	data := make([]byte, step*h)
	for y := 0; y < h; y++ {
		for x := 0; x < step; x++ {
			if x >= w*ch {
				data[y*step+x] = 0xEE
				continue
			}
			c := x % ch
			v := 40*math.Sin(float64(x/ch)/17+float64(c)) + 60*math.Cos(float64(y)/23) + 128 + 30*rng.NormFloat64()
			data[y*step+x] = byte(max(0, min(255, math.Round(v))))
		}
	}
	return ImageView{Encoding: enc, Width: w, Height: h, Step: step, Data: data}
}

// refArea is an independent area resampling (float64) for downscaling: output pixel
// (ox, oy) averages the source box [ox·sx, (ox+1)·sx) × [oy·sy, (oy+1)·sy), each source
// pixel weighted by its overlap with the box. It returns values on the 0–255 scale,
// unrounded, HWC, with the input's channels.
func refArea(img ImageView, crop Rect, ow, oh int) []float64 {
	ch := encodingChannels(img.Encoding)
	sx, sy := float64(crop.Width)/float64(ow), float64(crop.Height)/float64(oh)
	weights := func(o int, s float64, n int) (first int, ws []float64) {
		a, b := float64(o)*s, float64(o+1)*s
		first = int(math.Floor(a))
		for i := first; i < n && float64(i) < b; i++ {
			ws = append(ws, (math.Min(b, float64(i+1))-math.Max(a, float64(i)))/s)
		}
		return first, ws
	}
	out := make([]float64, ow*oh*ch)
	for oy := 0; oy < oh; oy++ {
		fy, wy := weights(oy, sy, crop.Height)
		for ox := 0; ox < ow; ox++ {
			fx, wx := weights(ox, sx, crop.Width)
			for c := 0; c < ch; c++ {
				var sum float64
				for j, a := range wy {
					row := (crop.Y + fy + j) * img.Step
					for i, b := range wx {
						sum += a * b * float64(img.Data[row+(crop.X+fx+i)*ch+c])
					}
				}
				out[(oy*ow+ox)*ch+c] = sum
			}
		}
	}
	return out
}

// refTensor applies flip, channel selection and normalisation to refArea's output,
// independently of toTensor. It returns the tensor and, per value, the size of one 8-bit
// level in output units.
func refTensor(cfg Config, img ImageView) (vals, level []float64) {
	crop := Rect{0, 0, img.Width, img.Height}
	if cfg.Crop != nil {
		crop = *cfg.Crop
	}
	ch := encodingChannels(img.Encoding)
	area := refArea(img, crop, cfg.Width, cfg.Height)
	w, h, nc := cfg.Width, cfg.Height, cfg.Channels.Count()
	vals, level = make([]float64, nc*w*h), make([]float64, nc*w*h)
	for c := 0; c < nc; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				sx, sy := x, y
				if cfg.Flip == FlipHorizontal || cfg.Flip == FlipBoth {
					sx = w - 1 - x
				}
				if cfg.Flip == FlipVertical || cfg.Flip == FlipBoth {
					sy = h - 1 - y
				}
				px := area[(sy*w+sx)*ch : (sy*w+sx+1)*ch]
				var v float64
				rgb := func(i int) float64 { // i: 0 R, 1 G, 2 B
					if img.Encoding == "bgr8" {
						return px[2-i]
					}
					return px[i]
				}
				switch {
				case ch == 1:
					v = px[0]
				case cfg.Channels == Gray:
					v = 0.299*rgb(0) + 0.587*rgb(1) + 0.114*rgb(2)
				case cfg.Channels == RGB:
					v = rgb(c)
				default:
					v = rgb(2 - c)
				}
				i := (c*h+y)*w + x
				vals[i] = (v*cfg.Scale - cfg.Mean[c]) / cfg.Std[c]
				level[i] = cfg.Scale / cfg.Std[c]
			}
		}
	}
	return vals, level
}

func mustNew(t testing.TB, cfg Config) *Preprocessor {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The tolerance against the exact area average, in 8-bit levels (1/255 of the range before
// normalisation): OpenCV's INTER_AREA rounds its float32 average to 8 bits, so the result
// is the exact average correctly rounded (0.5 level), plus float32 error (measured: none
// beyond 0.500).
const refTolLevels = 0.51

func TestMatchesReference(t *testing.T) {
	imagenet := Config{Version: 1, Width: 64, Height: 64, Flip: FlipNone, Channels: RGB, Scale: 1.0 / 255,
		Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}
	with := func(c Config, f func(*Config)) Config {
		c.Mean, c.Std = append([]float64(nil), c.Mean...), append([]float64(nil), c.Std...)
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		img  ImageView
	}{
		{"rgb8 640x480 to 64x64", DefaultConfig(), frame("rgb8", 640, 480, 0, 1)},
		{"rgb8 crop 480x480 normalised", with(imagenet, func(c *Config) { c.Crop = &Rect{80, 0, 480, 480} }), frame("rgb8", 640, 480, 0, 2)},
		{"bgr8 padded step to bgr, flipped", with(imagenet, func(c *Config) { c.Channels = BGR; c.Flip = FlipBoth; c.Width, c.Height = 48, 36 }), frame("bgr8", 333, 250, 13, 3)},
		{"bgr8 to gray", with(DefaultConfig(), func(c *Config) { c.Channels = Gray; c.Mean, c.Std = []float64{0.5}, []float64{0.25} }), frame("bgr8", 200, 150, 1, 4)},
		{"mono8 odd step to rgb, vertical flip", with(DefaultConfig(), func(c *Config) { c.Flip = FlipVertical }), frame("mono8", 301, 199, 3, 5)},
		{"rgb8 integer factor 2", with(DefaultConfig(), func(c *Config) { c.Crop = &Rect{3, 5, 128, 128} }), frame("rgb8", 160, 140, 0, 6)},
		{"rgb8 horizontal flip", with(DefaultConfig(), func(c *Config) { c.Flip = FlipHorizontal; c.Width = 80 }), frame("rgb8", 240, 180, 0, 7)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			got := make([]float32, p.Len())
			if err := p.Process(tc.img, got); err != nil {
				t.Fatal(err)
			}
			want, level := refTensor(tc.cfg, tc.img)
			var worst, sum float64
			for i := range want {
				d := math.Abs(float64(got[i])-want[i]) / level[i]
				worst = math.Max(worst, d)
				sum += d
			}
			if worst > refTolLevels {
				t.Errorf("largest difference from the reference %.3f levels > %g", worst, refTolLevels)
			}
			t.Logf("difference from the reference: max %.3f, mean %.3f levels (of 1/255)", worst, sum/float64(len(want)))
		})
	}
}

// Golden files pin the whole path on small frames, readable in review. Rewrite them with
// go test ./vision -run Golden -update.
func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		img  ImageView
	}{
		{"rgb8_crop_flip", Config{Version: 1, Width: 6, Height: 4, Crop: &Rect{2, 1, 18, 12}, Flip: FlipHorizontal, Channels: RGB,
			Scale: 1.0 / 255, Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.5, 0.5, 0.5}}, frame("rgb8", 24, 16, 5, 10)},
		{"bgr8_to_rgb", Config{Version: 1, Width: 5, Height: 3, Flip: FlipNone, Channels: RGB,
			Scale: 1, Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}}, frame("bgr8", 15, 9, 0, 11)},
		{"mono8_to_gray_vflip", Config{Version: 1, Width: 4, Height: 4, Flip: FlipVertical, Channels: Gray,
			Scale: 1.0 / 255, Mean: []float64{0}, Std: []float64{1}}, frame("mono8", 10, 10, 2, 12)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			got := make([]float32, p.Len())
			if err := p.Process(tc.img, got); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			js, _ := tc.cfg.JSON()
			fmt.Fprintf(&b, "# config %s\n# input %s %dx%d step %d\n", js, tc.img.Encoding, tc.img.Width, tc.img.Height, tc.img.Step)
			s := p.Shape()
			for c := 0; c < s[0]; c++ {
				fmt.Fprintf(&b, "channel %d\n", c)
				for y := 0; y < s[1]; y++ {
					for x := 0; x < s[2]; x++ {
						if x > 0 {
							b.WriteByte(' ')
						}
						b.WriteString(strconv.FormatFloat(float64(got[(c*s[1]+y)*s[2]+x]), 'g', -1, 32))
					}
					b.WriteByte('\n')
				}
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, b.String(), want)
			}
		})
	}
}

func TestProcessErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Crop = &Rect{10, 10, 100, 50}
	p := mustNew(t, cfg)
	ok := frame("rgb8", 120, 80, 4, 1)
	cases := []struct {
		name string
		img  ImageView
		want string
	}{
		{"encoding", ImageView{"rgba8", 120, 80, 480, make([]byte, 480*80)}, `bad image: unknown encoding "rgba8" (want rgb8, bgr8 or mono8)`},
		{"16-bit", ImageView{"mono16", 120, 80, 240, make([]byte, 240*80)}, `bad image: unknown encoding "mono16" (want rgb8, bgr8 or mono8)`},
		{"zero width", ImageView{"rgb8", 0, 80, 364, ok.Data}, "bad image: zero size 0x80"},
		{"zero height", ImageView{"rgb8", 120, 0, 364, ok.Data}, "bad image: zero size 120x0"},
		{"negative", ImageView{"mono8", -5, 80, 364, ok.Data}, "bad image: zero size -5x80"},
		{"step", ImageView{"rgb8", 120, 80, 359, ok.Data}, "bad image: step 359 is smaller than width 120 × 3 channels"},
		{"short data", ImageView{"rgb8", 120, 80, 364, ok.Data[:364*80-1]}, "bad image: 29119 bytes of data, want step 364 × height 80 = 29120"},
		{"nil data", ImageView{"mono8", 120, 80, 120, nil}, "bad image: 0 bytes of data, want step 120 × height 80 = 9600"},
		{"huge", ImageView{"mono8", 1 << 16, 1, 1 << 16, nil}, "bad image: 65536x1 with step 65536 is larger than this package accepts"},
		{"crop outside", ImageView{"rgb8", 109, 80, 364, ok.Data}, "bad image: crop 100x50 at (10,10) is outside the 109x80 image"},
		{"crop outside rows", ImageView{"rgb8", 120, 59, 364, ok.Data}, "bad image: crop 100x50 at (10,10) is outside the 120x59 image"},
	}
	dst := make([]float32, p.Len())
	for i := range dst {
		dst[i] = 7
	}
	for _, tc := range cases {
		err := p.Process(tc.img, dst)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		} else if !errors.Is(err, ErrImage) {
			t.Errorf("%s: %v does not wrap ErrImage", tc.name, err)
		}
	}
	for _, v := range dst {
		if v != 7 {
			t.Fatal("a rejected frame changed dst")
		}
	}
	if err := p.Process(ok, make([]float32, 10)); err == nil || err.Error() != "vision: destination has 10 values, want 12288 ([3 64 64])" {
		t.Errorf("short dst: %v", err)
	}
	if err := p.Process(ok, dst); err != nil {
		t.Errorf("valid frame after errors: %v", err)
	}
	p.Close()
	if err := p.Process(ok, dst); err == nil || err.Error() != "vision: Process after Close" {
		t.Errorf("after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The step padding never reaches the output, whatever it holds.
func TestStepPaddingIgnored(t *testing.T) {
	p := mustNew(t, DefaultConfig())
	a := frame("bgr8", 100, 70, 9, 3)
	b := frame("bgr8", 100, 70, 9, 3)
	for y := 0; y < b.Height; y++ {
		for x := b.Width * 3; x < b.Step; x++ {
			b.Data[y*b.Step+x] = byte(x * y)
		}
	}
	ta, tb := make([]float32, p.Len()), make([]float32, p.Len())
	if err := p.Process(a, ta); err != nil {
		t.Fatal(err)
	}
	if err := p.Process(b, tb); err != nil {
		t.Fatal(err)
	}
	for i := range ta {
		if ta[i] != tb[i] {
			t.Fatalf("value %d depends on the padding", i)
		}
	}
}

// A frame's size may change between calls (a camera reconfigured): no state carries over.
func TestSizeChange(t *testing.T) {
	p := mustNew(t, DefaultConfig())
	q := mustNew(t, DefaultConfig())
	out, fresh := make([]float32, p.Len()), make([]float32, p.Len())
	for i, img := range []ImageView{frame("rgb8", 640, 480, 0, 1), frame("mono8", 64, 64, 0, 2), frame("bgr8", 320, 240, 8, 3)} {
		if err := p.Process(img, out); err != nil {
			t.Fatal(err)
		}
		q2 := mustNew(t, DefaultConfig())
		if err := q2.Process(img, fresh); err != nil {
			t.Fatal(err)
		}
		for j := range out {
			if out[j] != fresh[j] {
				t.Fatalf("frame %d: value %d differs from a fresh Preprocessor", i, j)
			}
		}
	}
	_ = q
}

func TestUpscale(t *testing.T) {
	// Smaller crops than the output take OpenCV's INTER_AREA upscaling (bilinear); a flat
	// frame stays flat.
	p := mustNew(t, DefaultConfig())
	img := ImageView{"mono8", 20, 10, 20, make([]byte, 200)}
	for i := range img.Data {
		img.Data[i] = 51
	}
	out := make([]float32, p.Len())
	if err := p.Process(img, out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if v != float32(51.0/255) {
			t.Fatalf("flat frame gave %v", v)
		}
	}
}

func FuzzProcess(f *testing.F) {
	f.Add(uint8(0), 8, 6, 24, []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ!@#$%^&*()_+-=[]{};':,./<>?~`abcdefghijklmnopqrstuvwxyz0123456789"), 1, 1, 4, 4)
	f.Add(uint8(1), 3, 3, 10, make([]byte, 30), 0, 0, 0, 0)
	f.Add(uint8(2), 1, 1, 1, []byte{200}, 0, 0, 1, 1)
	f.Add(uint8(3), 4, 2, 3, make([]byte, 5), 0, 0, 0, 0)
	encs := []string{"rgb8", "bgr8", "mono8", "rgba8"}
	small := Config{Version: 1, Width: 5, Height: 3, Flip: FlipBoth, Channels: RGB, Scale: 1.0 / 255,
		Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}}
	whole := mustNew(f, small)
	f.Fuzz(func(t *testing.T, enc uint8, w, h, step int, data []byte, cx, cy, cw, ch int) {
		cfg := small
		if cw > 0 && ch > 0 && cx >= 0 && cy >= 0 {
			cfg.Crop = &Rect{cx % 64, cy % 64, cw % 64, ch % 64}
		}
		p := whole
		if cfg.Crop != nil {
			var err error
			if p, err = New(cfg); err != nil {
				return // e.g. a zero crop after the modulo: Validate's business
			}
			defer p.Close()
		}
		img := ImageView{Encoding: encs[int(enc)%len(encs)], Width: w, Height: h, Step: step, Data: data}
		dst := make([]float32, p.Len())
		err := p.Process(img, dst)
		if err != nil {
			if !errors.Is(err, ErrImage) {
				t.Fatalf("error %v does not wrap ErrImage", err)
			}
			return
		}
		for i, v := range dst {
			if v < 0 || v > 1 || math.IsNaN(float64(v)) {
				t.Fatalf("value %d is %v, outside [0, 1]", i, v)
			}
		}
	})
}

func BenchmarkProcess(b *testing.B) {
	p := mustNew(b, DefaultConfig())
	img := frame("rgb8", 640, 480, 0, 1)
	dst := make([]float32, p.Len())
	b.ReportAllocs()
	b.SetBytes(int64(len(img.Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Process(img, dst); err != nil {
			b.Fatal(err)
		}
	}
}
