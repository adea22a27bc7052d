package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"robodistill/sim/frames"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSimRolloutJSON(t *testing.T) {
	code, out, stderr := run(t, "sim", "rollout", "--task", "reach", "--policy", "scripted", "--episodes", "3", "--seed", "5", "--rate", "50", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout is not one JSON line: %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "episodes,mean_return,mean_steps,steps_per_sec,success_rate,task" {
		t.Fatalf("keys %s", got)
	}
	if m["task"] != "reach" || m["episodes"].(float64) != 3 || m["success_rate"].(float64) != 1 {
		t.Fatalf("summary %v", m)
	}
}

func TestSimRender(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "f.png")
	code, _, stderr := run(t, "sim", "render", "--task", "drawer-open", "--seed", "2", "--step", "5", "--camera", "topview", "--size", "40", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := frames.ReadPNG(out)
	if err != nil || f.W != 40 || f.H != 40 {
		t.Fatalf("frame %v %v", f, err)
	}
}

func TestSimTasksList(t *testing.T) {
	code, out, stderr := run(t, "sim", "tasks", "--episodes", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 8 {
		t.Fatalf("%d tasks", len(rows))
	}
	for _, r := range rows {
		if r["goal"] == "" {
			t.Errorf("task %v has no goal text", r["task"])
		}
	}
}

func TestBadInputs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "rollout", "--task", "nope"}, `unknown task "nope"`},
		{[]string{"sim", "rollout", "--task", "reach", "--policy", "greedy"}, `unknown policy "greedy"`},
		{[]string{"sim", "rollout", "--task", "reach", "--rate", "60"}, "rate 60 Hz not supported"},
		{[]string{"sim", "rollout"}, `required flag(s) "task" not set`},
		{[]string{"sim", "render", "--task", "reach", "--camera", "nocam", "--out", "/tmp/x.png"}, `unknown camera "nocam"`},
		{[]string{"sim", "render", "--task", "reach", "--size", "4000"}, "--size 4000"},
		{[]string{"--assets", "/nonexistent", "sim", "rollout", "--task", "reach"}, "metaworld assets not found"},
		{[]string{"sim", "rollout", "--task", "reach", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"reward", "probe"}, "--reward is required"},
		{[]string{"reward", "probe", "--reward", "groundtruth", "--goals", "0"}, "--goals: must be at least 1, got 0"},
		{[]string{"reward", "probe", "--reward", "/nonexistent.onnx"}, "open /nonexistent.onnx: no such file or directory"},
		{[]string{"--assets", "/nonexistent", "reward", "probe", "--reward", "groundtruth"}, "metaworld assets not found"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBenchSimSmall(t *testing.T) {
	code, out, stderr := run(t, "bench", "sim", "--steps", "20", "--repeats", "1", "--frames", "2", "--sizes", "32", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep SimBench
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.GoEnvStepsPerSec <= 0 || rep.CPlainStepsPerSec <= 0 || rep.RenderFPS[32] <= 0 {
		t.Fatalf("report %+v", rep)
	}
}
