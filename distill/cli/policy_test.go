package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/episode/episodetest"
	"robodistill/control/onnxio"
)

// TestPolicyTrainAndEval trains a few hundred steps of SAC on reach with a distilled
// reward model (rendering and reward inference in the loop), exports the policy and runs
// it through 'eval'; then with the ground-truth reward.
func TestPolicyTrainAndEval(t *testing.T) {
	dir := t.TempDir()
	eps := filepath.Join(dir, "eps")
	episodetest.Collection(t, eps, episodetest.Options{Episodes: 4, Steps: 12, Size: 32, Seed: 3})
	labels := filepath.Join(dir, "labels.jsonl")
	if code, _, stderr := run(t, "label", "--episodes", eps, "--pairs", "60", "--out", labels); code != 0 {
		t.Fatalf("label: %s", stderr)
	}
	rew := filepath.Join(dir, "reward.onnx")
	if code, _, stderr := run(t, "reward", "train", "--labels", labels, "--episodes", eps, "--out", rew, "--ensemble", "2",
		"--epochs", "1", "--hidden", "8", "--vision", `{"width":24,"height":24}`); code != 0 {
		t.Fatalf("reward train: %s", stderr)
	}
	code, stdout, stderr := run(t, "bench", "cost", "--reward", rew, "--json")
	if code != 0 {
		t.Fatalf("bench cost: %s", stderr)
	}
	if c := oneJSON(t, stdout); c["members"].(float64) != 2 || c["reward_flops_per_step"].(float64) <= 0 || c["vlm_over_reward_flops"].(float64) < 1e3 {
		t.Errorf("bench cost: %v", c)
	}

	pol := filepath.Join(dir, "policy.onnx")
	code, stdout, stderr = run(t, "policy", "train", "--task", "reach", "--reward", rew, "--frame-size", "32", "--steps", "240",
		"--learning-starts", "200", "--batch", "32", "--hidden", "16", "--eval-every", "240", "--eval-episodes", "2",
		"--envs", "2", "--seed", "1", "--critic-norm", "--out", pol, "--json")
	if code != 0 {
		t.Fatalf("policy train: exit %d: %s", code, stderr)
	}
	m := oneJSON(t, stdout)
	if m["reward"] != "distilled" || m["steps"].(float64) != 240 {
		t.Errorf("summary %v", m)
	}
	if sac, _ := m["sac"].(map[string]any); sac == nil || sac["critic_norm"] != true || sac["hidden"] != float64(16) || sac["batch"] != float64(32) {
		t.Errorf("summary's sac %v: want critic_norm true, hidden 16, batch 32", m["sac"])
	}
	v, err := onnxio.Verify(pol)
	if err != nil {
		t.Fatal(err)
	}
	if c := v.Manifest.Control; c == nil || c.RateHz != 50 || c.ActionScale <= 0 {
		t.Errorf("policy manifest control %+v", c)
	}
	rv, _ := onnxio.Verify(rew)
	if v.Manifest.Training.Labeler != rv.SHA256 {
		t.Errorf("policy labeler %q, want the reward model's sha256 %s", v.Manifest.Training.Labeler, rv.SHA256)
	}

	code, stdout, stderr = run(t, "eval", "--task", "reach", "--policy", pol, "--episodes", "2", "--seed", "1", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	e := oneJSON(t, stdout)
	if e["task"] != "reach" || e["episodes"].(float64) != 2 || e["mean_steps"].(float64) <= 0 {
		t.Errorf("eval summary %v", e)
	}
	// The exported policy on the training run's evaluation seeds gives its final evaluation.
	final := m["mean_return"].(float64)
	if got := e["mean_return"].(float64); got < final-1e-3*abs(final) || got > final+1e-3*abs(final) {
		t.Errorf("eval mean return %g, the run's final evaluation %g", got, final)
	}

	for _, c := range [][]string{
		{"eval", "--task", "reach", "--policy", rew},
		{"eval", "--task", "reach", "--policy", pol, "--rate", "80"},
		{"policy", "train", "--task", "reach", "--reward", filepath.Join(dir, "none.onnx"), "--out", pol},
	} {
		if code, _, _ := run(t, c...); code == 0 {
			t.Errorf("%v succeeded", c)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestPolicyCurvesNames: runs of the same reward kind and seed (two distilled reward
// models) get their file's name in the legend and a colour each; the others keep theirs.
func TestPolicyCurvesNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name, reward string, seed int) string {
		p := filepath.Join(dir, name+".json")
		s := fmt.Sprintf(`{"task":"reach","reward":%q,"rate":50,"seed":%d,"curve":[{"step":0,"success_rate":0,"return":1},{"step":100,"success_rate":0.5,"return":2}]}`, reward, seed)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "curves")
	code, _, stderr := run(t, "policy", "curves", "--out", out,
		write("gt", "groundtruth", 0), write("cnn2", "online", 0), write("spatial", "online", 0), write("cnn2-s1", "online", 1))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "curves.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ngroundtruth seed 0,groundtruth,", "\nonline seed 0 (cnn2),online (cnn2),", "\nonline seed 0 (spatial),online (spatial),", "\nonline seed 1,online,"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("curves.csv lacks %q:\n%s", want, b)
		}
	}
}
