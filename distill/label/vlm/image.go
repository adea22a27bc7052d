package vlm

import (
	"bytes"
	"container/list"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"sync"

	"robodistill/distill/label"
)

// imageEncoding names how frames become data URLs; it is part of each image's cache key,
// so a change to resizing or encoding does not reuse old answers.
const imageEncoding = "png-area-v1"

// fitSize returns w×h scaled so that the longer side is size (0: unchanged).
func fitSize(w, h, size int) (int, int) {
	if size <= 0 || (w == size && h <= size) || (h == size && w <= size) {
		return w, h
	}
	if w >= h {
		return size, max(1, (h*size+w/2)/w)
	}
	return max(1, (w*size+h/2)/h), size
}

// resizeRGB resamples packed RGB8 by area averaging (each output pixel is the mean of
// the input area it covers), which suits the usual downscaling.
func resizeRGB(src []byte, w, h, W, H int) []byte {
	if w == W && h == H {
		return src
	}
	xw := areaWeights(w, W)
	yw := areaWeights(h, H)
	tmp := make([]float32, W*h*3) // horizontal pass
	for y := 0; y < h; y++ {
		row := src[y*w*3 : (y+1)*w*3]
		for x, ws := range xw {
			var r, g, b float32
			for _, t := range ws {
				p := row[t.i*3 : t.i*3+3]
				r += t.w * float32(p[0])
				g += t.w * float32(p[1])
				b += t.w * float32(p[2])
			}
			o := (y*W + x) * 3
			tmp[o], tmp[o+1], tmp[o+2] = r, g, b
		}
	}
	dst := make([]byte, W*H*3)
	for y, ws := range yw {
		for x := 0; x < W*3; x++ {
			var v float32
			for _, t := range ws {
				v += t.w * tmp[t.i*W*3+x]
			}
			dst[y*W*3+x] = byte(min(255, max(0, v+0.5)))
		}
	}
	return dst
}

type tap struct {
	i int
	w float32
}

// areaWeights gives, for each of n output samples, the input samples of m it covers and
// their shares.
func areaWeights(m, n int) [][]tap {
	out := make([][]tap, n)
	scale := float64(m) / float64(n)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < m && float64(i) < hi; i++ {
			a, b := max(lo, float64(i)), min(hi, float64(i+1))
			if b > a {
				out[o] = append(out[o], tap{i, float32((b - a) / scale)})
			}
		}
	}
	return out
}

// encodePNG returns the frame, fitted to size, as a PNG data URL and its dimensions.
func encodePNG(f label.Frame, size int) (string, int, int, error) {
	if f.W <= 0 || f.H <= 0 || len(f.RGB) != f.W*f.H*3 {
		return "", 0, 0, fmt.Errorf("frame %s: %dx%d with %d bytes of RGB", f.Hash, f.W, f.H, len(f.RGB))
	}
	W, H := fitSize(f.W, f.H, size)
	pix := resizeRGB(f.RGB, f.W, f.H, W, H)
	img := image.NewNRGBA(image.Rect(0, 0, W, H))
	for i := 0; i < W*H; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i], pix[3*i+1], pix[3*i+2], 255
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: pngPool{}}
	if err := enc.Encode(&buf, img); err != nil {
		return "", 0, 0, err
	}
	const prefix = "data:image/png;base64,"
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(buf.Len()))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], buf.Bytes())
	return string(out), W, H, nil
}

// pngPool reuses PNG encoder state: a fresh deflate writer allocates and clears about a
// megabyte, which would dominate the cost of encoding a small frame.
type pngPool struct{}

var pngBuffers sync.Pool

func (pngPool) Get() *png.EncoderBuffer {
	b, _ := pngBuffers.Get().(*png.EncoderBuffer)
	return b
}

func (pngPool) Put(b *png.EncoderBuffer) { pngBuffers.Put(b) }

// imageCache keeps encoded data URLs by content key, least recently used out first:
// a frame appears in many pairs, and encoding it is most of a request's client cost.
type imageCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[string]*list.Element
}

type imageItem struct {
	key, url string
}

func newImageCache(maxBytes int64) *imageCache {
	return &imageCache{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *imageCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*imageItem).url, true
	}
	return "", false
}

func (c *imageCache) put(key, url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok || int64(len(url)) > c.max {
		return
	}
	c.items[key] = c.ll.PushFront(&imageItem{key, url})
	c.size += int64(len(url))
	for c.size > c.max {
		e := c.ll.Back()
		it := e.Value.(*imageItem)
		c.ll.Remove(e)
		delete(c.items, it.key)
		c.size -= int64(len(it.url))
	}
}
