package config

import (
	"testing"
	"time"
)

func TestApplyOverrides(t *testing.T) {
	clearROSEnv(t)
	r, p := testModels(t)
	base := Default()
	base.Models.Reward = r
	base.Models.Policy = "/not/installed.onnx" // the override repairs it

	got, err := ApplyOverrides(base, []string{
		"loop.rate_hz=100",
		"models.policy=" + p,
		"models.watch=true",
		"safety.max_delta[3]=1",
		"safety.workspace.min=[-0.4, 0.45, 0.1]",
		"safety.camera_max_age=150ms",
		"http.listen=",           // empty: disabled
		"loop={spin_us: 200}",    // a section: keys not named keep their values
		"logging.level=warn",     // later overrides win
		"logging.level = debug ", // spaces around the key and value are ignored
		"ros.namespace=/cell2",
		"topics.image=/usb_cam/image_raw",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := base
	want.Loop = Loop{RateHz: 100, SpinUS: 200, RealtimePriority: 50}
	want.Models.Policy = p
	want.Models.Watch = true
	want.Safety.MaxDelta[3] = 1
	want.Safety.Workspace.Min = [3]float64{-0.4, 0.45, 0.1}
	want.Safety.CameraMaxAge = 150 * time.Millisecond
	want.HTTP.Listen = ""
	want.Logging.Level = "debug"
	want.ROS.Namespace = "/cell2"
	want.Topics.Image = "/usb_cam/image_raw"
	if got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if base.Loop.RateHz != 50 || base.Models.Policy != "/not/installed.onnx" {
		t.Fatalf("ApplyOverrides changed its argument: %+v", base)
	}
	// No overrides: just validation.
	if _, err := ApplyOverrides(want, nil); err != nil {
		t.Fatal(err)
	}
}

func TestApplyOverridesErrors(t *testing.T) {
	clearROSEnv(t)
	c := Default()
	c.Models.Reward, c.Models.Policy = testModels(t)
	for _, tc := range []struct{ set, want string }{
		{"loop.rate_hz", `override "loop.rate_hz": want KEY=VALUE, e.g. loop.rate_hz=100`},
		{"=5", `override "=5": want KEY=VALUE, e.g. loop.rate_hz=100`},
		{"loop.rat_hz=5", `override "loop.rat_hz=5": loop.rat_hz: unknown key (loop has: rate_hz, spin_us, realtime_priority)`},
		{"lop.rate_hz=5", `override "lop.rate_hz=5": lop: unknown key (top-level keys: version, ros, loop, models, vision, topics, safety, log, http, logging)`},
		{"loop.rate_hz.x=5", `override "loop.rate_hz.x=5": loop.rate_hz: has no keys below it (not a section)`},
		{"loop.rate_hz=fast", `override "loop.rate_hz=fast": loop.rate_hz: want an integer, got "fast"`},
		{"loop.rate_hz=", `override "loop.rate_hz=": loop.rate_hz: want an integer, got ""`},
		{"loop.rate_hz=0", `loop.rate_hz: must be 1 to 1000, got 0`},
		{"loop={rate: 5}", `override "loop={rate: 5}": loop.rate: unknown key (loop has: rate_hz, spin_us, realtime_priority)`},
		{"safety.max_delta[4]=1", `override "safety.max_delta[4]=1": safety.max_delta: index 4 out of range: it has 4 numbers`},
		{"safety.max_delta[x]=1", `override "safety.max_delta[x]=1": safety.max_delta: bad index in "max_delta[x]": want max_delta[N]`},
		{"loop.rate_hz[0]=1", `override "loop.rate_hz[0]=1": loop.rate_hz: is not a list`},
		{"safety.max_delta=[1, 1]", `override "safety.max_delta=[1, 1]": safety.max_delta: want 4 numbers, got 2`},
		{"safety.max_delta=[1, 1, 1, 1, 3]", `override "safety.max_delta=[1, 1, 1, 1, 3]": safety.max_delta: want 4 numbers, got 5`},
		{"safety.max_delta=[1, 1, 1, 3]", `safety.max_delta[3]: must be above 0 and at most 2 (the whole action range), got 3`},
		{"models.reward=[", `override "models.reward=[": models.reward: value: yaml: line 1: did not find expected node content`},
		{"models.reward=/x/r.onnx", `models.reward: file /x/r.onnx: no such file`},
		{"ros.node=7", `override "ros.node=7": ros.node: want a string, got 7`},
		{"version=2", `override "version=2": version: set it in the file`},
	} {
		got, err := ApplyOverrides(c, []string{tc.set})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v\nwant %s", tc.set, err, tc.want)
		}
		if err != nil && got != (Config{}) {
			t.Errorf("%q: error with a config", tc.set)
		}
	}
}

// TestOverridePathsMatchSchema sets every leaf of the schema through ApplyOverrides to
// its own default value: the flag reaches every key the file has.
func TestOverridePathsMatchSchema(t *testing.T) {
	clearROSEnv(t)
	c := Default()
	c.Models.Reward, c.Models.Policy = testModels(t)
	values := map[string]string{
		"ros.master_uri": "http://localhost:11311/", "ros.node": "robodistilld", "ros.namespace": "/", "ros.host": "",
		"loop.rate_hz": "50", "loop.spin_us": "0", "loop.realtime_priority": "50",
		"models.reward": c.Models.Reward, "models.policy": c.Models.Policy, "models.watch": "false",
		"vision.camera_width": "0", "vision.camera_height": "0", "vision.camera_encoding": "",
		"topics.image": "camera/image_raw", "topics.camera_info": "camera/camera_info", "topics.ee_pose": "arm/ee_pose",
		"topics.joint_states": "arm/joint_states", "topics.objects": "objects", "topics.goal": "task/goal",
		"topics.estop": "estop", "topics.cmd_vel": "arm/cmd_vel", "topics.gripper": "gripper/command",
		"topics.reward": "reward", "topics.diagnostics": "diagnostics",
		"safety.action.low": "[-1, -1, -1, -1]", "safety.action.high": "[1, 1, 1, 1]",
		"safety.workspace.min": "[-0.5, 0.4, 0.05]", "safety.workspace.max": "[0.5, 1, 0.5]",
		"safety.max_delta": "[0.5, 0.5, 0.5, 2]", "safety.camera_max_age": "200ms", "safety.state_max_age": "100ms",
		"safety.stop_after": "1s",
		"log.enabled":       "true", "log.dir": "/var/lib/robodistill/log", "log.queue": "1024", "log.chunk": "1m",
		"http.listen": "127.0.0.1:9477", "http.health_periods": "10", "http.pprof": "false",
		"logging.format": "auto", "logging.level": "info",
	}
	n := 0
	for _, p := range Paths() {
		if p == "version" || isSection(p) {
			continue
		}
		v, ok := values[p]
		if !ok {
			t.Errorf("no test value for key %s", p)
			continue
		}
		n++
		got, err := ApplyOverrides(c, []string{p + "=" + v})
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if got != c {
			t.Errorf("%s=%s changed the config: %+v", p, v, got)
		}
	}
	if n != len(values) {
		t.Errorf("%d test values, %d schema keys", len(values), n)
	}
}

func isSection(p string) bool {
	for _, q := range Paths() {
		if len(q) > len(p) && q[:len(p)+1] == p+"." {
			return true
		}
	}
	return false
}
