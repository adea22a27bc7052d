package runtime_test

import (
	"math/rand/v2"

	"robodistill/control/onnxio/onnxiotest"
)

// The exporter's test networks (control/onnxio/onnxiotest).
type testModel = onnxiotest.Model

var (
	testModels     = onnxiotest.Models
	rewardCNN      = onnxiotest.RewardCNN
	policyMLP      = onnxiotest.PolicyMLP
	created        = onnxiotest.Created
	rewardManifest = onnxiotest.RewardManifest
	policyManifest = onnxiotest.PolicyManifest
	normPolicy     = onnxiotest.NormPolicy
	normManifest   = onnxiotest.NormManifest
	hash           = onnxiotest.Hash
	save           = onnxiotest.Save
	maxAbsDiff     = onnxiotest.MaxAbsDiff
)

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// randomInput is n values uniform in [−1, 1).
func randomInput(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 99))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	return x
}
