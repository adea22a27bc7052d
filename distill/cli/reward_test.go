package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"robodistill/control/episode/episodetest"
	"robodistill/control/onnxio"
)

func TestRewardTrain(t *testing.T) {
	dir := t.TempDir()
	eps := filepath.Join(dir, "eps")
	episodetest.Collection(t, eps, episodetest.Options{Episodes: 5, Steps: 20, Size: 32, Seed: 2})
	labels := filepath.Join(dir, "labels.jsonl")
	if code, _, stderr := run(t, "label", "--episodes", eps, "--pairs", "150", "--out", labels, "--seed", "1"); code != 0 {
		t.Fatalf("label: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "reward.onnx")
	args := []string{"reward", "train", "--labels", labels, "--episodes", eps, "--out", out, "--ensemble", "2",
		"--epochs", "2", "--hidden", "8", "--vision", `{"width":24,"height":24}`, "--seed", "3", "--json"}
	code, stdout, stderr := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := oneJSON(t, stdout)
	for _, k := range []string{"val_accuracy", "disagreement", "flops_per_inference", "members", "models", "report", "pairs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks %q: %v", k, m)
		}
	}
	if len(m["models"].([]any)) != 2 {
		t.Errorf("models %v", m["models"])
	}
	for _, p := range []string{out, filepath.Join(dir, "reward.1.onnx")} {
		if _, err := onnxio.Verify(p); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "reward-report", "milestones.png")); err != nil {
		t.Error(err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reward", "train", "--labels", labels, "--episodes", eps}, "required"},
		{[]string{"reward", "train", "--labels", labels, "--episodes", eps, "--out", filepath.Join(dir, "r.bin")}, ".onnx"},
		{[]string{"reward", "train", "--labels", filepath.Join(dir, "none.jsonl"), "--episodes", eps, "--out", out}, "none.jsonl"},
		{[]string{"reward", "train", "--labels", labels, "--episodes", eps, "--out", out, "--vision", `{"widht":3}`}, "widht"},
		{[]string{"reward", "train", "--labels", labels, "--episodes", eps, "--out", out, "--ensemble", "0"}, "ensemble"},
		{[]string{"reward", "train", "--labels", labels, "--episodes", eps, "--out", out, "--labeler", "vlm"}, `"vlm"`},
	} {
		code, _, stderr := run(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error naming %s", c.args[2:], code, stderr, c.want)
		}
	}
}
