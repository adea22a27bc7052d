// Package runtime runs the ONNX models robodistill exports (reward CNNs, policy MLPs) on
// the robot: the daemon, the policy evaluator and the simulator's reward step all load
// models through it.
//
// A model is decoded with onnx-go's decoder into a backend of this package (it implements
// onnx-go's Backend interface), then compiled into a flat, topologically sorted list of
// steps: shapes are inferred at load for every batch size up to [Options.MaxBatch], every
// buffer is allocated then, and [Model.Run] allocates nothing in steady state. Matrix
// products and convolutions run on control/nn's kernels (OpenBLAS with cgo), so a model
// gives the numbers the Go forward pass gives.
//
// [Load] verifies the file against its sidecar manifest (control/onnxio) and runs a
// self-check before it returns: the manifest's golden input must give its golden output,
// and two runs must agree bit for bit. A model that fails is refused with the reason.
//
// # Concurrency
//
// A [*Model] is not safe for concurrent use: it owns the buffers of its last Run. Give
// each goroutine its own [Model.Clone], which shares the read-only weights and allocates
// its own buffers.
//
// # Backends
//
// [BackendNative] ("robodistill", the default) supports the op set listed by
// [SupportedOps]. [BackendGorgonia] runs onnx-go's own Gorgonia backend behind the same
// API, for comparison and for models outside that op set; it allocates on every run, is
// serialised by a mutex, and its Gemm with a bias drifts from the second run at batch 1
// (see docs/runtime.md).
package runtime
