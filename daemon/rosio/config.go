package rosio

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strings"
	"time"

	"robodistill/control/rosiface"
)

// MaxObjects is how many objects MetaWorld's observation has room for (slots 4-10 and
// 11-17).
const MaxObjects = 2

// QuatLayout is how an object's orientation is laid out in the observation. MetaWorld
// is not consistent across tasks, and a policy expects what it was trained with.
type QuatLayout string

// QuatLayout values.
const (
	// QuatXYZW is scipy's order (x, y, z, w): MetaWorld's free objects (reach, push,
	// sweep-into), the soccer ball and the door handle.
	QuatXYZW QuatLayout = "xyzw"
	// QuatWXYZ is MuJoCo's body quaternion (w, x, y, z): drawer-open, button-press-topdown.
	QuatWXYZ QuatLayout = "wxyz"
	// QuatNone leaves the four slots zero: window-open.
	QuatNone QuatLayout = "none"
)

// Object is one object whose pose fills the observation's next object slots.
type Object struct {
	// Name is the object's name in its topic objects/<name>/pose.
	Name string
	// Quat is the orientation's layout in the observation.
	Quat QuatLayout
}

// Gripper says how the observation's gripper opening is computed from two finger
// joints. MetaWorld's Sawyer has two slide joints along the hand's y axis whose claws
// sit Separation apart at zero; the observation is the claws' distance divided by
// Normalizer, clipped to [0, 1]:
//
//	clip(|Separation + left - right| / Normalizer, 0, 1)
type Gripper struct {
	Right, Left string  // joint names in arm/joint_states
	Separation  float64 // metres between the claws with both joints at 0
	Normalizer  float64 // metres that count as fully open
}

// TopicOverrides replace default topic names. "" keeps the default; a relative name is
// taken under the namespace, an absolute one as is.
type TopicOverrides struct {
	Image       string
	EEPose      string
	JointStates string
	Goal        string
	Estop       string
	CmdVel      string
	Gripper     string
	Reward      string
	Diagnostics string
	SafetyState string
	// Objects maps an object name to its pose topic.
	Objects map[string]string
}

// Config configures Inputs, Builder and Outputs. Start from DefaultConfig.
type Config struct {
	// Namespace prefixes every default topic name ("" or "/" for the root).
	Namespace string
	// Objects fill the observation's object slots in this order (at most MaxObjects);
	// missing ones are zero, as MetaWorld pads them.
	Objects []Object
	// Joints are the joints read from arm/joint_states, in the order Joints reports
	// them. Every message must carry all of them (other joints are ignored). They must
	// include the gripper's two finger joints.
	Joints  []string
	Gripper Gripper
	// Frame is the frame poses must be given in; a message with an empty frame_id is
	// accepted too (as `rostopic pub` leaves it). "" accepts any frame.
	Frame string
	// Topics override default topic names.
	Topics TopicOverrides
}

// SawyerJoints are the joints the sim bridge publishes: the Sawyer's seven arm joints,
// then the right and left finger slides (sim/metaworld.RobotJoints, which the daemon
// may not import; the end-to-end test checks them against the bridge).
var SawyerJoints = []string{"right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6", "r_close", "l_close"}

// DefaultConfig is the sim bridge's interface under the root namespace: one object
// "object" with scipy's quaternion order, the Sawyer's joints and gripper, frame
// "world".
func DefaultConfig() Config {
	return Config{
		Objects: []Object{{Name: "object", Quat: QuatXYZW}},
		Joints:  append([]string(nil), SawyerJoints...),
		Gripper: Gripper{Right: "r_close", Left: "l_close", Separation: 0.1, Normalizer: 0.1},
		Frame:   "world",
	}
}

// LogInterval is the shortest time between two log lines about malformed messages on one
// topic; the lines in between are counted and reported with the next.
const LogInterval = 5 * time.Second

// Validate checks c; each error names its key.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace != "" && c.Namespace != "/" {
		if err := validGraphName(strings.Trim(c.Namespace, "/")); err != nil {
			errs = append(errs, fmt.Errorf("namespace: %w", err))
		}
	}
	if len(c.Objects) > MaxObjects {
		errs = append(errs, fmt.Errorf("objects: %d given, the observation has room for %d", len(c.Objects), MaxObjects))
	}
	seen := map[string]bool{}
	for i, o := range c.Objects {
		if err := validBaseName(o.Name); err != nil {
			errs = append(errs, fmt.Errorf("objects[%d].name: %w", i, err))
		} else if seen[o.Name] {
			errs = append(errs, fmt.Errorf("objects[%d].name: %q given twice", i, o.Name))
		}
		seen[o.Name] = true
		switch o.Quat {
		case QuatXYZW, QuatWXYZ, QuatNone:
		default:
			errs = append(errs, fmt.Errorf("objects[%d].quat: %q is not one of %q, %q, %q", i, o.Quat, QuatXYZW, QuatWXYZ, QuatNone))
		}
	}
	for name := range c.Topics.Objects {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("topics.objects: %q is not a configured object", name))
		}
	}
	if len(c.Joints) == 0 {
		errs = append(errs, errors.New("joints: empty (list the joints read from arm/joint_states)"))
	}
	joints := map[string]bool{}
	for i, j := range c.Joints {
		switch {
		case j == "":
			errs = append(errs, fmt.Errorf("joints[%d]: empty", i))
		case joints[j]:
			errs = append(errs, fmt.Errorf("joints[%d]: %q given twice", i, j))
		}
		joints[j] = true
	}
	g := c.Gripper
	if !joints[g.Right] {
		errs = append(errs, fmt.Errorf("gripper.right: %q is not in joints", g.Right))
	}
	if !joints[g.Left] {
		errs = append(errs, fmt.Errorf("gripper.left: %q is not in joints", g.Left))
	}
	if g.Right == g.Left {
		errs = append(errs, fmt.Errorf("gripper.left: %q is also gripper.right", g.Left))
	}
	if math.IsNaN(g.Separation) || math.IsInf(g.Separation, 0) {
		errs = append(errs, fmt.Errorf("gripper.separation: %v is not finite", g.Separation))
	}
	if !(g.Normalizer > 0) || math.IsInf(g.Normalizer, 0) {
		errs = append(errs, fmt.Errorf("gripper.normalizer: %v must be a positive distance in metres", g.Normalizer))
	}
	if c.Frame != "" && strings.ContainsAny(c.Frame, " \t\n") {
		errs = append(errs, fmt.Errorf("frame: %q contains white space", c.Frame))
	}
	t := c.Topics
	for _, kv := range [...]struct{ key, v string }{
		{"topics.image", t.Image}, {"topics.ee_pose", t.EEPose}, {"topics.joint_states", t.JointStates},
		{"topics.goal", t.Goal}, {"topics.estop", t.Estop}, {"topics.cmd_vel", t.CmdVel},
		{"topics.gripper", t.Gripper}, {"topics.reward", t.Reward}, {"topics.diagnostics", t.Diagnostics},
		{"topics.safety_state", t.SafetyState},
	} {
		if kv.v == "" {
			continue
		}
		if err := validGraphName(strings.TrimPrefix(kv.v, "/")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kv.key, err))
		}
	}
	for name, v := range t.Objects {
		if err := validGraphName(strings.TrimPrefix(v, "/")); err != nil {
			errs = append(errs, fmt.Errorf("topics.objects[%s]: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// validBaseName checks one ROS name segment: a letter, then letters, digits or _.
func validBaseName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '_')) {
			return fmt.Errorf("%q is not a ROS name (a letter, then letters, digits or _)", s)
		}
	}
	return nil
}

// validGraphName checks a relative ROS name: segments separated by single slashes.
func validGraphName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, part := range strings.Split(s, "/") {
		if err := validBaseName(part); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	return nil
}

// Topics are the resolved, global topic names.
type Topics struct {
	Image, EEPose, JointStates, Goal, Estop string

	// Objects are the pose topics of Config.Objects, in order.
	Objects []string

	CmdVel, Gripper, Reward, Diagnostics, SafetyState string
}

// ResolveTopics resolves the topic names: defaults from control/rosiface under the namespace,
// then the overrides. Call it on a validated Config.
func (c Config) ResolveTopics() Topics {
	d := rosiface.DefaultTopics(c.Namespace)
	pick := func(override, def string) string {
		switch {
		case override == "":
			return def
		case strings.HasPrefix(override, "/"):
			return override
		}
		return path.Join(d.Namespace, override)
	}
	t := Topics{
		Image:       pick(c.Topics.Image, d.Image),
		EEPose:      pick(c.Topics.EEPose, d.EEPose),
		JointStates: pick(c.Topics.JointStates, d.JointStates),
		Goal:        pick(c.Topics.Goal, d.Goal),
		Estop:       pick(c.Topics.Estop, d.Estop),
		CmdVel:      pick(c.Topics.CmdVel, d.CmdVel),
		Gripper:     pick(c.Topics.Gripper, d.Gripper),
		Reward:      pick(c.Topics.Reward, d.Reward),
		Diagnostics: pick(c.Topics.Diagnostics, d.Diagnostics),
		SafetyState: pick(c.Topics.SafetyState, path.Join(d.Namespace, "safety_state")),
	}
	for _, o := range c.Objects {
		t.Objects = append(t.Objects, pick(c.Topics.Objects[o.Name], d.ObjectPose(o.Name)))
	}
	return t
}
