package runtime

import (
	"errors"
	"fmt"
)

// Errors a caller may need to tell apart. Load also returns onnxio's errors: ErrHash and
// ErrMismatch from verifying the file, and ErrFormat for bytes that do not decode
// (including those onnx-go's decoder refuses).
var (
	// ErrUnsupported means the model uses an op, an attribute value or a graph feature
	// the backend does not implement. For an op or an attribute the error is an *OpError
	// naming the node.
	ErrUnsupported = errors.New("unsupported")
	// ErrShape means the shapes of the graph do not fit together or do not fit the
	// manifest, at some batch size up to Options.MaxBatch.
	ErrShape = errors.New("shape mismatch")
	// ErrInput means Run was given an input of the wrong length or a batch size outside
	// 1 to Options.MaxBatch.
	ErrInput = errors.New("bad input")
	// ErrNonFinite means an output value is NaN or infinite.
	ErrNonFinite = errors.New("non-finite output")
	// ErrSelfCheck means the load-time self-check failed: the golden input did not give
	// the manifest's golden output, or two runs of it differ.
	ErrSelfCheck = errors.New("self-check failed")
)

// OpError is a problem with one node of the graph. Err wraps ErrUnsupported or ErrShape.
type OpError struct {
	Op   string // the node's op type, e.g. "Conv"
	Node string // the node's name, or its first output's name when it has none
	Err  error
}

func (e *OpError) Error() string { return fmt.Sprintf("%s node %q: %v", e.Op, e.Node, e.Err) }

// Unwrap returns Err.
func (e *OpError) Unwrap() error { return e.Err }

// unsupported is an ErrUnsupported with details.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// shapeErr is an ErrShape with details.
func shapeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrShape, fmt.Sprintf(format, args...))
}
