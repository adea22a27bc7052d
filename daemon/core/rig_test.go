package core

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/control/rosnode/rosnodetest"
	"robodistill/control/testbin"
)

// The end-to-end rig: a real rosmaster (rosnodetest), the real sim bridge as the
// subprocess it is in production, and an observer node that watches the daemon's outputs,
// relays the bridge's camera to the daemon (so that a test can stop the stream) and
// publishes the estop.

func TestMain(m *testing.M) { testbin.Main(m) }

// binaries builds robodistill (the sim bridge) and robodistilld once per test run.
func binaries(t *testing.T) (robodistill, robodistilld string) {
	t.Helper()
	b := testbin.Build(t, testbin.Robodistill, testbin.Robodistilld)
	return b[0], b[1]
}

// lockedBuf collects a subprocess's or a logger's output.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) Sync() error { return nil }

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail is the last n lines.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// bufLogger logs JSON lines at debug level into a buffer, printed when the test fails.
func bufLogger(t *testing.T, name string) (*zap.Logger, *lockedBuf) {
	buf := &lockedBuf{}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), buf, zap.DebugLevel))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last 150 lines):\n%s", name, tail(buf.String(), 150))
		}
	})
	return log, buf
}

// startBridge runs the sim bridge in real time on reach, nice'd, until t ends.
func startBridge(t *testing.T, m *rosnodetest.Master, bin string) *lockedBuf {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{bin, "sim", "bridge", "--task", "reach", "--rate", "50", "--size", "64", "--auto-reset"}
	if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{nice, "-n", "10"}, args...)
	}
	cmd := m.Command(ctx, args[0], args[1:]...)
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("sim bridge did not stop within 15 s of SIGINT")
			cancel()
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("sim bridge output (last 60 lines):\n%s", tail(out.String(), 60))
		}
	})
	return out
}

type cmdMsg struct {
	at  time.Time
	vel [3]float64
}

type stateMsg struct {
	at    time.Time
	state string
}

// observer is the test's own ROS node (a rosnode.Node, so that it survives rosmaster
// restarts like the daemon and the bridge).
type observer struct {
	node *rosnode.Node

	mu       sync.Mutex
	cmds     []cmdMsg
	states   []stateMsg
	status   rosiface.EpisodeStatus
	statusN  int
	success  map[uint64]bool // seeds whose episode succeeded
	rewards  int
	diag     *diagnostic_msgs.DiagnosticArray
	hand     [3]float64
	statusCh chan rosiface.EpisodeStatus

	relay       atomic.Bool
	lastRelayed atomic.Int64 // UnixNano of the last frame relayed
	estop       atomic.Bool
}

const relayTopic = "/relay/image_raw"

func newObserver(t *testing.T, m *rosnodetest.Master) *observer {
	t.Helper()
	log, _ := bufLogger(t, "observer")
	node, err := rosnode.New(rosnode.Config{Name: "test_observer", MasterURI: m.URI, Host: "127.0.0.1", CheckInterval: 100 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{node: node, success: map[uint64]bool{}}
	o.relay.Store(true)
	tp := rosiface.DefaultTopics("")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	relay, err := node.Advertise(relayTopic, &sensor_msgs.Image{}, false)
	must(err)
	estop, err := node.Advertise(tp.Estop, &std_msgs.Bool{}, false)
	must(err)
	must(node.Subscribe(tp.Image, func(m *sensor_msgs.Image) {
		if o.relay.Load() {
			if relay.Write(m) == nil { // goroslib's message, never reused: safe to pass on
				o.lastRelayed.Store(time.Now().UnixNano())
			}
		}
	}, 0))
	must(node.Subscribe(tp.CmdVel, func(m *geometry_msgs.TwistStamped) {
		o.mu.Lock()
		o.cmds = append(o.cmds, cmdMsg{time.Now(), rosiface.TwistLinear(m)})
		o.mu.Unlock()
	}, 0))
	must(node.Subscribe(tp.Status, func(m *std_msgs.Float64MultiArray) {
		st, err := rosiface.ParseEpisodeStatus(m)
		if err != nil {
			return
		}
		o.mu.Lock()
		o.status, o.statusN = st, o.statusN+1
		if st.Success {
			o.success[st.Seed] = true
		}
		o.mu.Unlock()
	}, 0))
	must(node.Subscribe("/safety_state", func(m *std_msgs.String) {
		o.mu.Lock()
		o.states = append(o.states, stateMsg{time.Now(), m.Data})
		o.mu.Unlock()
	}, 0))
	must(node.Subscribe(tp.Reward, func(m *std_msgs.Float32) {
		o.mu.Lock()
		o.rewards++
		o.mu.Unlock()
	}, 0))
	must(node.Subscribe(tp.Diagnostics, func(m *diagnostic_msgs.DiagnosticArray) {
		o.mu.Lock()
		o.diag = m
		o.mu.Unlock()
	}, 0))
	must(node.Subscribe(tp.EEPose, func(m *geometry_msgs.PoseStamped) {
		o.mu.Lock()
		o.hand = rosiface.PosePosition(m)
		o.mu.Unlock()
	}, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // an estop node publishes continuously
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				estop.Write(&std_msgs.Bool{Data: o.estop.Load()})
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		node.Close()
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	must(node.WaitConnected(wctx))
	return o
}

// cmdsSince returns the commands received after at.
func (o *observer) cmdsSince(at time.Time) []cmdMsg {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []cmdMsg
	for i := len(o.cmds) - 1; i >= 0 && o.cmds[i].at.After(at); i-- {
		out = append(out, o.cmds[i])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// stateSince is the first published safety state after at that satisfies ok.
func (o *observer) stateSince(at time.Time, ok func(string) bool) (stateMsg, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.states {
		if s.at.After(at) && ok(s.state) {
			return s, true
		}
	}
	return stateMsg{}, false
}

func (o *observer) handPos() [3]float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hand
}

func (o *observer) succeeded(seed uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.success[seed]
}

func is(states ...string) func(string) bool {
	return func(s string) bool {
		for _, w := range states {
			if s == w {
				return true
			}
		}
		return false
	}
}

// simReset starts a new episode on the bridge and returns its seed.
func simReset(t *testing.T, m *rosnodetest.Master) uint64 {
	t.Helper()
	n, err := goroslib.NewNode(goroslib.NodeConf{Name: "test_reset", MasterAddress: strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"),
		Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sc, err := goroslib.NewServiceClient(goroslib.ServiceClientConf{Node: n, Name: "/sim/reset", Srv: &std_srvs.Trigger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var res std_srvs.TriggerRes
	if err := sc.Call(&std_srvs.TriggerReq{}, &res); err != nil || !res.Success {
		t.Fatalf("sim/reset: %v %+v", err, res)
	}
	var ep int
	var seed uint64
	if _, err := fmt.Sscanf(res.Message, "episode %d started with seed %d", &ep, &seed); err != nil {
		t.Fatalf("sim/reset answered %q: %v", res.Message, err)
	}
	return seed
}

// callReset calls the daemon's reset_safety service.
func callReset(t *testing.T, m *rosnodetest.Master) std_srvs.TriggerRes {
	t.Helper()
	n, err := goroslib.NewNode(goroslib.NodeConf{Name: "test_operator", MasterAddress: strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"),
		Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sc, err := goroslib.NewServiceClient(goroslib.ServiceClientConf{Node: n, Name: "/robodistilld/reset_safety", Srv: &std_srvs.Trigger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var res std_srvs.TriggerRes
	if err := sc.Call(&std_srvs.TriggerReq{}, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// eventually polls f every 10 ms until it reports true, failing after d.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// loaded reports whether timing bounds can be enforced: not under the race detector and
// not on an oversubscribed machine (the 1-minute load average above 1.5 per core); then
// the figures are logged instead, as the bridge's tests do.
func loaded() bool {
	if raceEnabled {
		return true
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return true
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l > 1.5*float64(runtime.NumCPU())
}
