package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"robodistill/control/onnxio"
)

// gorgoniaRunner runs a model on onnx-go's Gorgonia backend. Gorgonia's graph is not safe
// for concurrent use (it panics when shared), so every Run takes the mutex; its shapes are
// fixed on the first run, so a Run at another batch size decodes the model again. Every
// Run allocates: new input and output tensors, and Gorgonia's own values.
type gorgoniaRunner struct {
	mu        sync.Mutex
	data      []byte
	perSample []int
	batch     int // the batch size graph was built for; 0: none
	graph     *gorgonnx.Graph
	model     *onnxgo.Model
}

func loadGorgonia(data []byte, om *onnxio.Model, man *onnxio.Manifest, maxBatch int) (*Model, error) {
	if err := guard(om); err != nil {
		return nil, err
	}
	g := om.Graph
	inits := map[string]bool{}
	for _, t := range g.Initializers {
		inits[t.Name] = true
	}
	var ins []string
	for _, v := range g.Inputs {
		if !inits[v.Name] {
			ins = append(ins, v.Name)
		}
	}
	if len(ins) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("%w: the graph has %d inputs (besides initializers) and %d outputs, want 1 and 1", onnxio.ErrMismatch, len(ins), len(g.Outputs))
	}
	if err := checkSignature(g, ins[0], g.Outputs[0].Name, man); err != nil {
		return nil, err
	}
	c := &compiled{maxBatch: maxBatch, manifest: man, ops: g.Ops()}
	var err error
	if c.inShape, err = shapeOf(append([]int{1}, man.Input.Shape...)); err != nil {
		return nil, err
	}
	c.inSize = c.inShape.numel()
	c.outSize = 1
	for _, d := range man.Output.Shape {
		c.outSize *= d
	}
	r := &gorgoniaRunner{data: data, perSample: man.Input.Shape}
	if err := r.decode(1); err != nil {
		return nil, err
	}
	return &Model{c: c, g: r, out: make([]float32, maxBatch*c.outSize)}, nil
}

func (r *gorgoniaRunner) decode(batch int) error {
	g := gorgonnx.NewGraph()
	m, err := decodeOnnxGo(r.data, g)
	if err != nil {
		return err
	}
	r.graph, r.model, r.batch = g, m, batch
	return nil
}

// run computes one batch into out (len batch × output size).
func (r *gorgoniaRunner) run(in []float32, batch int, out []float32) (res []float32, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			r.batch = 0 // the graph may be half-updated: decode it again next time
			res, err = nil, fmt.Errorf("runtime: gorgonia: panic: %v", p)
		}
	}()
	if r.batch != batch {
		if err := r.decode(batch); err != nil {
			return nil, fmt.Errorf("runtime: gorgonia: %w", err)
		}
	}
	x := tensor.New(tensor.WithShape(append([]int{batch}, r.perSample...)...), tensor.WithBacking(slices.Clone(in)))
	if err := r.model.SetInput(0, x); err != nil {
		return nil, fmt.Errorf("runtime: gorgonia: %w", err)
	}
	if err := r.graph.Run(); err != nil {
		r.batch = 0 // the expression graph may be half-built: decode it again next time
		// Gorgonia builds its expression graph on the first Run; an op it does not
		// implement (MatMul on 3-D operands, …) is unsupported, as in the decoder.
		var ni *onnxgo.ErrNotImplemented
		if errors.As(err, &ni) {
			return nil, fmt.Errorf("runtime: gorgonia: %w: %v", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("runtime: gorgonia: %w", err)
	}
	outs, err := r.model.GetOutputTensors()
	if err != nil {
		return nil, fmt.Errorf("runtime: gorgonia: %w", err)
	}
	var got []float32
	switch d := outs[0].Data().(type) {
	case []float32:
		got = d
	case float32:
		got = []float32{d}
	default:
		return nil, fmt.Errorf("runtime: gorgonia: output of type %T", d)
	}
	if len(got) != len(out) {
		return nil, fmt.Errorf("runtime: gorgonia: %w: %d output values, want %d", ErrShape, len(got), len(out))
	}
	copy(out, got)
	return out, nil
}
