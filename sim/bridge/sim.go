package bridge

import (
	"errors"
	"fmt"
	"time"

	"robodistill/control/rosiface"
	"robodistill/sim/metaworld"
	"robodistill/sim/simros"
)

// Command is what the bridge applies for one control period: the end effector's linear
// velocity (m/s, world frame) and MetaWorld's gripper effort.
type Command struct {
	Vel  [3]float64
	Grip float64
}

// Sim is the bridge's deterministic core: one MetaWorld environment, stepped by velocity
// commands and turned into the interface's messages. It has no goroutines and reads no
// clock; the bridge's loops call it with commands and stamps.
type Sim struct {
	env    *metaworld.Env
	topics rosiface.Topics
	motion rosiface.Motion

	camera string
	cam    int // -1: no camera
	size   int
	fovy   float64

	state  metaworld.RobotState
	status rosiface.EpisodeStatus
	action metaworld.Action // the last applied action
	seq    uint32
	camSeq uint32 // header seq of images published on their own schedule
}

// ErrEpisodeOver is returned by Sim.Step once the episode reached its length; call Reset.
var ErrEpisodeOver = errors.New("bridge: episode over, call sim/reset")

// NewSim loads task's scene. camera "" renders no images.
func NewSim(task *metaworld.Task, opts metaworld.Options, topics rosiface.Topics, camera string, size int) (*Sim, error) {
	env, err := metaworld.New(task, opts)
	if err != nil {
		return nil, fmt.Errorf("bridge.NewSim: %w", err)
	}
	s := &Sim{env: env, topics: topics, camera: camera, cam: -1, size: size,
		motion: rosiface.Motion{Scale: env.ActionScale(), Rate: env.Rate()}}
	if camera != "" {
		if s.cam, err = env.Camera(camera); err != nil {
			env.Close()
			return nil, fmt.Errorf("bridge.NewSim: %w", err)
		}
		s.fovy = env.Model().CameraFovy(s.cam)
	}
	return s, nil
}

// Close frees the environment.
func (s *Sim) Close() { s.env.Close() }

// Env is the environment (for tests).
func (s *Sim) Env() *metaworld.Env { return s.env }

// Motion is the action <-> velocity mapping at the environment's rate and action scale.
func (s *Sim) Motion() rosiface.Motion { return s.motion }

// Period is one control period.
func (s *Sim) Period() time.Duration { return time.Second / time.Duration(s.env.Rate()) }

// Status is the current episode status.
func (s *Sim) Status() rosiface.EpisodeStatus { return s.status }

// Reset starts an episode from seed.
func (s *Sim) Reset(seed uint64) error {
	if _, err := s.env.Reset(seed); err != nil {
		return fmt.Errorf("bridge: reset seed %d: %w", seed, err)
	}
	s.status = rosiface.EpisodeStatus{Seed: seed}
	s.action = metaworld.Action{}
	return nil
}

// Step applies c for one control period through the same mapping policies are trained
// with (rosiface.Motion: velocity / (action scale × rate), clipped to [-1, 1]).
func (s *Sim) Step(c Command) error {
	if s.status.Truncated {
		return ErrEpisodeOver
	}
	a := metaworld.Action(s.motion.Action(c.Vel, c.Grip))
	_, r, info, end, err := s.env.Step(a)
	if err != nil {
		// MuJoCo's state is not trustworthy after a failed step: the episode is over.
		s.status.Truncated = true
		return fmt.Errorf("bridge: step %d: %w", s.status.Step, err)
	}
	s.action = a
	s.status.Step = s.env.Steps()
	s.status.Reward, s.status.Success, s.status.Truncated = r, info.Success, end
	return nil
}

// Frame renders the camera into a new buffer (goroslib encodes messages after Write
// returns, so a frame cannot be reused). It returns nil without a camera.
func (s *Sim) Frame() (*simros.Frame, error) {
	if s.cam < 0 {
		return nil, nil
	}
	rgb := make([]byte, 3*s.size*s.size)
	if err := s.env.RenderID(s.cam, s.size, s.size, rgb); err != nil {
		return nil, fmt.Errorf("bridge: render %s: %w", s.camera, err)
	}
	return &simros.Frame{Camera: s.camera, W: s.size, H: s.size, RGB: rgb, Fovy: s.fovy}, nil
}

// ImageMessages builds camera/image_raw and camera/camera_info for frame f alone, for a
// camera that runs on its own schedule (Config.CameraRate): the same messages
// simros.Messages builds for a frame, with a sequence number of their own.
func (s *Sim) ImageMessages(stamp time.Time, f *simros.Frame) []simros.Msg {
	s.camSeq++
	h := rosiface.Header(s.camSeq, stamp, f.Camera)
	return []simros.Msg{
		{Topic: s.topics.Image, Msg: rosiface.Image(h, f.RGB, f.W, f.H)},
		{Topic: s.topics.CameraInfo, Msg: rosiface.CameraInfo(h, f.W, f.H, f.Fovy)},
	}
}

// Messages builds the current state's messages with frame f (nil: none), all stamped
// with stamp, through simros.Messages, so the topics equal a recorded episode's.
func (s *Sim) Messages(stamp time.Time, f *simros.Frame) []simros.Msg {
	s.seq++
	return simros.Messages(s.topics, s.env, &s.state, simros.Step{
		Stamp: stamp, Seq: s.seq, Frame: f, Status: s.status, Action: s.action,
	})
}
