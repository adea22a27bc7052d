package nn

import (
	"fmt"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend names an implementation of gonum's blas.Float32 interface.
type Backend string

const (
	// OpenBLAS is Debian's libopenblas through gonum.org/v1/netlib (cgo), one thread.
	OpenBLAS Backend = "openblas"
	// PureGo is gonum's own implementation (gonum.org/v1/gonum/blas/gonum).
	PureGo Backend = "purego"
)

// The backend is one process-wide choice, like GOMAXPROCS: BLAS libraries are process-wide
// themselves, and threading a backend through every layer would buy nothing. It is atomic
// so that a switch in a test or a benchmark is not a data race; switch it only between
// computations.
var current atomic.Pointer[backendImpl]

type backendImpl struct {
	name Backend
	impl blas.Float32
}

var pureGo = &backendImpl{name: PureGo, impl: gonum.Implementation{}}

// backend is the selected backend, or the default (OpenBLAS when linked) before any
// SetBackend.
func backend() *backendImpl {
	if b := current.Load(); b != nil {
		return b
	}
	if openblas != nil {
		return openblas
	}
	return pureGo
}

// Backends lists the backends linked into this binary, the default first.
func Backends() []Backend {
	if openblas != nil {
		return []Backend{OpenBLAS, PureGo}
	}
	return []Backend{PureGo}
}

// CurrentBackend reports the backend in use.
func CurrentBackend() Backend { return backend().name }

// SetBackend selects the BLAS implementation for every later product and returns the
// previous one. OpenBLAS is an error in a binary built without cgo or with -tags
// noopenblas.
func SetBackend(b Backend) (prev Backend, err error) {
	prev = CurrentBackend()
	switch {
	case b == PureGo:
		current.Store(pureGo)
	case b == OpenBLAS && openblas != nil:
		current.Store(openblas)
	case b == OpenBLAS:
		return prev, fmt.Errorf("nn.SetBackend: %s is not linked into this binary (built without cgo or with -tags noopenblas)", b)
	default:
		return prev, fmt.Errorf("nn.SetBackend: unknown backend %q (have %v)", b, Backends())
	}
	return prev, nil
}

// gemm computes C = A·B + beta·C for row-major A (m×k, or k×m when ta), B (k×n, or n×k
// when tb) and C (m×n), all densely packed.
func gemm(ta, tb bool, m, n, k int, a, b []float32, beta float32, c []float32) {
	Gemm(ta, tb, m, n, k, 1, a, b, beta, c)
}
