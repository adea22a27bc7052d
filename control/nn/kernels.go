package nn

import "gonum.org/v1/gonum/blas"

// Gemm computes C = alpha·op(A)·op(B) + beta·C through the selected BLAS backend, for
// row-major, densely packed A (m×k, or k×m when ta), B (k×n, or n×k when tb) and C (m×n).
// It is the matrix product the layers use, exported for the model runtime
// (control/runtime), which runs ONNX MatMul and Gemm nodes on the same backend as the
// layers it shares with training. With OpenBLAS it allocates nothing.
//
// A product with one row (m = 1, A not transposed) goes through GEMV, which sums in
// another order than GEMM: results may differ from a batched product in the last bits.
func Gemm(ta, tb bool, m, n, k int, alpha float32, a, b []float32, beta float32, c []float32) {
	if m == 0 || n == 0 {
		return
	}
	if m == 1 && !ta {
		// One row (one sample, the robot's case) is a matrix-vector product: GEMV streams
		// op(B) once where GEMM would pack it first (a reward CNN's 6272×64 layer runs in
		// about half the time).
		if tb {
			backend().impl.Sgemv(blas.NoTrans, n, k, alpha, b, max(k, 1), a, 1, beta, c, 1)
		} else {
			backend().impl.Sgemv(blas.Trans, k, n, alpha, b, max(n, 1), a, 1, beta, c, 1)
		}
		return
	}
	tA, lda := blas.NoTrans, k
	if ta {
		tA, lda = blas.Trans, m
	}
	tB, ldb := blas.NoTrans, n
	if tb {
		tB, ldb = blas.Trans, k
	}
	backend().impl.Sgemm(tA, tB, m, n, k, alpha, a, max(lda, 1), b, max(ldb, 1), beta, c, max(n, 1))
}
