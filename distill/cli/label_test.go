package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"robodistill/control/episode/episodetest"
	"robodistill/distill/label/vlmtest"
)

func oneJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout is not one JSON line: %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLabelCommands(t *testing.T) {
	dir := t.TempDir()
	eps := filepath.Join(dir, "eps")
	episodetest.Collection(t, eps, episodetest.Options{Episodes: 3, Steps: 20, Size: 16, Seed: 1})
	out := filepath.Join(dir, "labels.jsonl")

	code, stdout, stderr := run(t, "label", "--episodes", eps, "--pairs", "40", "--labeler", "mistake:0.2", "--out", out, "--seed", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := oneJSON(t, stdout)
	if m["labelled"].(float64) != 40 || m["labeler"] != "mistake:0.2" || m["existing"].(float64) != 0 {
		t.Fatalf("summary %v", m)
	}
	// Asking for more continues the file.
	code, stdout, stderr = run(t, "label", "--episodes", eps, "--pairs", "60", "--labeler", "mistake:0.2", "--out", out, "--seed", "3", "--json")
	if m = oneJSON(t, stdout); code != 0 || m["existing"].(float64) != 40 || m["labelled"].(float64) != 20 {
		t.Fatalf("resume: exit %d %v %s", code, m, stderr)
	}

	// A VLM labeller against the in-process fake, with a response cache.
	srv := vlmtest.NewServer(vlmtest.Config{APIKey: "sk-t", ImageW: 16, ImageH: 16, Policy: vlmtest.Constant(`{"answer": "first"}`)})
	defer srv.Close()
	t.Setenv("OPENAI_API_KEY", "sk-t")
	code, stdout, stderr = run(t, "label", "--episodes", eps, "--pairs", "10", "--labeler", "vlm", "--base-url", srv.BaseURL(),
		"--model", "fake-vlm", "--prompt", "one-stage", "--image-size", "16", "--cache", filepath.Join(dir, "cache"), "--out", out, "--json")
	if code != 0 {
		t.Fatalf("vlm: exit %d: %s", code, stderr)
	}
	if m = oneJSON(t, stdout); m["inconsistent"].(float64) != 10 || m["ties"].(float64) != 10 {
		t.Errorf("an always-first VLM should be inconsistent on every pair: %v", m)
	}

	code, stdout, stderr = run(t, "label", "stats", "--labels", out, "--json")
	if code != 0 {
		t.Fatalf("stats: exit %d: %s", code, stderr)
	}
	var rep LabelStatsReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Labelers) != 2 {
		t.Fatalf("stats %s: %v", stdout, err)
	}
	if rep.Labelers[0].Count != 60 || rep.Labelers[1].Count != 10 || *rep.Labelers[1].OrderConsistencyRate != 0 {
		t.Errorf("stats %+v", rep.Labelers)
	}
	code, stdout, _ = run(t, "label", "stats", out)
	if code != 0 || !strings.Contains(stdout, "mistake:0.2 (teacher): 60 labels") || !strings.Contains(stdout, "order consistency 0.0%") {
		t.Errorf("human stats:\n%s", stdout)
	}
}

func TestLabelErrors(t *testing.T) {
	dir := t.TempDir()
	eps := filepath.Join(dir, "eps")
	episodetest.Collection(t, eps, episodetest.Options{Episodes: 1, Steps: 4, Size: 8})
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--labeler", "mistake:2"}, `--labeler: labeler spec "mistake:2": mistake needs ε in [0, 1], got "2"`},
		{[]string{"--labeler", "vlm", "--model", "", "--base-url", "http://127.0.0.1:1/v1"}, "model: missing"},
		{[]string{"--pairs", "0"}, "--pairs: 0"},
		{[]string{"--pairs", "100"}, "too few distinct frame pairs"},
		{[]string{"--on-disagree", "flip", "--labeler", "biased:0.5"}, `on-disagree: "flip", want tie or drop`},
	} {
		args := append([]string{"label", "--episodes", eps, "--out", filepath.Join(dir, "l.jsonl")}, tc.args...)
		code, _, stderr := run(t, args...)
		if code == 0 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.msg)
		}
	}
	if code, _, stderr := run(t, "label", "--episodes", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "l.jsonl")); code == 0 || !strings.Contains(stderr, "episodes.Open") {
		t.Errorf("missing collection: %d %s", code, stderr)
	}
}

func TestBenchLabel(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: &out, json: true}
	a.log = zap.NewNop()
	c := a.benchLabelCmd()
	c.SetArgs([]string{"--labels", "500", "--requests", "50", "--image-size", "32"})
	if err := c.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := oneJSON(t, out.String()); m["scripted_labels"].(float64) != 500 || m["vlm_requests"].(float64) != 50 {
		t.Errorf("report %v", m)
	}
}
