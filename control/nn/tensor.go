package nn

import "fmt"

// Tensor is a dense float32 array in row-major order. Data may be longer than the shape
// needs only in buffers owned by a layer; Len gives the used part.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor returns a zeroed tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	return &Tensor{Shape: s, Data: make([]float32, numel(s))}
}

// Len is the number of elements the shape describes.
func (t *Tensor) Len() int { return numel(t.Shape) }

// String describes the shape, not the values.
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// grow returns buf resliced to n elements, reallocating only when its capacity is short.
// The contents are unspecified.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// buffer is a layer-owned output tensor whose shape slice and data are reused.
type buffer struct {
	shape [4]int
	t     Tensor
}

// set shapes the buffer and returns its tensor; the data is not cleared.
func (b *buffer) set(shape ...int) *Tensor {
	n := copy(b.shape[:], shape)
	b.t.Shape = b.shape[:n]
	b.t.Data = grow(b.t.Data, numel(b.t.Shape))
	return &b.t
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
