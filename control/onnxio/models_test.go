package onnxio_test

import "robodistill/control/onnxio/onnxiotest"

// The test networks live in onnxiotest, shared with control/runtime's tests.
type testModel = onnxiotest.Model

var (
	testModels     = onnxiotest.Models
	rewardCNN      = onnxiotest.RewardCNN
	policyMLP      = onnxiotest.PolicyMLP
	normPolicy     = onnxiotest.NormPolicy
	rewardManifest = onnxiotest.RewardManifest
	policyManifest = onnxiotest.PolicyManifest
	normManifest   = onnxiotest.NormManifest
	hash           = onnxiotest.Hash
	created        = onnxiotest.Created
	maxAbsDiff     = onnxiotest.MaxAbsDiff
)
