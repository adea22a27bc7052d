// Package rosiface is robodistill's ROS interface (shared/ARCHITECTURE.md): the topic and
// service names under a namespace, the standard message types on each, and the conversions
// between MetaWorld's actions and state and those messages. The sim bridge, the recorded
// episode format and the daemon all build and read messages through this package, so a
// bag recorded from the bridge with rosbag and an episode written by `robodistill collect`
// carry the same topics.
package rosiface

import (
	"fmt"
	"math"
	"path"
	"strings"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
)

// Topics are the fully qualified names of the interface under one namespace.
type Topics struct {
	Namespace   string
	Image       string // sensor_msgs/Image (rgb8, bgr8, mono8)
	CameraInfo  string // sensor_msgs/CameraInfo
	EEPose      string // geometry_msgs/PoseStamped: the hand
	JointStates string // sensor_msgs/JointState: arm joints and gripper fingers
	Goal        string // geometry_msgs/PoseStamped: the task's goal position
	Estop       string // std_msgs/Bool
	CmdVel      string // geometry_msgs/TwistStamped: end-effector linear velocity, m/s
	Gripper     string // std_msgs/Float64: MetaWorld's gripper effort in [-1, 1]
	Reward      string // std_msgs/Float32: distilled reward
	Diagnostics string // diagnostic_msgs/DiagnosticArray
	// Simulator-only topics.
	Status      string // std_msgs/Float64MultiArray: EpisodeStatus
	Observation string // std_msgs/Float64MultiArray: MetaWorld's 39-D observation
	Reset       string // std_srvs/Trigger service
	Clock       string // rosgraph_msgs/Clock (lockstep mode)
}

// DefaultTopics returns the interface's names under namespace ns ("" or "/" for the root).
func DefaultTopics(ns string) Topics {
	ns = "/" + strings.Trim(ns, "/")
	j := func(name string) string { return path.Join(ns, name) }
	return Topics{
		Namespace:   ns,
		Image:       j("camera/image_raw"),
		CameraInfo:  j("camera/camera_info"),
		EEPose:      j("arm/ee_pose"),
		JointStates: j("arm/joint_states"),
		Goal:        j("task/goal"),
		Estop:       j("estop"),
		CmdVel:      j("arm/cmd_vel"),
		Gripper:     j("gripper/command"),
		Reward:      j("reward"),
		Diagnostics: j("diagnostics"),
		Status:      j("sim/episode_status"),
		Observation: j("sim/observation"),
		Reset:       j("sim/reset"),
		Clock:       "/clock",
	}
}

// ObjectPose is the topic of object name's pose (geometry_msgs/PoseStamped).
func (t Topics) ObjectPose(name string) string {
	return path.Join(t.Namespace, "objects", name, "pose")
}

// Motion maps MetaWorld actions to velocity commands and back. A unit action moves the
// hand by Scale metres per control period of 1/Rate seconds, so the commanded velocity is
// action × Scale × Rate (0.8 m/s for MetaWorld's 1 cm at 80 Hz, at either rate).
type Motion struct {
	Scale float64 // metres per unit action per control period
	Rate  int     // control periods per second
}

// MaxSpeed is the speed of a unit action in m/s.
func (m Motion) MaxSpeed() float64 { return m.Scale * float64(m.Rate) }

// Command converts an action to a linear velocity (m/s) and a gripper effort, clipping each
// action component to [-1, 1] as MetaWorld does.
func (m Motion) Command(a [4]float64) (vel [3]float64, grip float64) {
	s := m.MaxSpeed()
	for i := 0; i < 3; i++ {
		vel[i] = clip1(a[i]) * s
	}
	return vel, clip1(a[3])
}

// Action converts a velocity command and gripper effort back to an action, clipped to
// [-1, 1]. Non-finite inputs become 0 (no motion).
func (m Motion) Action(vel [3]float64, grip float64) [4]float64 {
	var a [4]float64
	s := m.MaxSpeed()
	for i := 0; i < 3; i++ {
		a[i] = clip1(vel[i] / s)
	}
	a[3] = clip1(grip)
	return a
}

func clip1(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Max(-1, math.Min(1, x))
}

// HeaderT is std_msgs/Header.
type HeaderT = std_msgs.Header

// Header builds a std_msgs/Header.
func Header(seq uint32, stamp time.Time, frame string) std_msgs.Header {
	return std_msgs.Header{Seq: seq, Stamp: stamp, FrameId: frame}
}

// Image wraps an RGB8 frame (first row at the top) without copying it.
func Image(h std_msgs.Header, rgb []byte, w, ht int) *sensor_msgs.Image {
	return &sensor_msgs.Image{Header: h, Height: uint32(ht), Width: uint32(w), Encoding: "rgb8", Step: uint32(3 * w), Data: rgb}
}

// CameraInfo describes an ideal pinhole camera with vertical field of view fovy (degrees)
// rendering w×h pixels, as MuJoCo's cameras are.
func CameraInfo(h std_msgs.Header, w, ht int, fovy float64) *sensor_msgs.CameraInfo {
	f := float64(ht) / 2 / math.Tan(fovy*math.Pi/360)
	cx, cy := float64(w)/2, float64(ht)/2
	return &sensor_msgs.CameraInfo{
		Header: h, Height: uint32(ht), Width: uint32(w), DistortionModel: "plumb_bob",
		D: []float64{0, 0, 0, 0, 0},
		K: [9]float64{f, 0, cx, 0, f, cy, 0, 0, 1},
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1},
		P: [12]float64{f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0},
	}
}

// Pose builds a PoseStamped from a position and a (w, x, y, z) quaternion.
func Pose(h std_msgs.Header, pos [3]float64, quatWXYZ [4]float64) *geometry_msgs.PoseStamped {
	return &geometry_msgs.PoseStamped{Header: h, Pose: geometry_msgs.Pose{
		Position:    geometry_msgs.Point{X: pos[0], Y: pos[1], Z: pos[2]},
		Orientation: geometry_msgs.Quaternion{W: quatWXYZ[0], X: quatWXYZ[1], Y: quatWXYZ[2], Z: quatWXYZ[3]},
	}}
}

// PosePosition extracts the position of a PoseStamped.
func PosePosition(p *geometry_msgs.PoseStamped) [3]float64 {
	return [3]float64{p.Pose.Position.X, p.Pose.Position.Y, p.Pose.Position.Z}
}

// Twist builds a TwistStamped carrying a linear velocity.
func Twist(h std_msgs.Header, vel [3]float64) *geometry_msgs.TwistStamped {
	return &geometry_msgs.TwistStamped{Header: h, Twist: geometry_msgs.Twist{
		Linear: geometry_msgs.Vector3{X: vel[0], Y: vel[1], Z: vel[2]},
	}}
}

// TwistLinear extracts the linear velocity of a TwistStamped.
func TwistLinear(t *geometry_msgs.TwistStamped) [3]float64 {
	return [3]float64{t.Twist.Linear.X, t.Twist.Linear.Y, t.Twist.Linear.Z}
}

// Float64 wraps a value in std_msgs/Float64.
func Float64(v float64) *std_msgs.Float64 { return &std_msgs.Float64{Data: v} }

// EpisodeStatus is the simulator's per-step episode state, published on Topics.Status as a
// Float64MultiArray whose layout labels name the fields.
type EpisodeStatus struct {
	Seed      uint64
	Step      int
	Reward    float64 // the simulator's (MetaWorld's) reward for the last step
	Success   bool
	Truncated bool // the episode reached its length
}

var statusLabels = []string{"seed", "step", "reward", "success", "truncated"}

// Msg encodes s.
func (s EpisodeStatus) Msg() *std_msgs.Float64MultiArray {
	return labelled(statusLabels, []float64{float64(s.Seed), float64(s.Step), s.Reward, b2f(s.Success), b2f(s.Truncated)})
}

// ParseEpisodeStatus decodes a status message, checking its layout.
func ParseEpisodeStatus(m *std_msgs.Float64MultiArray) (EpisodeStatus, error) {
	d, err := unlabel(m, statusLabels)
	if err != nil {
		return EpisodeStatus{}, fmt.Errorf("episode status: %w", err)
	}
	if d[1] < 0 || d[1] != math.Trunc(d[1]) || d[0] < 0 || d[0] != math.Trunc(d[0]) {
		return EpisodeStatus{}, fmt.Errorf("episode status: seed %v and step %v must be whole numbers >= 0", d[0], d[1])
	}
	return EpisodeStatus{Seed: uint64(d[0]), Step: int(d[1]), Reward: d[2], Success: d[3] != 0, Truncated: d[4] != 0}, nil
}

// ObservationMsg encodes a MetaWorld observation (labelled "obs").
func ObservationMsg(obs []float64) *std_msgs.Float64MultiArray {
	return &std_msgs.Float64MultiArray{
		Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{{Label: "obs", Size: uint32(len(obs)), Stride: uint32(len(obs))}}},
		Data:   obs,
	}
}

// ParseObservation decodes an observation of n values.
func ParseObservation(m *std_msgs.Float64MultiArray, n int) ([]float64, error) {
	if len(m.Layout.Dim) != 1 || m.Layout.Dim[0].Label != "obs" || len(m.Data) != n || int(m.Layout.Dim[0].Size) != n {
		return nil, fmt.Errorf("observation: want %d values labelled \"obs\", got %d values with layout %+v", n, len(m.Data), m.Layout.Dim)
	}
	return m.Data, nil
}

func labelled(labels []string, data []float64) *std_msgs.Float64MultiArray {
	dims := make([]std_msgs.MultiArrayDimension, len(labels))
	for i, l := range labels {
		dims[i] = std_msgs.MultiArrayDimension{Label: l, Size: 1, Stride: 1}
	}
	return &std_msgs.Float64MultiArray{Layout: std_msgs.MultiArrayLayout{Dim: dims}, Data: data}
}

func unlabel(m *std_msgs.Float64MultiArray, labels []string) ([]float64, error) {
	if len(m.Data) != len(labels) || len(m.Layout.Dim) != len(labels) {
		return nil, fmt.Errorf("want %d labelled values %v, got %d values and %d labels", len(labels), labels, len(m.Data), len(m.Layout.Dim))
	}
	for i, l := range labels {
		if m.Layout.Dim[i].Label != l {
			return nil, fmt.Errorf("value %d is labelled %q, want %q", i, m.Layout.Dim[i].Label, l)
		}
		if math.IsInf(m.Data[i], 0) {
			return nil, fmt.Errorf("%s is %v", l, m.Data[i])
		}
	}
	return m.Data, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
