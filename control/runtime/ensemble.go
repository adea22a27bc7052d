package runtime

import (
	"fmt"
	"math"
	"slices"

	"robodistill/control/onnxio"
)

// Ensemble is a reward ensemble: the members a training run exported together, run on
// one frame each call. Like a Model it is not safe for concurrent use; Clone it.
type Ensemble struct {
	members []*Model
	pub     []float64 // the members' published rewards of the last Run
}

// LoadEnsemble loads the ensemble whose member 0 is path: its manifest's ensemble.size
// members, member m at onnxio.MemberPath(path, m), each verified and self-checked. A
// reward model without an ensemble key is an ensemble of one. The members must be reward
// models with the same input (name, shape, vision config) and say which member they are
// (errors wrap onnxio.ErrMismatch).
func LoadEnsemble(path string, o Options) (*Ensemble, error) {
	m0, err := Load(path, o)
	if err != nil {
		return nil, fmt.Errorf("runtime.LoadEnsemble: %w", err)
	}
	size := 1
	if e := m0.Manifest().Ensemble; e != nil {
		if e.Member != 0 {
			return nil, fmt.Errorf("runtime.LoadEnsemble: %s: %w: it is member %d, not member 0", path, onnxio.ErrMismatch, e.Member)
		}
		size = e.Size
	}
	members := []*Model{m0}
	for i := 1; i < size; i++ {
		m, err := Load(onnxio.MemberPath(path, i), o)
		if err != nil {
			return nil, fmt.Errorf("runtime.LoadEnsemble: member %d: %w", i, err)
		}
		members = append(members, m)
	}
	e, err := NewEnsemble(members)
	if err != nil {
		return nil, fmt.Errorf("runtime.LoadEnsemble: %s: %w", path, err)
	}
	return e, nil
}

// NewEnsemble makes an ensemble of loaded members (LoadBytes for models made in memory,
// as the online reward of policy training does), with LoadEnsemble's checks: member i
// must say it is member i of len(members) (or carry no ensemble key when alone) and
// share member 0's input. Errors wrap onnxio.ErrMismatch.
func NewEnsemble(members []*Model) (*Ensemble, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: an ensemble needs at least one member", onnxio.ErrMismatch)
	}
	man0 := members[0].Manifest()
	for i, m := range members {
		if err := checkMember(man0, m.Manifest(), i, len(members)); err != nil {
			return nil, fmt.Errorf("member %d: %w: %v", i, onnxio.ErrMismatch, err)
		}
	}
	return &Ensemble{members: slices.Clone(members), pub: make([]float64, len(members))}, nil
}

func checkMember(man0, man *onnxio.Manifest, i, size int) error {
	switch {
	case man.Kind != onnxio.KindReward || man.Reward == nil:
		return fmt.Errorf("a %s model, not a reward model", man.Kind)
	case size > 1 && man.Ensemble == nil:
		return fmt.Errorf("no ensemble key, want member %d of %d", i, size)
	case size > 1 && (man.Ensemble.Member != i || man.Ensemble.Size != size):
		return fmt.Errorf("ensemble member %d of %d, want member %d of %d", man.Ensemble.Member, man.Ensemble.Size, i, size)
	case man.Input.Name != man0.Input.Name || !slices.Equal(man.Input.Shape, man0.Input.Shape) ||
		man.Input.Observation != man0.Input.Observation:
		return fmt.Errorf("input %q %v, member 0 has %q %v", man.Input.Name, man.Input.Shape, man0.Input.Name, man0.Input.Shape)
	case (man.Input.Vision == nil) != (man0.Input.Vision == nil) ||
		man.Input.Vision != nil && !man.Input.Vision.Equal(*man0.Input.Vision):
		return fmt.Errorf("input.vision differs from member 0's")
	case !slices.Equal(man.Output.Shape, []int{1}):
		return fmt.Errorf("output.shape %v, want [1]", man.Output.Shape)
	}
	return nil
}

// Run computes every member's published reward for one frame (the manifests' input
// shape, batch 1) — (raw − reward.mean)/reward.std, floored as onnxio.RewardNorm.Publish
// says — and returns their mean and standard deviation (over the members, dividing by
// their number; 0 for one member). It allocates nothing on the native backend.
func (e *Ensemble) Run(frame []float32) (mean, std float64, err error) {
	for i, m := range e.members {
		out, err := m.Run(frame, 1)
		if err != nil {
			return 0, 0, fmt.Errorf("runtime: ensemble member %d: %w", i, err)
		}
		e.pub[i] = m.c.manifest.Reward.Publish(out[0])
		mean += e.pub[i]
	}
	mean /= float64(len(e.pub))
	for _, r := range e.pub {
		std += (r - mean) * (r - mean)
	}
	return mean, math.Sqrt(std / float64(len(e.pub))), nil
}

// Published is the members' published rewards of the last Run, member by member. The
// slice belongs to e and changes with its next Run.
func (e *Ensemble) Published() []float64 { return e.pub }

// Size is the number of members.
func (e *Ensemble) Size() int { return len(e.members) }

// Member is member i's Model (shared with e: do not Run it while e runs).
func (e *Ensemble) Member(i int) *Model { return e.members[i] }

// Clone returns an Ensemble of the members' clones, for another goroutine.
func (e *Ensemble) Clone() *Ensemble {
	c := &Ensemble{pub: make([]float64, len(e.pub))}
	for _, m := range e.members {
		c.members = append(c.members, m.Clone())
	}
	return c
}
