// Package onnxio writes control/nn networks as ONNX models with a manifest, and reads back
// what it writes: the manifest, the hash and the graph's signature, which the daemon
// checks before it runs a model.
//
// A model is two files: MODEL.onnx, whose metadata_props carry the manifest's JSON under
// [MetadataKey], and MODEL.onnx.json (the sidecar), the same manifest plus the .onnx
// file's sha256. [Save] writes both; [Verify] reads both and refuses a pair whose hash or
// manifests disagree. [Manifest.CheckVision] compares the model's preprocessing with the
// daemon's vision configuration.
//
// The graph uses ONNX IR version 8 and opset 13, and only ops that ONNX Runtime, Debian's
// onnx 1.12 checker and onnx-go v0.5.0 all accept: Conv, Relu, Tanh, Flatten, MatMul and
// Add for Linear (not Gemm, which drifts in onnx-go), and for LayerNorm MatMul, Sub,
// Identity, Mul, Sqrt and Div. The exception is SpatialSoftmax (Reshape, Softmax, a 3-D
// MatMul, Flatten): ONNX Runtime and the checker accept it, onnx-go's Gorgonia backend
// cannot run the 3-D MatMul. The batch dimension is symbolic ([BatchDim]). The protobuf
// is written and read by a small hand-written codec ([Model.Marshal], [Decode]) over
// google.golang.org/protobuf/encoding/protowire. docs/onnx.md has the reasons and the
// measured parity.
package onnxio
