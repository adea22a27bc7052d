package obs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listenNotify stands in for systemd: a unixgram socket in a temp dir, named by
// NOTIFY_SOCKET for the test.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// recv reads one datagram, failing after timeout.
func recv(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// nothing checks that no datagram is waiting.
func nothing(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatal(err)
	}
}

func TestNotifier(t *testing.T) {
	conn := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() || n.WatchdogInterval() != 2*time.Second {
		t.Fatalf("enabled %v, watchdog %v", n.Enabled(), n.WatchdogInterval())
	}
	for _, step := range []struct {
		send func() error
		want string
	}{
		{func() error { return n.Status("loading models") }, "STATUS=loading models"},
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.Status("safety: hold\nstale camera") }, "STATUS=safety: hold stale camera"},
		{n.Stopping, "STOPPING=1"},
	} {
		if err := step.send(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, conn, 5*time.Second); got != step.want {
			t.Fatalf("got %q, want %q", got, step.want)
		}
	}
}

func TestNotifierOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("enabled %v, watchdog %v", n.Enabled(), n.WatchdogInterval())
	}
	for _, f := range []func() error{n.Ready, n.Watchdog, n.Stopping, func() error { return n.Status("x") }} {
		if err := f(); err != nil {
			t.Fatalf("outside systemd: %v", err)
		}
	}
	// Without a watchdog, RunWatchdog only waits.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := n.RunWatchdog(ctx, func() bool { t.Error("alive asked without a watchdog"); return true }); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"500000", "", 500 * time.Millisecond, false},
		{"500000", strconv.Itoa(os.Getpid()), 500 * time.Millisecond, false},
		{"500000", strconv.Itoa(os.Getpid() + 1), 0, false}, // another process's watchdog
		{"", "", 0, false},
		{"soon", "", 0, true},
		{"-5", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		n, err := NewNotifier()
		if (err != nil) != tc.err {
			t.Fatalf("WATCHDOG_USEC=%q: error %v", tc.usec, err)
		}
		if err == nil && n.WatchdogInterval() != tc.want {
			t.Fatalf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", tc.usec, tc.pid, n.WatchdogInterval(), tc.want)
		}
	}
}

func TestNotifierSendError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil {
		t.Fatal("Ready to a missing socket succeeded")
	}
}

// TestRunWatchdog checks that keep-alives flow while the loop is alive and stop when it
// stalls, so that systemd restarts a stuck daemon.
func TestRunWatchdog(t *testing.T) {
	conn := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms: a keep-alive every 10 ms
	t.Setenv("WATCHDOG_PID", "")
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	var alive atomic.Bool
	var asked atomic.Int32
	alive.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, func() bool { asked.Add(1); return alive.Load() })
	}()
	for range 3 {
		if got := recv(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	// Stalled: wait until RunWatchdog has asked a few more times, drain what was sent
	// before the switch, and expect nothing more.
	alive.Store(false)
	for start := asked.Load(); asked.Load() < start+3; {
		time.Sleep(time.Millisecond)
	}
	drain(conn)
	for start := asked.Load(); asked.Load() < start+3; {
		time.Sleep(time.Millisecond)
	}
	nothing(t, conn)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunWatchdog after cancel: %v", err)
	}
}

// drain discards the datagrams waiting.
func drain(conn *net.UnixConn) {
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}
