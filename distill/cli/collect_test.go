package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestCollectJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c")
	args := []string{"collect", "--task", "reach", "--policy", "scripted", "--episodes", "2", "--seed", "3",
		"--camera", "topview", "--size", "16", "--max-steps", "15", "--out", out, "--json"}
	code, stdout, stderr := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &m); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout is not one JSON line: %q", stdout)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "bytes,episodes,frames,frames_per_sec,new,out,resumed,steps,success_rate,task" {
		t.Fatalf("keys %s", got)
	}
	if m["task"] != "reach" || m["episodes"].(float64) != 2 || m["new"].(float64) != 2 || m["out"] != out {
		t.Fatalf("summary %v", m)
	}
	// Again: nothing left to do.
	code, stdout, _ = run(t, args...)
	if code != 0 || !strings.Contains(stdout, `"resumed":2,"new":0`) {
		t.Fatalf("second run: exit %d %s", code, stdout)
	}
	code, stdout, stderr = run(t, "collect", "verify", out, "--json")
	if code != 0 || !strings.Contains(stdout, `"ok":true`) || !strings.Contains(stdout, `"episodes":2`) {
		t.Fatalf("verify: exit %d %s %s", code, stdout, stderr)
	}
	// A human run prints a report line.
	code, stdout, _ = run(t, "collect", "verify", out)
	if code != 0 || !strings.Contains(stdout, "2 episodes") || !strings.Contains(stdout, "every bag matches the index") {
		t.Fatalf("verify report: %q", stdout)
	}
}

func TestCollectBadInputs(t *testing.T) {
	dir := t.TempDir()
	stray := filepath.Join(dir, "stray")
	os.MkdirAll(stray, 0o755)
	os.WriteFile(filepath.Join(stray, "notes.txt"), []byte("x"), 0o644)
	out := filepath.Join(dir, "c")
	base := []string{"collect", "--episodes", "1", "--size", "8", "--max-steps", "3"}
	if code, _, stderr := run(t, append(base, "--task", "reach", "--out", out)...); code != 0 {
		t.Fatalf("setup: %s", stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", "fly", "--out", out}, `unknown task "fly"`},
		{[]string{"--task", "reach", "--camera", "fisheye", "--out", filepath.Join(dir, "d")}, `unknown camera "fisheye"`},
		{[]string{"--task", "reach", "--size", "1000", "--out", filepath.Join(dir, "d")}, "size 1000 outside 1..480"},
		{[]string{"--task", "reach", "--seed", "4", "--out", out}, `different arguments (seed is "0" there, "4" here)`},
		{[]string{"--task", "reach", "--out", stray}, "not an episode collection (no collection.json) and not empty"},
		{[]string{"--task", "reach"}, `required flag(s) "out" not set`},
	} {
		code, _, stderr := run(t, append(append([]string{}, base...), tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Error("a refused run created its folder")
	}
	for _, tc := range []struct {
		dir, want string
	}{
		{stray, "not an episode collection (no collection.json)"},
		{filepath.Join(dir, "none"), "no such file or directory"},
	} {
		if code, _, stderr := run(t, "collect", "verify", tc.dir); code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("verify %s: exit %d %q", tc.dir, code, stderr)
		}
	}
	// A damaged bag fails verification, naming it.
	bag := filepath.Join(out, "episodes", "episode-000000.bag")
	data, _ := os.ReadFile(bag)
	os.WriteFile(bag, data[:len(data)-100], 0o644)
	if code, _, stderr := run(t, "collect", "verify", out); code != 1 || !strings.Contains(stderr, "episode-000000.bag") {
		t.Errorf("verify of a truncated bag: exit %d %q", code, stderr)
	}
}
