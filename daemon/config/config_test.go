package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testModels are stand-in model files: the config checks that they exist, not what they
// hold (control/runtime verifies models).
func testModels(t testing.TB) (reward, policy string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/models")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "reward.onnx"), filepath.Join(dir, "policy.onnx")
}

// clearROSEnv makes Default independent of the machine's ROS environment.
func clearROSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"ROS_MASTER_URI", "ROS_NAMESPACE", "ROS_HOSTNAME", "ROS_IP"} {
		t.Setenv(k, "")
	}
}

// withModels appends a models section naming the test models unless the input has its
// own; appending keeps the input's line numbers.
func withModels(t testing.TB, s string) string {
	if !strings.HasPrefix(s, "version: 1\n") || strings.Contains(s, "models:") {
		return s
	}
	r, p := testModels(t)
	return s + "\nmodels:\n  reward: " + r + "\n  policy: " + p + "\n"
}

func TestDefaultValidates(t *testing.T) {
	clearROSEnv(t)
	c := Default()
	c.Models.Reward, c.Models.Policy = testModels(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("Default with existing models: %v", err)
	}
	// Without the models installed, only the models are wrong.
	err := Default().Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "models.reward" {
		t.Fatalf("Default on a machine without models: %v", err)
	}
	if got, want := err.Error(), "models.reward: file /var/lib/robodistill/models/reward.onnx: no such file\n"+
		"models.policy: file /var/lib/robodistill/models/policy.onnx: no such file"; got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDefaultsFromEnvironment(t *testing.T) {
	clearROSEnv(t)
	d := Default().ROS
	if d != (ROS{MasterURI: "http://localhost:11311/", Node: "robodistilld", Namespace: "/"}) {
		t.Fatalf("empty environment: %+v", d)
	}
	t.Setenv("ROS_MASTER_URI", "http://master:11312/")
	t.Setenv("ROS_NAMESPACE", "/robot1")
	t.Setenv("ROS_IP", "10.0.0.7")
	if d := Default().ROS; d != (ROS{MasterURI: "http://master:11312/", Node: "robodistilld", Namespace: "/robot1", Host: "10.0.0.7"}) {
		t.Fatalf("environment: %+v", d)
	}
	t.Setenv("ROS_HOSTNAME", "arm.local") // wins over ROS_IP, as in roscpp and rospy
	if h := Default().ROS.Host; h != "arm.local" {
		t.Fatalf("ROS_HOSTNAME and ROS_IP: host %q", h)
	}
	// The file wins over the environment.
	c, err := Parse([]byte(withModels(t, "version: 1\nros:\n  master_uri: http://other:11311/\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.ROS.MasterURI != "http://other:11311/" || c.ROS.Namespace != "/robot1" || c.ROS.Host != "arm.local" {
		t.Fatalf("file over environment: %+v", c.ROS)
	}
	// A bad environment is reported under the key, saying where the value came from.
	t.Setenv("ROS_MASTER_URI", "localhost:11311")
	_, err = Parse([]byte(withModels(t, "version: 1\n")))
	if want := `ros.master_uri: "localhost:11311": want http://HOST:PORT/ (the default comes from $ROS_MASTER_URI)`; err == nil || err.Error() != want {
		t.Fatalf("bad ROS_MASTER_URI: got %v, want %s", err, want)
	}
}

func TestParseMinimal(t *testing.T) {
	clearROSEnv(t)
	r, p := testModels(t)
	want := Default()
	want.Models.Reward, want.Models.Policy = r, p
	for _, in := range []string{
		"version: 1\n",
		"version: 1\nloop:\nsafety:\n", // empty sections keep their defaults
		"{version: 1, loop: {rate_hz: 50}, models: {reward: " + r + ", policy: " + p + "}}",
	} {
		c, err := Parse([]byte(withModels(t, in)))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c != want {
			t.Fatalf("%q:\ngot  %+v\nwant %+v", in, c, want)
		}
	}
}

func TestParseValues(t *testing.T) {
	clearROSEnv(t)
	in := withModels(t, `version: 1
ros: {master_uri: "http://10.0.0.1:11311", node: arm_daemon, namespace: /cell2, host: 10.0.0.2}
loop: {rate_hz: 100, spin_us: 300, realtime_priority: 0}
vision: {camera_width: 640, camera_height: 480, camera_encoding: bgr8}
topics: {image: /usb_cam/image_raw}
safety:
  action:
    low: &low [-0.5, -0.5, -0.5, -1]
    high: [0.5, 0.5, 0.5, 1]
  workspace: {min: [-0.3, 0.45, 0.1], max: [0.3, 0.9, 0.4]}
  max_delta: [0.2, 0.2, 0.2, 1e0]
  camera_max_age: 150ms
  state_max_age: 50ms
  stop_after: 1.5s
log: {enabled: false, dir: /data/log, queue: 64, chunk: 5m}
http: {listen: ":9100", health_periods: 5}
logging: {format: json, level: debug}
`)
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Models.Reward, want.Models.Policy = testModels(t)
	want.ROS = ROS{MasterURI: "http://10.0.0.1:11311", Node: "arm_daemon", Namespace: "/cell2", Host: "10.0.0.2"}
	want.Loop = Loop{RateHz: 100, SpinUS: 300, RealtimePriority: 0}
	want.Vision = Vision{CameraWidth: 640, CameraHeight: 480, CameraEncoding: "bgr8"}
	want.Topics.Image = "/usb_cam/image_raw"
	want.Safety = Safety{
		Action:       Range4{Low: [4]float64{-0.5, -0.5, -0.5, -1}, High: [4]float64{0.5, 0.5, 0.5, 1}},
		Workspace:    Box{Min: [3]float64{-0.3, 0.45, 0.1}, Max: [3]float64{0.3, 0.9, 0.4}},
		MaxDelta:     [4]float64{0.2, 0.2, 0.2, 1},
		CameraMaxAge: 150 * time.Millisecond, StateMaxAge: 50 * time.Millisecond, StopAfter: 1500 * time.Millisecond,
	}
	want.Log = Log{Enabled: false, Dir: "/data/log", Queue: 64, Chunk: 5 * time.Minute}
	want.HTTP = HTTP{Listen: ":9100", HealthPeriods: 5}
	want.Logging = Logging{Format: "json", Level: "debug"}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if c.Loop.Period() != 10*time.Millisecond || c.Loop.Spin() != 300*time.Microsecond {
		t.Fatalf("period %v spin %v", c.Loop.Period(), c.Loop.Spin())
	}
}

func TestLoad(t *testing.T) {
	clearROSEnv(t)
	dir := t.TempDir()
	r, p := testModels(t)
	path := filepath.Join(dir, "daemon.yaml")
	body := "version: 1\nmodels:\n  reward: " + r + "\n  policy: /nowhere/policy.onnx\nloop:\n  rate_hz: 2000\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := "config " + path + ": line 4: models.policy: file /nowhere/policy.onnx: no such file\n" +
		"line 6: loop.rate_hz: must be 1 to 1000, got 2000"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	// Overrides repair the file before it is validated, and lose the overridden lines.
	c, err := LoadWithOverrides(path, []string{"models.policy=" + p, "loop.rate_hz=25"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Models.Policy != p || c.Loop.RateHz != 25 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	_, err = LoadWithOverrides(path, []string{"models.policy=" + p, "loop.rate_hz=0"})
	if want := "config " + path + ": loop.rate_hz: must be 1 to 1000, got 0"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if want := "config: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("missing file: got %v, want %s", err, want)
	}
}

func TestModelFiles(t *testing.T) {
	clearROSEnv(t)
	dir := t.TempDir()
	_, p := testModels(t)
	lone := filepath.Join(dir, "lone.onnx") // a model without its manifest
	if err := os.WriteFile(lone, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ reward, want string }{
		{"/x/reward.onnx", "models.reward: file /x/reward.onnx: no such file"},
		{"reward.onnx", `models.reward: must be an absolute path, got "reward.onnx"`},
		{dir, "models.reward: file " + dir + ": is a directory"},
		{lone, "models.reward: manifest " + lone + ".json: no such file (written next to the model by robodistill)"},
		{"/dev/null", "models.reward: file /dev/null: not a regular file"},
	} {
		c := Default()
		c.Models.Reward, c.Models.Policy = tc.reward, p
		if err := c.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("reward %q: got %v, want %s", tc.reward, err, tc.want)
		}
	}
}

func TestTopicsResolve(t *testing.T) {
	tp := Default().Topics
	tp.Goal = "/mocap/goal"
	got := tp.Resolve("/robot1")
	if got.Image != "/robot1/camera/image_raw" || got.Goal != "/mocap/goal" || got.CmdVel != "/robot1/arm/cmd_vel" {
		t.Fatalf("under /robot1: %+v", got)
	}
	if got.ObjectPose("puck") != "/robot1/objects/puck/pose" {
		t.Fatalf("object pose: %s", got.ObjectPose("puck"))
	}
	for _, ns := range []string{"", "/"} {
		if got := Default().Topics.Resolve(ns); got.Reward != "/reward" || got.Estop != "/estop" {
			t.Fatalf("namespace %q: %+v", ns, got)
		}
	}
}
