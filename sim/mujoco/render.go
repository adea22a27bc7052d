package mujoco

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// MaxRenderSize is the largest width or height a Renderer draws.
const MaxRenderSize = 480

// RenderOptions selects quality against speed. The zero value is the fast default:
// no multisampling, shadows or reflections.
type RenderOptions struct {
	Multisamples int  // offscreen multisampling (MetaWorld's scenes ask for 4)
	Shadows      bool // shadow maps
	Reflections  bool // floor reflections
	// MaxWidth and MaxHeight size the offscreen buffer (default and limit MaxRenderSize).
	MaxWidth, MaxHeight int
}

// Renderer draws a Model's cameras headlessly through EGL (surfaceless Mesa).
//
// An OpenGL context belongs to one OS thread, so every Renderer owns a goroutine locked to
// its thread; Render hands the work to it and waits. A Renderer is safe for concurrent use
// (calls are serialized); for parallel rendering make one per environment.
type Renderer struct {
	model *Model
	opts  RenderOptions
	reqs  chan renderReq
	done  chan struct{}
	r     *C.rd_renderer

	mu     sync.Mutex // serializes Render so one result channel serves every call
	res    chan error
	closed bool // guarded by mu
}

type renderReq struct {
	d    *Data
	cam  int
	w, h int
	out  []byte
}

// ErrClosed is returned by calls on a closed Renderer.
var ErrClosed = errors.New("mujoco: renderer closed")

// NewRenderer creates the GL context and MuJoCo's render context for m.
func NewRenderer(m *Model, opts RenderOptions) (*Renderer, error) {
	install()
	if opts.MaxWidth == 0 {
		opts.MaxWidth = MaxRenderSize
	}
	if opts.MaxHeight == 0 {
		opts.MaxHeight = MaxRenderSize
	}
	if opts.MaxWidth > MaxRenderSize || opts.MaxHeight > MaxRenderSize || opts.MaxWidth < 1 || opts.MaxHeight < 1 {
		return nil, fmt.Errorf("mujoco.NewRenderer: buffer %dx%d outside 1..%d", opts.MaxWidth, opts.MaxHeight, MaxRenderSize)
	}
	r := &Renderer{model: m, opts: opts, reqs: make(chan renderReq), done: make(chan struct{}), res: make(chan error, 1)}
	started := make(chan error, 1)
	go r.run(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Renderer) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(r.done)
	var errbuf [1024]C.char
	r.r = C.rd_renderer_new(r.model.m, C.int(r.opts.MaxWidth), C.int(r.opts.MaxHeight),
		C.int(r.opts.Multisamples), &errbuf[0], C.int(len(errbuf)))
	if r.r == nil {
		started <- fmt.Errorf("mujoco.NewRenderer: %s", C.GoString(&errbuf[0]))
		return
	}
	started <- nil
	for req := range r.reqs {
		r.res <- r.render(req)
	}
	C.rd_renderer_free(r.r)
	r.r = nil
}

func (r *Renderer) render(q renderReq) error {
	rc := C.rd_render(r.r, q.d.m.m, q.d.d, C.int(q.cam), C.int(q.w), C.int(q.h),
		cbool(r.opts.Shadows), cbool(r.opts.Reflections), (*C.uchar)(unsafe.Pointer(&q.out[0])))
	if rc != 0 {
		return fmt.Errorf("mujoco.Render: %s", C.GoString(C.rd_last_error()))
	}
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Render draws camera cam (an id from Model.ID(ObjCamera, name); -1 for the default free
// camera) of state d into out as RGB8, w×h, first row at the top. out must hold w*h*3 bytes.
func (r *Renderer) Render(d *Data, cam, w, h int, out []byte) error {
	if w < 1 || h < 1 || w > r.opts.MaxWidth || h > r.opts.MaxHeight {
		return fmt.Errorf("mujoco.Render: size %dx%d outside 1..%dx%d", w, h, r.opts.MaxWidth, r.opts.MaxHeight)
	}
	if len(out) < w*h*3 {
		return fmt.Errorf("mujoco.Render: buffer of %d bytes, need %d", len(out), w*h*3)
	}
	if d.m != r.model && d.m.m != r.model.m {
		return errors.New("mujoco.Render: data belongs to another model")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.reqs <- renderReq{d: d, cam: cam, w: w, h: h, out: out}
	return <-r.res
}

// Close frees the GL context and waits for the render thread to end.
func (r *Renderer) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.reqs)
	}
	r.mu.Unlock()
	<-r.done
}
