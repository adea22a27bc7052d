package obs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func getHealth(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func TestHealthz(t *testing.T) {
	m := newTestMetrics(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	h, err := NewHealth(m, 20*time.Millisecond, 10, clock.Now) // stalled after 200 ms
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(m, h, false))
	defer srv.Close()

	// Before the first cycle.
	code, body := getHealth(t, srv.URL)
	if code != 503 || body["status"] != "starting" || body["last_cycle_age"] != nil || body["safety_state"] != "ok" || body["max_cycle_age"] != 0.2 {
		t.Fatalf("before the first cycle: %d %v", code, body)
	}
	if h.Alive() {
		t.Fatal("alive before the first cycle")
	}

	m.SetModel("reward", "ab12", "/m/reward.onnx")
	m.SetModel("policy", "cd34", "/m/policy.onnx")
	m.SetSafetyState(1)
	m.ObserveCycle(t0, 0, time.Millisecond, false)
	clock.Set(t0.Add(15 * time.Millisecond))
	code, body = getHealth(t, srv.URL)
	if code != 200 || body["status"] != "ok" || body["safety_state"] != "hold" || body["last_cycle_age"] != 0.015 {
		t.Fatalf("running: %d %v", code, body)
	}
	models, _ := body["models"].(map[string]any)
	if r, _ := models["reward"].(map[string]any); r["sha256"] != "ab12" || r["path"] != "/m/reward.onnx" || len(models) != 2 {
		t.Fatalf("models %v", body["models"])
	}
	if !h.Alive() {
		t.Fatal("not alive while running")
	}

	// Exactly at the limit is still healthy; past it is not.
	clock.Set(t0.Add(200 * time.Millisecond))
	if code, _ := getHealth(t, srv.URL); code != 200 || !h.Alive() {
		t.Fatalf("at the limit: %d", code)
	}
	clock.Set(t0.Add(201 * time.Millisecond))
	code, body = getHealth(t, srv.URL)
	if code != 503 || body["status"] != "stalled" || body["last_cycle_age"] != 0.201 || h.Alive() {
		t.Fatalf("stalled: %d %v", code, body)
	}

	// Progress again.
	m.ObserveCycle(t0.Add(300*time.Millisecond), 0, time.Millisecond, false)
	clock.Set(t0.Add(310 * time.Millisecond))
	if code, _ := getHealth(t, srv.URL); code != 200 {
		t.Fatalf("recovered: %d", code)
	}

	// Methods and paths.
	res, err := http.Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d", res.StatusCode)
	}
	res, err = http.Head(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HEAD: %d", res.StatusCode)
	}
	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "robodistilld_loop_cycles_total 2") {
		t.Fatalf("/metrics: %.300s", b)
	}
	res, err = http.Get(srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("/other: %d", res.StatusCode)
	}
}

// TestLastCycleMonotonic checks that the last cycle keeps its monotonic clock reading, so
// that health ages are immune to wall-clock steps (NTP at boot).
func TestLastCycleMonotonic(t *testing.T) {
	m := newTestMetrics(t)
	h, err := NewHealth(m, 20*time.Millisecond, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveCycle(time.Now(), 0, 0, false)
	last := m.LastCycle()
	if last.Round(0) == last {
		t.Fatal("LastCycle lost the monotonic clock reading")
	}
	if !h.Alive() {
		t.Fatal("not alive right after a cycle")
	}
}

func TestNewHealthErrors(t *testing.T) {
	m := newTestMetrics(t)
	if _, err := NewHealth(m, 0, 10, nil); err == nil || err.Error() != "obs.NewHealth: period 0s and periods 10 must be positive" {
		t.Fatalf("got %v", err)
	}
	if _, err := NewHealth(m, time.Millisecond, 0, nil); err == nil {
		t.Fatal("0 periods accepted")
	}
}

func TestServerRun(t *testing.T) {
	m := newTestMetrics(t)
	h, err := NewHealth(m, 20*time.Millisecond, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", NewHandler(m, h, false))
	if err != nil {
		t.Fatal(err)
	}
	// A taken port fails at Listen, before the daemon reports ready.
	if _, err := Listen(s.Addr(), NewHandler(m, h, false)); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second Listen on %s: %v", s.Addr(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	m.ObserveCycle(time.Now(), 0, 0, false)
	code, body := getHealth(t, "http://"+s.Addr())
	if code != 200 || body["status"] != "ok" {
		t.Fatalf("%d %v", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Fatal("still serving after Run returned")
	}

	// Close releases a server that never ran.
	s2, err := Listen("127.0.0.1:0", NewHandler(m, h, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Listen(s2.Addr(), NewHandler(m, h, false))
	if err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	s3.Close()
}

// TestPProf: /debug/pprof/ is served only when asked for, and its trace handler answers
// with an execution trace.
func TestPProf(t *testing.T) {
	m := newTestMetrics(t)
	h, err := NewHealth(m, 20*time.Millisecond, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	off := httptest.NewServer(NewHandler(m, h, false))
	defer off.Close()
	if code, _ := get(off.URL + "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("pprof off: /debug/pprof/ answered %d, want 404", code)
	}
	on := httptest.NewServer(NewHandler(m, h, true))
	defer on.Close()
	if code, body := get(on.URL + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof on: /debug/pprof/ answered %d: %.200s", code, body)
	}
	code, body := get(on.URL + "/debug/pprof/trace?seconds=0.1")
	if code != http.StatusOK || !strings.HasPrefix(string(body), "go 1.") {
		t.Fatalf("pprof on: trace answered %d with %d bytes: %.40q", code, len(body), body)
	}
	if code, _ := get(on.URL + "/metrics"); code != http.StatusOK {
		t.Fatalf("pprof on: /metrics answered %d", code)
	}
}
