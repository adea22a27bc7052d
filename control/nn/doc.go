// Package nn is a small neural-network library for the models robodistill trains and runs:
// float32 tensors, layers (Linear, Conv2d via im2col, ReLU, Tanh, LayerNorm, Flatten,
// SpatialSoftmax, Sequential), losses (Bradley-Terry on reward differences, MSE), Adam,
// deterministic initialisation and parameter files.
//
// The forward kernels are the ones the model runtime executes on the robot, so the package
// lives under control/ where the daemon may import it; training code imports the same
// kernels and adds Backward.
//
// # Tensors and layouts
//
// A [Tensor] is a shape and a flat []float32 in row-major order. Images are NCHW; Linear
// takes [N, F]. Weights use PyTorch's layouts (Linear [out, in], Conv2d [out, in, kh, kw])
// and names ("weight", "bias"; Sequential prefixes the layer index, "0.weight"), so a
// parameter file maps onto a PyTorch state_dict one to one.
//
// # Forward and Backward
//
// Every layer owns its output and scratch buffers. Forward returns a tensor the layer owns;
// it stays valid until the next Forward of that layer. Buffers grow to the largest batch
// seen and are reused afterwards: in steady state Forward and Backward allocate nothing
// (with the OpenBLAS backend; gonum's pure-Go GEMM starts goroutines for large products).
// Backward(dy, wantDx) must follow the Forward whose output dy belongs to; it adds
// parameter gradients into Param.Grad (call ZeroGrad between steps, as in PyTorch) and
// returns dL/dx, or nil when wantDx is false (the first layer of a network needs no input
// gradient, which saves a GEMM per convolution).
//
// A layer is not safe for concurrent use: it holds the activations of its last Forward.
//
// # Matrix products
//
// All products go through gonum's blas.Float32 interface (see [SetBackend]). With cgo the
// default is OpenBLAS through gonum.org/v1/netlib, linked with -lopenblas and set to one
// thread (openblas_set_num_threads(1)) so that results are bitwise repeatable and the
// control loop does not compete with BLAS worker threads. Building with -tags noopenblas
// (or CGO_ENABLED=0) leaves only gonum's pure-Go implementation.
package nn
