package rosio

import (
	"math"
	"reflect"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"default", func(c *Config) {}, ""},
		{"namespace", func(c *Config) { c.Namespace = "/robot 1" }, `namespace: "robot 1": "robot 1" is not a ROS name (a letter, then letters, digits or _)`},
		{"too many objects", func(c *Config) {
			c.Objects = []Object{{"a", QuatXYZW}, {"b", QuatXYZW}, {"c", QuatXYZW}}
		}, "objects: 3 given, the observation has room for 2"},
		{"object name", func(c *Config) { c.Objects[0].Name = "9lives" }, `objects[0].name: "9lives" is not a ROS name (a letter, then letters, digits or _)`},
		{"object twice", func(c *Config) { c.Objects = append(c.Objects, c.Objects[0]) }, `objects[1].name: "object" given twice`},
		{"quat layout", func(c *Config) { c.Objects[0].Quat = "zyx" }, `objects[0].quat: "zyx" is not one of "xyzw", "wxyz", "none"`},
		{"no joints", func(c *Config) { c.Joints = nil }, "joints: empty (list the joints read from arm/joint_states)\n" +
			`gripper.right: "r_close" is not in joints` + "\n" + `gripper.left: "l_close" is not in joints`},
		{"joint twice", func(c *Config) { c.Joints = append(c.Joints, "r_close") }, `joints[9]: "r_close" given twice`},
		{"same finger", func(c *Config) { c.Gripper.Left = "r_close" }, `gripper.left: "r_close" is also gripper.right`},
		{"normalizer", func(c *Config) { c.Gripper.Normalizer = 0 }, "gripper.normalizer: 0 must be a positive distance in metres"},
		{"separation", func(c *Config) { c.Gripper.Separation = math.NaN() }, "gripper.separation: NaN is not finite"},
		{"frame", func(c *Config) { c.Frame = "my frame" }, `frame: "my frame" contains white space`},
		{"topic", func(c *Config) { c.Topics.CmdVel = "arm//cmd" }, `topics.cmd_vel: "arm//cmd": empty`},
		{"object topic for unknown object", func(c *Config) { c.Topics.Objects = map[string]string{"cup": "/mocap/cup"} }, `topics.objects: "cup" is not a configured object`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestResolveTopics(t *testing.T) {
	c := DefaultConfig()
	c.Namespace = "robot1"
	c.Objects = append(c.Objects, Object{"puck", QuatWXYZ})
	c.Topics.Image = "/usb_cam/image_raw"
	c.Topics.Goal = "planner/goal"
	c.Topics.Objects = map[string]string{"puck": "/vicon/puck/pose"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.ResolveTopics()
	want := Topics{
		Image: "/usb_cam/image_raw", EEPose: "/robot1/arm/ee_pose", JointStates: "/robot1/arm/joint_states",
		Goal: "/robot1/planner/goal", Estop: "/robot1/estop",
		Objects: []string{"/robot1/objects/object/pose", "/vicon/puck/pose"},
		CmdVel:  "/robot1/arm/cmd_vel", Gripper: "/robot1/gripper/command", Reward: "/robot1/reward",
		Diagnostics: "/robot1/diagnostics", SafetyState: "/robot1/safety_state",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if root := DefaultConfig().ResolveTopics(); root.Image != "/camera/image_raw" || root.SafetyState != "/safety_state" {
		t.Fatalf("root namespace: %+v", root)
	}
}
