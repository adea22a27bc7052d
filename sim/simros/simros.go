// Package simros turns the simulator's state into the messages of the ROS interface
// (control/rosiface). The sim bridge publishes them and `robodistill collect` writes them
// into recorded episodes, so both carry the same topics and types.
package simros

import (
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"

	"robodistill/control/rosiface"
	"robodistill/sim/metaworld"
)

// Msg is one message bound for a topic.
type Msg struct {
	Topic string
	Msg   any // a pointer to a goroslib message struct
}

// Frame is a rendered camera image (RGB8, first row at the top).
type Frame struct {
	Camera string
	W, H   int
	RGB    []byte
	Fovy   float64 // vertical field of view, degrees
}

// Step is everything published or recorded for one control step.
type Step struct {
	Stamp  time.Time
	Seq    uint32
	Frame  *Frame // nil: no image this step
	Status rosiface.EpisodeStatus
	// Command is the action applied during the step that led here (zero at reset), as
	// the velocity and gripper effort a robot would have been sent.
	Action metaworld.Action
	// WithCommand also emits the command topics (recordings do; the bridge, which
	// receives commands, does not).
	WithCommand bool
}

// Messages builds step's messages for env's current state, in a stable order: camera
// image and info, hand pose, joint states, object poses, goal, observation, episode status
// and, with WithCommand, the velocity and gripper commands.
func Messages(t rosiface.Topics, env *metaworld.Env, st *metaworld.RobotState, s Step) []Msg {
	env.RobotState(st)
	motion := rosiface.Motion{Scale: env.ActionScale(), Rate: env.Rate()}
	h := func(frame string) rosiface.HeaderT { return rosiface.Header(s.Seq, s.Stamp, frame) }
	var out []Msg
	if f := s.Frame; f != nil {
		out = append(out,
			Msg{t.Image, rosiface.Image(h(f.Camera), f.RGB, f.W, f.H)},
			Msg{t.CameraInfo, rosiface.CameraInfo(h(f.Camera), f.W, f.H, f.Fovy)},
		)
	}
	names := make([]string, len(metaworld.RobotJoints))
	copy(names, metaworld.RobotJoints[:])
	out = append(out,
		Msg{t.EEPose, rosiface.Pose(h("world"), st.HandPos, st.HandQuat)},
		Msg{t.JointStates, &sensor_msgs.JointState{Header: h(""), Name: names,
			Position: append([]float64(nil), st.JointPos[:]...), Velocity: append([]float64(nil), st.JointVel[:]...)}},
	)
	for _, o := range st.Objects {
		out = append(out, Msg{t.ObjectPose(o.Name), rosiface.Pose(h("world"), o.Pos, o.Quat)})
	}
	obs := env.Obs()
	out = append(out,
		Msg{t.Goal, rosiface.Pose(h("world"), obs.Goal(), [4]float64{1, 0, 0, 0})},
		Msg{t.Observation, rosiface.ObservationMsg(append([]float64(nil), obs[:]...))},
		Msg{t.Status, s.Status.Msg()},
	)
	if s.WithCommand {
		vel, grip := motion.Command(s.Action)
		out = append(out,
			Msg{t.CmdVel, rosiface.Twist(h("world"), vel)},
			Msg{t.Gripper, rosiface.Float64(grip)},
		)
	}
	return out
}
