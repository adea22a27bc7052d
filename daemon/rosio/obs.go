package rosio

import (
	"fmt"
	"math"
)

// ObsDim is the length of MetaWorld's v2 observation: hand position (3), gripper opening
// (1), two objects' position and quaternion (14, zeros for a missing object), the same 18
// values of the previous step, and the goal position (3).
const ObsDim = 39

// Obs is one observation, laid out as MetaWorld's.
type Obs [ObsDim]float64

// The hand slots are clipped to MetaWorld's hand space (_HAND_SPACE) and the gripper to
// [-1, 1], as MetaWorld clips observations to its observation space (sim/metaworld's
// handSpaceLow/High).
var (
	handLow  = [3]float64{-0.525, 0.348, -0.0525}
	handHigh = [3]float64{0.525, 1.025, 0.7}
)

// MissingError reports an input the observation needs but that has not been received.
type MissingError struct {
	Topic string
}

// Error names the topic.
func (e *MissingError) Error() string {
	return fmt.Sprintf("observation: nothing received yet on %s", e.Topic)
}

// Builder makes the policy's observation from the inputs, exactly as the simulator
// computes it: the hand position from arm/ee_pose, the gripper opening from the two
// finger joints, the objects' positions and orientations in configured order, the
// previous step's 18 values, and the goal position from task/goal. It keeps the previous
// step's values, so call Build once per control step and Reset at the start of each
// episode. It has no goroutines and is not safe for concurrent use.
type Builder struct {
	objects      []Object
	right, left  int // indices of the finger joints in Joints
	separation   float64
	normalizer   float64
	prev         [18]float64
	fresh        bool // the next Build starts an episode
	missingEE    *MissingError
	missingJoint *MissingError
	missingGoal  *MissingError
	missingObj   []*MissingError
}

// NewBuilder validates cfg and returns a Builder at the start of an episode.
func NewBuilder(cfg Config) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rosio.NewBuilder: %w", err)
	}
	t := cfg.ResolveTopics()
	b := &Builder{
		objects:    append([]Object(nil), cfg.Objects...),
		separation: cfg.Gripper.Separation,
		normalizer: cfg.Gripper.Normalizer,
		fresh:      true,
		// Built once so that Build does not allocate even while an input is missing.
		missingEE:    &MissingError{t.EEPose},
		missingJoint: &MissingError{t.JointStates},
		missingGoal:  &MissingError{t.Goal},
	}
	for _, topic := range t.Objects {
		b.missingObj = append(b.missingObj, &MissingError{topic})
	}
	for i, j := range cfg.Joints {
		switch j {
		case cfg.Gripper.Right:
			b.right = i
		case cfg.Gripper.Left:
			b.left = i
		}
	}
	return b, nil
}

// Reset starts an episode: the next observation's previous-step half equals its current
// half, as MetaWorld's reset makes it.
func (b *Builder) Reset() { b.fresh = true }

// Build writes the observation of s (from Inputs.Read) to dst and remembers its current
// half for the next step. If an input was never received it returns a *MissingError and
// changes neither dst nor the previous step.
func (b *Builder) Build(s *State, dst *Obs) error {
	switch {
	case !s.EEPose.Stamp.Valid():
		return b.missingEE
	case !s.Joints.Stamp.Valid() || len(s.Joints.Position) <= max(b.right, b.left):
		return b.missingJoint
	case !s.Goal.Stamp.Valid():
		return b.missingGoal
	}
	for i := range b.objects {
		if i >= s.NumObjects || !s.Objects[i].Stamp.Valid() {
			return b.missingObj[i]
		}
	}
	var cur [18]float64
	copy(cur[0:3], s.EEPose.Pos[:])
	right, left := s.Joints.Position[b.right], s.Joints.Position[b.left]
	cur[3] = math.Max(0, math.Min(1, math.Abs(b.separation+left-right)/b.normalizer))
	for i, o := range b.objects {
		p := &s.Objects[i]
		base := 4 + 7*i
		copy(cur[base:base+3], p.Pos[:])
		q := p.Quat // w, x, y, z
		switch o.Quat {
		case QuatXYZW:
			cur[base+3], cur[base+4], cur[base+5], cur[base+6] = q[1], q[2], q[3], q[0]
		case QuatWXYZ:
			copy(cur[base+3:base+7], q[:])
		}
	}
	if b.fresh {
		b.prev, b.fresh = cur, false
	}
	copy(dst[0:18], cur[:])
	copy(dst[18:36], b.prev[:])
	copy(dst[36:39], s.Goal.Pos[:])
	for _, base := range [2]int{0, 18} {
		for i := 0; i < 3; i++ {
			dst[base+i] = math.Max(handLow[i], math.Min(handHigh[i], dst[base+i]))
		}
		dst[base+3] = math.Max(-1, math.Min(1, dst[base+3]))
	}
	b.prev = cur
	return nil
}
