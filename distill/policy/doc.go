// Package policy learns a robot policy in simulation with Soft Actor-Critic (Haarnoja et
// al. 2018) on MetaWorld's 39-value state observation, from the simulator's reward or, once
// wired, from the distilled reward model, and exports the deterministic policy as ONNX with
// a manifest.
//
// The learner ([Agent]) is a deterministic core without goroutines or clock: a
// tanh-squashed Gaussian actor, twin critics with Polyak-averaged targets and a learnt
// temperature, all on control/nn in float32, updated from a preallocated [Replay] ring
// buffer. [Train] is the shell around it: it steps Config.Envs environments in lockstep,
// each in its own goroutine, gathers their transitions in environment order (so results do
// not depend on scheduling), evaluates the deterministic actor on fixed held-out seeds,
// and checkpoints everything needed to continue a run bit for bit.
//
// Environments ([Env]) and rewards ([Reward]) are interfaces: MetaWorld tasks come through
// [NewMetaWorld], the simulator's reward through [GroundTruth]; the tests train on a point
// mass. See docs/policy.md for the design and the decisions behind it.
package policy
