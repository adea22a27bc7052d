package rosnodetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMasterLifecycle(t *testing.T) {
	m, err := Start("")
	if errors.Is(err, ErrNoROS) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := m.Command(ctx, "rosparam", "set", "/rosnodetest_probe", "7").CombinedOutput(); err != nil {
		t.Fatalf("rosparam set: %v: %s", err, out)
	}
	out, err := m.Command(ctx, "rosparam", "get", "/rosnodetest_probe").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "7" {
		t.Fatalf("rosparam get: %q %v", out, err)
	}

	// A restarted master listens on the same port and has forgotten everything.
	port := m.Port
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if m.Port != port || !m.Answers() {
		t.Fatalf("restarted master on port %d (was %d), answers %v", m.Port, port, m.Answers())
	}
	if out, err := m.Command(ctx, "rosparam", "get", "/rosnodetest_probe").CombinedOutput(); err == nil {
		t.Fatalf("parameter survived a restart: %s", out)
	}

	// A tool still running at Stop is ended with its process group.
	echo := m.Command(ctx, "rostopic", "echo", "/nothing_published_here")
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- echo.Wait() }()
	time.Sleep(300 * time.Millisecond)

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	<-waited
	if m.Answers() {
		t.Fatal("master answers after Stop")
	}
	if groupAlive(echo.Process.Pid) {
		t.Fatal("rostopic left running")
	}
}
