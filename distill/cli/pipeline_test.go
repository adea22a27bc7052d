package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// The demo end to end at toy sizes, as `make demo` runs it: the built robodistill runs each
// stage as its own process, the robot stage starts rosmaster, the sim bridge and the built
// robodistilld. A second run resumes: the reward and the policy are not trained again.
func TestDemoPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both commands and runs the whole pipeline")
	}
	bins := testbin.Build(t, testbin.Robodistill, testbin.Robodistilld)
	out := filepath.Join(t.TempDir(), "demo")
	demo := func() DemoSummary {
		t.Helper()
		cmd := exec.Command(bins[0], "demo", "--out", out, "--episodes", "4", "--pairs", "100", "--ensemble", "1",
			"--demos", "2", "--steps", "1200", "--every", "600", "--online-pairs", "40", "--hidden", "32",
			"--critic-norm", "--robot-episodes", "1", "--json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("demo: %v\n%s", err, stderr.String())
		}
		var s DemoSummary
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
			t.Fatalf("demo summary %q: %v", stdout.String(), err)
		}
		return s
	}
	stages := func(s DemoSummary) string {
		var names []string
		for _, st := range s.Stages {
			n := st.Name
			if st.Skipped {
				n += "(skipped)"
			}
			names = append(names, n)
		}
		return strings.Join(names, " ")
	}

	s := demo()
	if got, want := stages(s), "collect label reward demos policy eval robot"; got != want {
		t.Fatalf("stages %q, want %q", got, want)
	}
	if s.Policy == nil || s.Policy.Steps != 1200 || len(s.Policy.Online) != 1 || s.Policy.Online[0].Step != 600 {
		t.Fatalf("policy summary %+v: want 1200 steps and one refresh, at 600 (none at the last step)", s.Policy)
	}
	// A full 50 Hz reach episode is 313 control steps, each a transition into the buffer.
	if d := s.Policy.Demos; d == nil || d.Episodes != 2 || d.Successes != 2 || d.Transitions != 2*313 {
		t.Fatalf("the policy's demonstrations %+v: want the 2 scripted episodes, both successful, 626 transitions", d)
	}
	if s.Eval == nil || s.Eval["episodes"] != float64(20) {
		t.Fatalf("eval %v", s.Eval)
	}
	if r := s.Robot; r == nil || r.Episodes != 1 || r.RateHz != 50 {
		t.Fatalf("robot %+v", r)
	}
	// The policy stage's log begins with its command line.
	log, err := os.ReadFile(filepath.Join(out, "logs", "policy.log"))
	if err != nil {
		t.Fatal(err)
	}
	if cmdline, _, _ := bytes.Cut(log, []byte("\n")); !bytes.Contains(cmdline, []byte(" --critic-norm")) {
		t.Errorf("the policy stage's command %q lacks --critic-norm", cmdline)
	}
	for _, f := range []string{"summary.json", "reward/reward.onnx", "policy/policy.onnx", "policy/policy.reward.onnx", "policy/eval.json", "demos/collection.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("demo output: %v", err)
		}
	}

	s = demo()
	if got, want := stages(s), "collect label reward(skipped) demos policy(skipped) eval robot"; got != want {
		t.Fatalf("the second run's stages %q, want %q", got, want)
	}
}
