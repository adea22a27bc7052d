//go:build !cgo || noopenblas

package nn

// openblas is nil: this binary has gonum's pure-Go BLAS only.
var openblas *backendImpl
