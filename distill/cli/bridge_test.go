package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"robodistill/control/rosnode/rosnodetest"
)

// TestSimBridge runs `sim bridge` against a real rosmaster found through ROS_MASTER_URI,
// waits until rostopic lists its topics, interrupts it and checks the JSON summary.
func TestSimBridge(t *testing.T) {
	m := rosnodetest.New(t)
	t.Setenv("ROS_MASTER_URI", m.URI)
	t.Setenv("ROS_IP", "127.0.0.1")
	t.Setenv("ROS_HOSTNAME", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	var code int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = Main(ctx, []string{"sim", "bridge", "--task", "reach", "--namespace", "sim1", "--size", "32", "--json"}, &out, &errb)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		list, _ := m.Command(lctx, "rostopic", "list").Output()
		lcancel()
		if strings.Contains(string(list), "/sim1/camera/image_raw") && strings.Contains(string(list), "/sim1/arm/cmd_vel") {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("topics not listed: %s\nstderr: %s", list, errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var st map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &st); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if st["steps"].(float64) < 1 || st["episodes"].(float64) != 1 {
		t.Fatalf("summary %v", st)
	}
}

func TestSimBridgeBadInputs(t *testing.T) {
	t.Setenv("ROS_MASTER_URI", "http://127.0.0.1:1/")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "bridge", "--task", "nope"}, `unknown task "nope"`},
		{[]string{"sim", "bridge", "--task", "reach", "--size", "999"}, "size: 999 outside 1..480"},
		{[]string{"sim", "bridge", "--task", "reach", "--rate", "60"}, "rate: 60 Hz not supported"},
		{[]string{"sim", "bridge", "--task", "reach", "--camera", "nosuch"}, `unknown camera "nosuch"`},
		{[]string{"sim", "bridge", "--task", "reach", "--name", "a-b"}, `name: "a-b" is not a ROS name`},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	t.Setenv("ROS_MASTER_URI", "localhost:11311")
	if code, _, stderr := run(t, "sim", "bridge", "--task", "reach"); code != 1 || !strings.Contains(stderr, "ROS_MASTER_URI") {
		t.Errorf("bad ROS_MASTER_URI: exit %d, %q", code, stderr)
	}
}
