package core

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBinaryExitCodes: robodistilld's exit codes and messages for a bad command line, a
// bad configuration and a refused model. None of them needs ROS: the models are checked
// before the daemon joins the ROS graph.
func TestBinaryExitCodes(t *testing.T) {
	_, bin := binaries(t)
	dir := modelDir(t)
	q := strconv.Quote
	good := "version: 1\nmodels: {reward: " + q(filepath.Join(dir, "reward.onnx")) + ", policy: " + q(filepath.Join(dir, "policy.onnx")) + "}\n" +
		"log: {dir: " + q(filepath.Join(dir, "log")) + "}\nhttp: {listen: \"\"}\n" +
		"ros: {master_uri: \"http://127.0.0.1:1/\"}\n"
	conf := filepath.Join(dir, "daemon.yaml")
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(good+"loop: {rat_hz: 50}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(t.TempDir(), "policy.onnx")
	savePolicy(t, slow, reachNet(10), policyManifest("reach", 80, 0.01))
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"--help"}, 0, "Exit codes: 0 stopped by a signal"},
		{"unknown flag", []string{"--confg", conf}, 2, "unknown flag: --confg"},
		{"stray argument", []string{"--config", conf, "run"}, 2, `unexpected arguments ["run"]`},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, 2, "no such file"},
		{"unknown key", []string{"--config", bad}, 2, "line 6: loop.rat_hz: unknown key (loop has: rate_hz, spin_us, realtime_priority)"},
		{"bad override", []string{"--config", conf, "--set", "loop.rate_hz=0"}, 2, "loop.rate_hz"},
		{"bad log level", []string{"--config", conf, "--log-level", "loud"}, 2, "logging.level"},
		{"policy at another rate", []string{"--config", conf, "--set", "models.policy=" + slow, "--log-format", "console"}, 3,
			"control.rate_hz is 80 Hz, but loop.rate_hz is 50 Hz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, c.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.Contains(string(out), c.want) {
				t.Errorf("exit %d, want %d; output does not say %q?\n%s", code, c.code, c.want, out)
			}
		})
	}
}
