package onnxio

// Publish maps a raw network output to the published reward: (raw − Mean) / Std, then 0
// when the manifest has a ThresholdFloor threshold and the normalised value is below it.
// It allocates nothing, so the daemon and the simulator's reward step call it per frame.
func (n *RewardNorm) Publish(raw float32) float64 {
	z := (float64(raw) - n.Mean) / n.Std
	for _, t := range n.Thresholds {
		if t.Name == ThresholdFloor && z < t.Value {
			return 0
		}
	}
	return z
}
