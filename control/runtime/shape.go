package runtime

import (
	"fmt"
	"strings"
)

const (
	// maxRank bounds the rank of every value (ONNX models for small nets stay far below).
	maxRank = 8
	// maxElems bounds every value and buffer: 2^26 float32 is 256 MB. The bound keeps
	// shape arithmetic far from overflow and a hostile file from asking for terabytes.
	maxElems = 1 << 26
	// MaxBatchLimit is the largest Options.MaxBatch.
	MaxBatchLimit = 4096
)

// shape is a tensor shape held by value, so that shape inference in Run allocates
// nothing.
type shape struct {
	rank int
	d    [maxRank]int
}

// mkShape builds a shape; dims must be checked (rank ≤ maxRank) by the caller.
func mkShape(dims ...int) shape {
	var s shape
	s.rank = copy(s.d[:], dims)
	return s
}

// shapeOf converts dims, checking rank and size.
func shapeOf(dims []int) (shape, error) {
	if len(dims) > maxRank {
		return shape{}, shapeErr("rank %d (at most %d)", len(dims), maxRank)
	}
	s := mkShape(dims...)
	if _, ok := s.size(); !ok {
		return shape{}, shapeErr("%v is too large (at most %d elements, no negative sizes)", dims, maxElems)
	}
	return s, nil
}

// dims is the shape as a slice of s's own array: call it on an addressable shape (one in
// a slice), which keeps it free of allocations.
func (s *shape) dims() []int { return s.d[:s.rank] }

// numel is the number of elements.
func (s *shape) numel() int {
	n := 1
	for _, d := range s.d[:s.rank] {
		n *= d
	}
	return n
}

// size is numel, with ok false when a dimension is negative or the product exceeds
// maxElems.
func (s *shape) size() (int, bool) {
	n := 1
	for _, d := range s.d[:s.rank] {
		if d < 0 || d > maxElems {
			return 0, false
		}
		if n *= d; n > maxElems {
			return 0, false
		}
	}
	return n, true
}

// prod multiplies dims [from, to).
func (s *shape) prod(from, to int) int {
	n := 1
	for _, d := range s.d[from:to] {
		n *= d
	}
	return n
}

func (s shape) equal(o shape) bool { return s.rank == o.rank && s.d == o.d }

func (s shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s.d[:s.rank] {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// broadcast is numpy's multidirectional broadcast of a and b.
func broadcast(a, b shape) (shape, bool) {
	r := max(a.rank, b.rank)
	out := shape{rank: r}
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := a.rank - r + i; j >= 0 {
			da = a.d[j]
		}
		if j := b.rank - r + i; j >= 0 {
			db = b.d[j]
		}
		switch {
		case da == db, db == 1:
			out.d[i] = da
		case da == 1:
			out.d[i] = db
		default:
			return shape{}, false
		}
	}
	return out, true
}

// strides returns s's row-major strides aligned right to rank r, with 0 where s has size
// 1 (or no dimension): indexing a broadcast operand with them repeats its values.
func (s *shape) strides(r int) [maxRank]int {
	var st [maxRank]int
	acc := 1
	for i := s.rank - 1; i >= 0; i-- {
		j := r - s.rank + i
		if s.d[i] != 1 {
			st[j] = acc
		}
		acc *= s.d[i]
	}
	return st
}

// axis normalises a possibly negative axis for rank r; ok is false when out of range.
// inclusive allows r itself (Flatten's axis).
func normAxis(axis int64, r int, inclusive bool) (int, bool) {
	hi := int64(r)
	if inclusive {
		hi++
	}
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis >= hi {
		return 0, false
	}
	return int(axis), true
}
