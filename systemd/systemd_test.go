package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` exposure level the daemon's unit
// may have (0 is fully locked down, 10 is unprotected).
const maxExposure = 2.5

// units are the unit files and the binary each one starts.
var units = []struct{ file, exec string }{
	{"robodistilld.service", "/usr/local/bin/robodistilld"},
	{"rosmaster.service", "/usr/bin/rosmaster"},
}

func analyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	return path
}

// stage copies the units into a temp dir for systemd-analyze. verify refuses a unit whose
// ExecStart binary does not exist, and neither robodistilld nor rosmaster need be
// installed where the tests run, so each copy's ExecStart path is rewritten to a stub
// executable in the same dir; nothing else in the files changes.
func stage(t *testing.T, edit func(name, unit string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, u := range units {
		data, err := os.ReadFile(u.file)
		if err != nil {
			t.Fatal(err)
		}
		stub := filepath.Join(dir, strings.TrimSuffix(u.file, ".service")+"-stub")
		if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		unit := string(data)
		if n := strings.Count(unit, "ExecStart="+u.exec+" "); n != 1 {
			t.Fatalf("%s: %d ExecStart lines running %s, want 1", u.file, n, u.exec)
		}
		unit = strings.Replace(unit, "ExecStart="+u.exec+" ", "ExecStart="+stub+" ", 1)
		if edit != nil {
			unit = edit(u.file, unit)
		}
		if err := os.WriteFile(filepath.Join(dir, u.file), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestVerify runs systemd-analyze verify on both units and wants it silent.
func TestVerify(t *testing.T) {
	sa := analyze(t)
	dir := stage(t, nil)
	out, err := run(t, dir, sa, "verify", "./robodistilld.service", "./rosmaster.service")
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check can fail: a misspelt key is reported.
	dir = stage(t, func(name, unit string) string {
		return strings.Replace(unit, "RestartSec=", "RestartSecs=", 1)
	})
	out, _ = run(t, dir, sa, "verify", "./robodistilld.service")
	if !strings.Contains(out, "RestartSecs") {
		t.Fatalf("verify did not report a misspelt key:\n%s", out)
	}
}

var exposureRe = regexp.MustCompile(`Overall exposure level for (\S+): (\d+(?:\.\d+)?)`)

// exposure runs systemd-analyze security --offline on a unit file and returns its overall
// exposure level.
func exposure(t *testing.T, sa, dir, unit string) float64 {
	t.Helper()
	out, err := run(t, dir, sa, "security", "--offline=true", "--no-pager", "./"+unit)
	if err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
	m := exposureRe.FindStringSubmatch(out)
	if m == nil || m[1] != unit {
		t.Fatalf("no overall exposure level for %s in:\n%s", unit, out)
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSecurityExposure(t *testing.T) {
	sa := analyze(t)
	dir := stage(t, nil)
	for _, u := range units {
		v := exposure(t, sa, dir, u.file)
		t.Logf("%s: overall exposure level %.1f (limit %.1f)", u.file, v, maxExposure)
		if v > maxExposure {
			t.Errorf("%s: exposure %.1f above %.1f", u.file, v, maxExposure)
		}
	}
	// The measure responds to the hardening: without it the exposure is high.
	dir = stage(t, func(name, unit string) string {
		head, _, _ := strings.Cut(unit, "# Sandboxing")
		return head + "\n[Install]\nWantedBy=multi-user.target\n"
	})
	if v := exposure(t, sa, dir, "robodistilld.service"); v <= maxExposure {
		t.Errorf("robodistilld.service without its sandboxing section: exposure %.1f, expected above %.1f", v, maxExposure)
	}
}

// settings reads a unit's [Service] and [Unit] assignments (key → values in order).
func settings(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not an assignment: %q", file, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// TestDaemonUnitContract checks the settings the daemon and its operators rely on.
func TestDaemonUnitContract(t *testing.T) {
	s := settings(t, "robodistilld.service")
	for k, want := range map[string]string{
		"Type":                   "notify",
		"NotifyAccess":           "main",
		"ExecStart":              "/usr/local/bin/robodistilld --config /etc/robodistill/daemon.yaml",
		"WatchdogSec":            "2s",
		"Restart":                "on-failure",
		"RestartSec":             "1",
		"DynamicUser":            "yes",
		"StateDirectory":         "robodistill",
		"ConfigurationDirectory": "robodistill",
		"TimeoutStopSec":         "5",
		"KillSignal":             "SIGTERM",
		"ProtectSystem":          "strict",
		"PrivateDevices":         "yes",
		"CapabilityBoundingSet":  "",
		"AmbientCapabilities":    "",
	} {
		if got := s[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"Wants", "After"} {
		for _, dep := range []string{"rosmaster.service", "network-online.target"} {
			if len(s[k]) != 1 || !slices.Contains(strings.Fields(s[k][0]), dep) {
				t.Errorf("%s=%q lacks %s", k, s[k], dep)
			}
		}
	}
	if got := s["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", got)
	}
	for k, vs := range s {
		for _, v := range vs {
			if strings.Contains(v, "CAP_SYS_NICE") {
				t.Errorf("%s=%s grants CAP_SYS_NICE", k, v)
			}
		}
	}
	r := settings(t, "rosmaster.service")
	if got := r["ExecStart"]; len(got) != 1 || got[0] != "/usr/bin/rosmaster --core -p 11311" {
		t.Errorf("rosmaster ExecStart=%q", got)
	}
	if got := r["Type"]; len(got) != 1 || got[0] != "simple" {
		t.Errorf("rosmaster Type=%q", got)
	}
}
