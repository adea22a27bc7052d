package policy

import (
	"fmt"

	"robodistill/sim/metaworld"
)

// Env is one environment the trainer steps: MetaWorld through NewMetaWorld, or anything
// else with the same shape (the tests use a point mass). An Env is used by one goroutine
// at a time. Reset and Step must be deterministic: the same seed and actions give the same
// observations bit for bit (resuming replays the current episode's actions to rebuild the
// simulator's state).
type Env interface {
	Spec() Spec
	// Reset starts an episode whose random initial state is drawn from seed and writes
	// its first observation into obs (Spec().ObsDim values).
	Reset(seed uint64, obs []float64) error
	// Step applies action (Spec().ActDim values in [−1, 1]) and writes the next
	// observation into obs.
	Step(action []float64, obs []float64) (StepResult, error)
	// Render draws the named camera at w×h as RGB8 rows into frame (w·h·3 bytes).
	Render(camera string, w, h int, frame []byte) error
	Close()
}

// StepResult is what a step reports besides the observation.
type StepResult struct {
	Reward  float64 // the simulator's reward (MetaWorld's v2 reward)
	Success bool
	// Terminal is a true end of the task: the value after it is 0. MetaWorld never
	// terminates.
	Terminal bool
	// Truncated is the time limit: the episode ends, but the value after it is not 0, so
	// the transition still bootstraps.
	Truncated bool
}

// Spec describes an environment.
type Spec struct {
	Task     string `json:"task"`
	ObsDim   int    `json:"obs_dim"`
	ActDim   int    `json:"act_dim"`
	MaxSteps int    `json:"max_steps"` // episode length (the time limit)
	Rate     int    `json:"rate"`      // control rate in Hz (0 when meaningless)
	// ActionScale is the displacement in metres per step of an action component of 1
	// (0 when meaningless).
	ActionScale float64 `json:"action_scale"`
	// Observation names the observation layout for model manifests ("metaworld-v2-39").
	Observation string `json:"observation"`
	// Action says what an action means, for the exported policy's manifest.
	Action string `json:"action"`
}

// ObservationMetaWorld is the layout name of MetaWorld's 39-value observation.
const ObservationMetaWorld = "metaworld-v2-39"

// metaWorldEnv adapts *metaworld.Env.
type metaWorldEnv struct {
	env  *metaworld.Env
	spec Spec
	a    metaworld.Action
}

// NewMetaWorld makes a MetaWorld task an Env.
func NewMetaWorld(task string, opts metaworld.Options) (Env, error) {
	t, err := metaworld.Lookup(task)
	if err != nil {
		return nil, err
	}
	e, err := metaworld.New(t, opts)
	if err != nil {
		return nil, err
	}
	scale := e.ActionScale()
	return &metaWorldEnv{env: e, spec: Spec{
		Task: t.Name, ObsDim: metaworld.ObsDim, ActDim: len(metaworld.Action{}), MaxSteps: e.MaxSteps(), Rate: e.Rate(), ActionScale: scale,
		Observation: ObservationMetaWorld,
		Action: fmt.Sprintf("MetaWorld action for %s at %d Hz: x, y, z move the hand target by %.4g m per step per unit "+
			"(%.3g m/s at 1; multiply by %.3g for m/s), w is the gripper effort (-1 open, 1 closed); each in [-1, 1]. "+
			"The deterministic SAC policy tanh(mean).", t.Name, e.Rate(), scale, scale*float64(e.Rate()), scale*float64(e.Rate())),
	}}, nil
}

func (m *metaWorldEnv) Spec() Spec { return m.spec }

func (m *metaWorldEnv) Reset(seed uint64, obs []float64) error {
	o, err := m.env.Reset(seed)
	copy(obs, o[:])
	return err
}

func (m *metaWorldEnv) Step(action []float64, obs []float64) (StepResult, error) {
	copy(m.a[:], action)
	o, r, info, trunc, err := m.env.Step(m.a)
	copy(obs, o[:])
	return StepResult{Reward: r, Success: info.Success, Truncated: trunc}, err
}

func (m *metaWorldEnv) Render(camera string, w, h int, frame []byte) error {
	return m.env.Render(camera, w, h, frame)
}

func (m *metaWorldEnv) Close() { m.env.Close() }
