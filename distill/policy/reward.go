package policy

import "robodistill/control/onnxio"

// Reward gives the reward the agent learns from, for one transition: the simulator's
// (GroundTruth) or, later, the distilled reward model's on the rendered frame.
//
// Reward is called after every step from the goroutine of the environment that took it,
// concurrently for different envs and never concurrently for the same env: env is the
// environment's index, 0 to Envs−1 for the training environments and Envs to 2·Envs−1 for
// the evaluation ones, so an implementation can keep one model instance (and any state) per
// env. Results must depend only on the arguments and that per-env state, never on the order
// in which envs call; resuming does not call Reward for the steps it replays, so any state
// must be a function of what the checkpoint holds (none, today).
type Reward interface {
	// Name is the short name for logs and summaries ("groundtruth").
	Name() string
	// Labeler is the exported policy's training.labeler: "ground-truth" or the reward
	// model's sha256.
	Labeler() string
	// NeedsFrame asks the trainer to render the configured camera after every step.
	NeedsFrame() bool
	// Reward scores the state reached by a step: obs is the observation after it, frame
	// (when NeedsFrame) its w×h RGB8 image, simReward the simulator's reward.
	Reward(env int, obs []float64, frame []byte, w, h int, simReward float64) float64
}

// GroundTruth is the simulator's own reward (MetaWorld's v2 reward), the upper bound a
// distilled reward is compared with.
type GroundTruth struct{}

// Name implements Reward.
func (GroundTruth) Name() string { return "groundtruth" }

// Labeler implements Reward.
func (GroundTruth) Labeler() string { return "ground-truth" }

// NeedsFrame implements Reward.
func (GroundTruth) NeedsFrame() bool { return false }

// Reward implements Reward.
func (GroundTruth) Reward(_ int, _ []float64, _ []byte, _, _ int, simReward float64) float64 {
	return simReward
}

// countTerm is the count-based term a reward model's manifest asks for (nil: none).
func countTerm(r Reward) *onnxio.CountTerm {
	if c, ok := r.(interface{ CountTerm() *onnxio.CountTerm }); ok {
		return c.CountTerm()
	}
	return nil
}
