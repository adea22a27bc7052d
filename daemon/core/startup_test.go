package core

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"robodistill/control/rosnode/rosnodetest"
)

// TestStartupWaits: with rosmaster down the daemon says so in its systemd status and
// keeps retrying; once the master is up it registers and names the inputs it still
// waits for; stopped while waiting it reports STOPPING=1 and returns nil, never having
// reported READY.
func TestStartupWaits(t *testing.T) {
	m := rosnodetest.New(t)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	sock, notes := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	cfg := testConfig(t, modelDir(t))
	cfg.ROS.MasterURI, cfg.ROS.Host = m.URI, "127.0.0.1"
	log, buf := bufLogger(t, "daemon")
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()

	var seen []string
	wait := func(what string, d time.Duration) {
		t.Helper()
		deadline := time.After(d)
		for {
			select {
			case n := <-notes:
				seen = append(seen, n)
				if strings.Contains(n, "READY=1") {
					t.Fatalf("READY before the inputs arrived: %q", seen)
				}
				if strings.Contains(n, what) {
					return
				}
			case err := <-runErr:
				t.Fatalf("Run ended waiting for %q: %v (notifications %q)", what, err, seen)
			case <-deadline:
				t.Fatalf("no %q within %v (notifications %q)", what, d, seen)
			}
		}
	}
	wait("STATUS=waiting for rosmaster at "+m.URI, 10*time.Second)
	// /healthz answers while the daemon waits: not ready yet.
	res, err := http.Get("http://" + d.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"status":"starting"`) {
		t.Errorf("/healthz while waiting: %d %s", res.StatusCode, body)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	wait("STATUS=waiting for /camera/image_raw, /arm/ee_pose, /arm/joint_states, /objects/object/pose, /task/goal", 10*time.Second)
	at := time.Now()
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		if took := time.Since(at); took > 2*time.Second {
			t.Errorf("Run returned %v after cancel", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of cancel")
	}
	wait("STOPPING=1", time.Second)
	if !strings.Contains(buf.String(), "registered with rosmaster") {
		t.Errorf("log does not say the daemon registered")
	}
	t.Logf("notifications: %q", seen)
}

// TestProgressed: the watchdog's liveness is the loop's own progress, so a stalled loop
// stops feeding systemd.
func TestProgressed(t *testing.T) {
	var p uint64
	alive := progressed(func() uint64 { return p })
	p = 3
	if !alive() || alive() {
		t.Error("alive should report progress once")
	}
	p++
	if !alive() {
		t.Error("progress not seen")
	}
}
