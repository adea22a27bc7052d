package translog

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"robodistill/control/episode"
)

// Transition is one control cycle as the daemon saw it and acted on it. Record copies it;
// the caller keeps ownership of its slices and may reuse them at once.
type Transition struct {
	// Time is when the cycle sampled its inputs: the bag time of the step's frame, state,
	// reward, policy action and safety messages. Required.
	Time time.Time
	// Sent is when the command was published: the bag time of arm/cmd_vel and
	// gripper/command. Zero, not after Time, or more than a second after it means
	// Time + 1 µs.
	Sent time.Time

	// Image is the camera frame the cycle used. Required.
	Image Image
	// Hand, Joints, Objects and Goal are the robot state as the daemon received it.
	Hand    Pose
	Joints  Joints
	Objects []Object
	Goal    Pose

	// Command is what was sent to the robot, after the safety filter.
	Command Command
	// Policy is the policy's action before the safety filter (MetaWorld's action space:
	// hand displacement x, y, z and gripper effort, each in [-1, 1]).
	Policy      [4]float64
	PolicyValid bool

	// Reward is the distilled reward of Image; a step without one is logged as NaN, so
	// that a reader never borrows a neighbouring step's reward.
	Reward      float32
	RewardValid bool

	// Safety is the safety filter's state in this cycle.
	Safety Safety
}

// Image is a camera frame as received (sensor_msgs/Image). Rows are packed when logged.
type Image struct {
	Stamp    time.Time
	FrameID  string
	Width    int
	Height   int
	Encoding string // rgb8, bgr8 or mono8
	// Step is the row length in bytes (0: Width × bytes per pixel, rows packed).
	Step int
	Data []byte
}

// Pose is a stamped pose (geometry_msgs/PoseStamped); it is logged when Valid.
type Pose struct {
	Valid   bool
	Stamp   time.Time
	FrameID string
	Pos     [3]float64
	Quat    [4]float64 // w, x, y, z
}

// Joints is a joint state (sensor_msgs/JointState); it is logged when it has names or
// positions.
type Joints struct {
	Stamp    time.Time
	FrameID  string
	Name     []string
	Position []float64
	Velocity []float64
	Effort   []float64
}

// Object is an object's pose, logged on objects/<Name>/pose.
type Object struct {
	Name string // one ROS name component: no '/'
	Pose Pose
}

// Command is the command sent (geometry_msgs/TwistStamped on arm/cmd_vel and
// std_msgs/Float64 on gripper/command); it is logged when Valid.
type Command struct {
	Valid   bool
	Stamp   time.Time
	FrameID string
	Vel     [3]float64 // end-effector linear velocity, m/s
	Grip    float64    // gripper effort, -1..1
}

// SafetyLevel is the safety filter's verdict, with the values of
// diagnostic_msgs/DiagnosticStatus's levels.
type SafetyLevel int8

// Safety levels.
const (
	SafetyOK      SafetyLevel = 0 // the policy's action went out unchanged
	SafetyLimited SafetyLevel = 1 // the filter changed the action (clipped speed, workspace)
	SafetyStopped SafetyLevel = 2 // the arm is held: estop, stale inputs, a fault
	SafetyStale   SafetyLevel = 3 // the filter had no verdict (not running)
)

// String names the level as the log writes it.
func (l SafetyLevel) String() string {
	switch l {
	case SafetyOK:
		return "ok"
	case SafetyLimited:
		return "limited"
	case SafetyStopped:
		return "stopped"
	case SafetyStale:
		return "stale"
	}
	return fmt.Sprintf("level(%d)", int8(l))
}

// Safety is the safety filter's state in one cycle.
type Safety struct {
	Level SafetyLevel
	// Reason says what the filter did or why it stopped, e.g. "speed", "workspace",
	// "estop", "stale camera". Pass a constant: Record keeps the string, not a copy.
	Reason string
	Estop  bool // the estop topic's last value
}

// maxImageSide bounds a frame's width and height (as control/episode's reader does).
const maxImageSide = 1 << 15

// problem codes: what check found wrong, without allocating.
type problem uint8

const (
	probNone problem = iota
	probTime
	probImageSize
	probImageEncoding
	probImageStep
	probImageData
	probObjectName
	probSafetyLevel
)

// check finds the first problem of t without allocating.
func (t *Transition) check() problem {
	if t.Time.IsZero() || t.Time.Unix() < 0 || t.Time.Unix() > 1<<32-1 {
		return probTime
	}
	im := &t.Image
	if im.Width < 1 || im.Height < 1 || im.Width > maxImageSide || im.Height > maxImageSide {
		return probImageSize
	}
	bpp := episode.BytesPerPixel(im.Encoding)
	if bpp == 0 {
		return probImageEncoding
	}
	row := im.Width * bpp
	if im.Step != 0 && im.Step < row {
		return probImageStep
	}
	step := im.Step
	if step == 0 {
		step = row
	}
	if len(im.Data) < step*(im.Height-1)+row {
		return probImageData
	}
	for i := range t.Objects {
		if n := t.Objects[i].Name; n == "" || strings.IndexByte(n, '/') >= 0 {
			return probObjectName
		}
	}
	if t.Safety.Level < SafetyOK || t.Safety.Level > SafetyStale {
		return probSafetyLevel
	}
	return probNone
}

// ErrInvalid is wrapped by the errors of Transition.Validate.
var ErrInvalid = errors.New("invalid transition")

// Validate reports what is wrong with t, as Record would find it (Record only counts
// such transitions as rejected).
func (t *Transition) Validate() error {
	var msg string
	im := &t.Image
	switch t.check() {
	case probNone:
		return nil
	case probTime:
		msg = fmt.Sprintf("time %v is not a ROS time (unset, before 1970 or after 2106)", t.Time)
	case probImageSize:
		msg = fmt.Sprintf("image of %d×%d pixels (want 1..%d each)", im.Width, im.Height, maxImageSide)
	case probImageEncoding:
		msg = fmt.Sprintf("image encoding %q is not rgb8, bgr8 or mono8", im.Encoding)
	case probImageStep:
		msg = fmt.Sprintf("image step %d is shorter than a row of %d %s pixels", im.Step, im.Width, im.Encoding)
	case probImageData:
		msg = fmt.Sprintf("image %d×%d %s (step %d) has %d bytes", im.Width, im.Height, im.Encoding, im.Step, len(im.Data))
	case probObjectName:
		for _, o := range t.Objects {
			if o.Name == "" || strings.Contains(o.Name, "/") {
				msg = fmt.Sprintf("object name %q is empty or contains '/'", o.Name)
				break
			}
		}
	case probSafetyLevel:
		msg = fmt.Sprintf("safety level %d is not 0..3", t.Safety.Level)
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}

func (p problem) String() string {
	return [...]string{"none", "time", "image size", "image encoding", "image step", "image data", "object name", "safety level"}[p]
}

// slot is one entry of the ring: a transition or an episode marker, with buffers the slot
// owns so that copying a transition into it allocates nothing once they are big enough.
type slot struct {
	kind uint8
	t    Transition // slices point into the buffers below
	meta episode.Meta

	frame                   []byte
	names                   []string
	position, velocity, eff []float64
	objects                 []Object
}

const (
	kindTransition = iota + 1
	kindStart
	kindEnd
)

// copyFrom copies t into s, packing the image rows.
func (s *slot) copyFrom(t *Transition) {
	s.kind = kindTransition
	s.t = *t
	im := &t.Image
	row := im.Width * episode.BytesPerPixel(im.Encoding)
	n := row * im.Height
	if cap(s.frame) < n {
		s.frame = make([]byte, n)
	}
	s.frame = s.frame[:n]
	if im.Step == 0 || im.Step == row {
		copy(s.frame, im.Data[:n])
	} else {
		for y := 0; y < im.Height; y++ {
			copy(s.frame[y*row:(y+1)*row], im.Data[y*im.Step:])
		}
	}
	s.t.Image.Data, s.t.Image.Step = s.frame, row
	s.names = append(s.names[:0], t.Joints.Name...)
	s.position = append(s.position[:0], t.Joints.Position...)
	s.velocity = append(s.velocity[:0], t.Joints.Velocity...)
	s.eff = append(s.eff[:0], t.Joints.Effort...)
	s.t.Joints.Name, s.t.Joints.Position, s.t.Joints.Velocity, s.t.Joints.Effort = s.names, s.position, s.velocity, s.eff
	s.objects = append(s.objects[:0], t.Objects...)
	s.t.Objects = s.objects
}
