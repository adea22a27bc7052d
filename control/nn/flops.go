package nn

import "fmt"

// FLOPs counts the floating-point operations of one forward pass of layer on an input of
// shape in (with its batch dimension): two per multiply-add of Linear and Conv2d (plus
// one per bias), one per element of ReLU and Tanh, eight per element of LayerNorm
// (mean, variance, normalise, scale, shift), eight per input element of SpatialSoftmax
// (four for the softmax: maximum, exponential of the difference, sum, division; four for
// the two multiply-adds of the expected coordinates). Flatten costs nothing. It is the figure
// compared with a VLM query's cost, so it counts what the kernels compute, not memory
// traffic.
func FLOPs(layer Layer, in []int) (int64, error) {
	var total int64
	var walk func(l Layer, shape []int) ([]int, error)
	walk = func(l Layer, shape []int) ([]int, error) {
		if s, ok := l.(*Sequential); ok {
			for i, c := range s.Layers {
				var err error
				if shape, err = walk(c, shape); err != nil {
					return nil, fmt.Errorf("layer %d: %w", i, err)
				}
			}
			return shape, nil
		}
		out, err := l.OutShape(shape)
		if err != nil {
			return nil, err
		}
		n := int64(1)
		for _, d := range out {
			n *= int64(d)
		}
		switch l := l.(type) {
		case *Linear:
			total += n * int64(2*l.In+1)
		case *Conv2d:
			total += n * int64(2*l.InC*l.K*l.K+1)
		case *ReLU, *Tanh:
			total += n
		case *LayerNorm:
			total += 8 * n
		case *SpatialSoftmax:
			total += 8 * int64(numel(shape))
		case *Flatten:
		default:
			return nil, fmt.Errorf("FLOPs: unknown layer %T", l)
		}
		return out, nil
	}
	if _, err := walk(layer, in); err != nil {
		return 0, err
	}
	return total, nil
}
