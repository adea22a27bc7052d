package reward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

// ImportNet rebuilds the training network of a reward model this package exported
// (onnxio's graph of NewNet's layers) from the .onnx file's bytes, for training to
// continue from its weights: the online reward of policy training starts from the
// offline one this way. The architecture ("spatial" when the graph has a Softmax, else
// "cnn2" or "cnn3" by its convolutions) and hidden width are read from the graph, the
// frame shape from the manifest; every weight must be present with NewNet's shape.
func ImportNet(data []byte) (*nn.Sequential, error) {
	m, man, err := onnxio.Inspect(data)
	if err != nil {
		return nil, fmt.Errorf("reward.ImportNet: %w", err)
	}
	if man.Kind != onnxio.KindReward || len(man.Input.Shape) != 3 {
		return nil, fmt.Errorf("reward.ImportNet: a %s model with input %v, want a reward model on [C, H, W] frames", man.Kind, man.Input.Shape)
	}
	inits := map[string]onnxio.Tensor{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = t
	}
	convs, softmax := 0, false
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "Conv":
			convs++
		case "Softmax": // onnxio's form of nn.SpatialSoftmax
			softmax = true
		}
	}
	arch := map[int]string{2: "cnn2", 3: "cnn3"}[convs]
	if softmax {
		arch = map[int]string{2: "spatial"}[convs]
	}
	if arch == "" {
		return nil, fmt.Errorf("reward.ImportNet: %d convolutions (softmax: %v): not a network NewNet makes", convs, softmax)
	}
	// The last Linear is 1 output wide; its input width is the hidden width.
	shape := [3]int{man.Input.Shape[0], man.Input.Shape[1], man.Input.Shape[2]}
	probe, err := NewNet(arch, shape, 1, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, fmt.Errorf("reward.ImportNet: %w", err)
	}
	last := strconv.Itoa(len(probe.Layers)-1) + ".weight.T"
	wt, ok := inits[last]
	if !ok || len(wt.Dims) != 2 {
		return nil, fmt.Errorf("reward.ImportNet: no initializer %q of rank 2", last)
	}
	net, err := NewNet(arch, shape, int(wt.Dims[0]), rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, fmt.Errorf("reward.ImportNet: %w", err)
	}
	in := []int{1, shape[0], shape[1], shape[2]}
	for i, l := range net.Layers {
		p := strconv.Itoa(i) + "."
		var err error
		switch l := l.(type) {
		case *nn.Conv2d:
			err = errors.Join(fill(inits, p+"weight", l.Weight, false), fill(inits, p+"bias", l.Bias, false))
		case *nn.Linear:
			err = errors.Join(fill(inits, p+"weight.T", l.Weight, true), fill(inits, p+"bias", l.Bias, false))
		case *nn.SpatialSoftmax:
			// No weights, but the coordinates must be this build's: a model whose grid
			// differs would compute another function after the round trip.
			err = checkGrid(inits, p+"grid", in[2], in[3])
		}
		if err == nil {
			in, err = l.OutShape(in)
		}
		if err != nil {
			return nil, fmt.Errorf("reward.ImportNet: layer %d: %w", i, err)
		}
	}
	return net, nil
}

// fill copies initializer name into p; transposed means the initializer holds pᵀ
// (a Linear's [Out, In] weight stored [In, Out] for MatMul).
func fill(inits map[string]onnxio.Tensor, name string, p *nn.Param, transposed bool) error {
	t, ok := inits[name]
	if !ok {
		return fmt.Errorf("no initializer %q", name)
	}
	want := p.Shape
	if transposed {
		want = []int{p.Shape[1], p.Shape[0]}
	}
	n := 1
	for _, d := range want {
		n *= d
	}
	if len(t.Dims) != len(want) {
		return fmt.Errorf("initializer %q has dims %v, want %v", name, t.Dims, want)
	}
	for i, d := range t.Dims {
		if int(d) != want[i] {
			return fmt.Errorf("initializer %q has dims %v, want %v", name, t.Dims, want)
		}
	}
	vals := t.FloatData
	if len(vals) == 0 {
		if len(t.RawData) != 4*n {
			return fmt.Errorf("initializer %q has %d bytes, want %d", name, len(t.RawData), 4*n)
		}
		vals = make([]float32, n)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
	}
	if len(vals) != n {
		return fmt.Errorf("initializer %q has %d values, want %d", name, len(vals), n)
	}
	if !transposed {
		copy(p.Value, vals)
		return nil
	}
	rows, cols := want[0], want[1] // stored [In, Out]
	for r := range rows {
		for c := range cols {
			p.Value[c*rows+r] = vals[r*cols+c]
		}
	}
	return nil
}

// checkGrid compares the coordinate initializer of a SpatialSoftmax on an h×w map with
// nn.SpatialGrid(h, w), bit for bit.
func checkGrid(inits map[string]onnxio.Tensor, name string, h, w int) error {
	want := nn.SpatialGrid(h, w)
	got := &nn.Param{Shape: []int{h * w, 2}, Value: make([]float32, len(want))}
	if err := fill(inits, name, got, false); err != nil {
		return err
	}
	for i := range want {
		if math.Float32bits(got.Value[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("initializer %q: value %d is %g, nn.SpatialGrid gives %g", name, i, got.Value[i], want[i])
		}
	}
	return nil
}
