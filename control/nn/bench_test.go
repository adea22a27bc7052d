package nn

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkRewardStep is one Bradley-Terry training step of the CNN on 64 pairs of
// 3×64×64 frames (compare with PyTorch through torchref.Report).
func BenchmarkRewardStep(b *testing.B) {
	for _, be := range Backends() {
		b.Run(string(be), func(b *testing.B) {
			prev, _ := SetBackend(be)
			defer SetBackend(prev)
			tr := newTrainer(b, 1, 64)
			tr.step()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.step()
			}
		})
	}
}

// BenchmarkInference is the robot's case: one frame through the reward CNN.
func BenchmarkInference(b *testing.B) {
	for _, be := range Backends() {
		b.Run(string(be), func(b *testing.B) {
			prev, _ := SetBackend(be)
			defer SetBackend(prev)
			net := smallCNN(rand.New(rand.NewPCG(1, 1)), 64)
			x := NewTensor(1, 3, 64, 64)
			net.Forward(x)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				net.Forward(x)
			}
		})
	}
}
