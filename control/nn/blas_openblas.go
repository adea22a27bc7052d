//go:build cgo && !noopenblas

package nn

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
*/
import "C"

import "gonum.org/v1/netlib/blas/netlib"

// openblas is set once, when the package is initialised; one thread keeps results
// bitwise repeatable and leaves the other cores to the control loop and the simulator.
var openblas = func() *backendImpl {
	C.openblas_set_num_threads(1)
	return &backendImpl{name: OpenBLAS, impl: netlib.Implementation{}}
}()
