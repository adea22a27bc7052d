package bridge

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"go.uber.org/zap/zaptest"

	"robodistill/control/rosiface"
	"robodistill/control/rosnode"
	"robodistill/control/rosnode/rosnodetest"
	"robodistill/sim/metaworld"
)

// Integration tests: Debian's rosmaster on a free loopback port (rosnodetest), the bridge
// in this process, and real ROS tools (rostopic, rosservice, rosparam) or plain goroslib
// nodes as peers.

func startBridge(t *testing.T, m *rosnodetest.Master, cfg Config) *Bridge {
	t.Helper()
	cfg.Node = rosnode.Config{MasterURI: m.URI, Host: "127.0.0.1", Namespace: cfg.Node.Namespace, CheckInterval: cfg.Node.CheckInterval}
	b, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Node().WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// tool runs a ROS command-line tool for at most d and returns its combined output.
func tool(t *testing.T, m *rosnodetest.Master, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := m.Command(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return string(out), err
}

// requireROSMsgs fails with what to install when the Python message packages rostopic
// needs are missing (they are separate Debian packages from ros-core).
func requireROSMsgs(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import sensor_msgs.msg, geometry_msgs.msg, std_srvs.srv").CombinedOutput()
	if err != nil {
		t.Fatalf("rostopic cannot load the bridge's message types (%s): install python3-sensor-msgs python3-geometry-msgs python3-std-srvs", strings.TrimSpace(string(out)))
	}
}

// peer is a plain goroslib node, as any other ROS node on the graph.
func peer(t *testing.T, m *rosnodetest.Master, name string) *goroslib.Node {
	t.Helper()
	n, err := goroslib.NewNode(goroslib.NodeConf{Name: name, MasterAddress: strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"),
		Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback,
		OnLog: func(l goroslib.LogLevel, msg string) {
			if l >= goroslib.LogLevelWarn {
				t.Logf("%s: goroslib: %s", name, msg)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The bridge, in this process, may hold a connection to the peer's slave API that
		// it dialed and never used; goroslib's Close would wait 5 s for it.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		n.Close()
	})
	return n
}

// latest keeps the newest message of a topic.
type latest[T any] struct {
	mu  sync.Mutex
	msg *T
	n   int
	at  time.Time
}

func (l *latest[T]) set(m *T) {
	l.mu.Lock()
	l.msg, l.at = m, time.Now()
	l.n++
	l.mu.Unlock()
}

func (l *latest[T]) get() (*T, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg, l.n
}

func subscribe[T any](t *testing.T, n *goroslib.Node, topic string, l *latest[T]) {
	t.Helper()
	s, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: n, Topic: topic, Callback: func(m *T) { l.set(m) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
}

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

// timingNotEnforced says why a timing bound is only reported: under the race detector,
// or when the machine is oversubscribed (1-minute load average above 1.5 per core, which
// on this shared machine happens when other test suites run beside this one).
func timingNotEnforced() string {
	if raceEnabled {
		return "the race detector slows every tick"
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err == nil && load > 1.5*float64(runtime.NumCPU()) {
		return fmt.Sprintf("load average %.1f on %d cores", load, runtime.NumCPU())
	}
	return ""
}

var avgRate = regexp.MustCompile(`average rate: ([0-9.]+)`)

// TestRealtimeWithROSTools drives a real-time bridge with the ROS command-line tools.
func TestRealtimeWithROSTools(t *testing.T) {
	m := rosnodetest.New(t)
	requireROSMsgs(t)
	task := mustTask(t, "reach")
	b := startBridge(t, m, Config{Task: task, Env: metaworld.Options{Rate: 50, MaxSteps: 100000}, Camera: "corner", Size: 64, Seed: 4})
	tp := b.Topics()

	t.Run("hz", func(t *testing.T) {
		// rostopic hz prints a line every second; the last one averages over the window.
		out, err := tool(t, m, 8*time.Second, "rostopic", "hz", "-w", "250", tp.Image)
		if err != context.DeadlineExceeded {
			t.Fatalf("rostopic hz: %v: %s", err, out)
		}
		all := avgRate.FindAllStringSubmatch(out, -1)
		if len(all) == 0 {
			t.Fatalf("no rate in rostopic hz output: %s", out)
		}
		rate, _ := strconv.ParseFloat(all[len(all)-1][1], 64)
		st := b.Stats()
		t.Logf("rostopic hz %s: %.2f Hz (50 Hz configured, 64 px); bridge work p50 %v p99 %v, overruns %d, skipped %d",
			tp.Image, rate, st.WorkP50, st.WorkP99, st.Overruns, st.SkippedTicks)
		// A bridge that paces at the wrong rate fails on any machine; the 5 % bound is
		// enforced where the machine is not oversubscribed.
		if math.Abs(rate-50)/50 > 0.5 {
			t.Fatalf("rate %.2f Hz is not even within 50%% of 50 Hz", rate)
		}
		if math.Abs(rate-50)/50 > 0.05 {
			if why := timingNotEnforced(); why != "" {
				t.Logf("rate %.2f Hz is not within 5%% of 50 Hz; not enforced: %s", rate, why)
				return
			}
			t.Fatalf("rate %.2f Hz is not within 5%% of 50 Hz", rate)
		}
	})

	t.Run("echo", func(t *testing.T) {
		want := map[string]string{
			tp.Image:                `encoding: "rgb8"`,
			tp.CameraInfo:           `distortion_model: "plumb_bob"`,
			tp.EEPose:               "orientation:",
			tp.JointStates:          "right_j0",
			tp.ObjectPose("object"): "position:",
			tp.Goal:                 "position:",
			tp.Observation:          `label: "obs"`,
			tp.Status:               `label: "seed"`,
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 3)
		for topic, field := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				args := []string{"echo", "-n", "1", topic}
				if topic == tp.Image {
					args = []string{"echo", "-n", "1", "--noarr", topic}
				}
				out, err := tool(t, m, 60*time.Second, "rostopic", args...)
				if err != nil || !strings.Contains(out, field) {
					t.Errorf("rostopic echo -n 1 %s: %v, no %q in:\n%s", topic, err, field, out)
				}
			}()
		}
		wg.Wait()
	})

	p := peer(t, m, "checker")
	var pose latest[geometry_msgs.PoseStamped]
	var status latest[std_msgs.Float64MultiArray]
	subscribe(t, p, tp.EEPose, &pose)
	subscribe(t, p, tp.Status, &status)
	eventually(t, 3*time.Second, "ee pose and status received", func() bool {
		a, _ := pose.get()
		s, _ := status.get()
		return a != nil && s != nil
	})
	epStatus := func() rosiface.EpisodeStatus {
		s, _ := status.get()
		st, err := rosiface.ParseEpisodeStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	handX := func() float64 { m, _ := pose.get(); return m.Pose.Position.X }

	t.Run("reset", func(t *testing.T) {
		if out, err := tool(t, m, 10*time.Second, "rosparam", "set", "/sim_bridge/seed", "11"); err != nil {
			t.Fatalf("rosparam set: %v %s", err, out)
		}
		out, err := tool(t, m, 10*time.Second, "rosservice", "call", tp.Reset)
		if err != nil || !strings.Contains(out, "success: True") || !strings.Contains(out, "seed 11") {
			t.Fatalf("rosservice call %s: %v:\n%s", tp.Reset, err, out)
		}
		out, err = tool(t, m, 10*time.Second, "rosparam", "get", "/sim_bridge/seed")
		if err != nil || strings.TrimSpace(out) != "12" {
			t.Fatalf("~seed after the reset: %q %v, want 12", out, err)
		}
		eventually(t, 2*time.Second, "status of the new episode", func() bool { return epStatus().Seed == 11 })
	})

	// still waits until the hand has stopped moving: less than 0.3 mm over 25 control
	// steps (counted by the pose's seq, so a slow machine cannot fake rest).
	still := func() {
		t.Helper()
		var from *geometry_msgs.PoseStamped
		eventually(t, 20*time.Second, "hand at rest", func() bool {
			p, _ := pose.get()
			if from == nil || p.Header.Seq < from.Header.Seq+25 {
				if from == nil {
					from = p
				}
				return false
			}
			d := math.Hypot(p.Pose.Position.X-from.Pose.Position.X, p.Pose.Position.Y-from.Pose.Position.Y)
			from = p
			return d < 0.0003
		})
	}
	// pub runs `rostopic pub -r 20` of a velocity command until until() or 10 s.
	pub := func(yaml string, until func() bool) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		cmd := m.Command(ctx, "rostopic", "pub", "-r", "20", tp.CmdVel, "geometry_msgs/TwistStamped", yaml)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		eventually(t, 10*time.Second, "rostopic pub "+yaml, until)
	}

	t.Run("pub moves the hand", func(t *testing.T) {
		still()
		x0 := handX()
		start := time.Now()
		pub("{header: {frame_id: world}, twist: {linear: {x: 0.15}}}", func() bool { return handX()-x0 > 0.05 })
		t.Logf("hand x %.4f -> %.4f while rostopic pub sent 0.15 m/s (%v including rostopic's start-up)", x0, handX(), time.Since(start).Round(time.Millisecond))
		// The publisher is gone: after CommandTimeout the velocity is zero and the hand
		// comes to rest.
		still()
	})

	t.Run("malformed commands", func(t *testing.T) {
		still()
		p0, _ := pose.get()
		before := b.Stats().MalformedVel
		pub("{header: {frame_id: world}, twist: {linear: {x: .nan, y: 0.15}}}", func() bool { return b.Stats().MalformedVel-before >= 10 })
		time.Sleep(300 * time.Millisecond)
		p1, _ := pose.get()
		if d := math.Hypot(p1.Pose.Position.X-p0.Pose.Position.X, p1.Pose.Position.Y-p0.Pose.Position.Y); d > 0.002 {
			t.Fatalf("a NaN command moved the hand by %.4f m", d)
		}
		t.Logf("%d malformed commands counted and dropped; the hand did not move", b.Stats().MalformedVel-before)
	})

	t.Run("wrong-size messages", func(t *testing.T) {
		// A rospy publisher whose TwistStamped serializes to 3 bytes: the type and md5
		// are right, the payload is not. goroslib fails to decode it before the bridge's
		// callback, drops the connection (retrying after 5 s) and logs; the bridge counts
		// it and carries on.
		script := `
import rospy
from geometry_msgs.msg import TwistStamped
class Bad(TwistStamped):
    def serialize(self, buff):
        buff.write(b"\x01\x02\x03")
rospy.init_node("bad_pub", anonymous=True)
p = rospy.Publisher("` + tp.CmdVel + `", Bad, queue_size=10)
r = rospy.Rate(20)
while not rospy.is_shutdown():
    p.publish(Bad())
    r.sleep()
`
		still()
		p0, _ := pose.get()
		before := b.Stats().GoroslibErrors
		ctx, cancel := context.WithCancel(context.Background())
		cmd := m.Command(ctx, "/usr/bin/python3", "-c", script)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		eventually(t, 10*time.Second, "undecodable messages counted", func() bool { return b.Stats().GoroslibErrors > before })
		_, n0 := status.get()
		time.Sleep(300 * time.Millisecond)
		if _, n1 := status.get(); n1 <= n0 {
			t.Fatal("the bridge stopped publishing")
		}
		p1, _ := pose.get()
		if d := math.Hypot(p1.Pose.Position.X-p0.Pose.Position.X, p1.Pose.Position.Y-p0.Pose.Position.Y); d > 0.002 {
			t.Fatalf("undecodable commands moved the hand by %.4f m", d)
		}
		t.Logf("%d undecodable messages reported by goroslib; the bridge kept running", b.Stats().GoroslibErrors-before)
	})
}

// TestMasterRestartRecovery kills and restarts rosmaster under a running bridge.
func TestMasterRestartRecovery(t *testing.T) {
	m := rosnodetest.New(t)
	b := startBridge(t, m, Config{Task: mustTask(t, "reach"), Camera: "corner", Size: 64, Env: metaworld.Options{MaxSteps: 100000}})
	tp := b.Topics()
	if out, err := tool(t, m, 10*time.Second, "rostopic", "list"); err != nil || !strings.Contains(out, tp.Image) {
		t.Fatalf("rostopic list before the restart: %v\n%s", err, out)
	}
	// A node subscribed before the restart, as the daemon would be: its concurrent
	// requests to the bridge's slave API tend to leave an unused connection behind, which
	// makes closing the old goroslib node slow (see rosnode's teardown).
	early := peer(t, m, "early_viewer")
	var earlyImg latest[sensor_msgs.Image]
	var earlyPose latest[geometry_msgs.PoseStamped]
	var earlyJoints latest[sensor_msgs.JointState]
	subscribe(t, early, tp.Image, &earlyImg)
	subscribe(t, early, tp.EEPose, &earlyPose)
	subscribe(t, early, tp.JointStates, &earlyJoints)
	eventually(t, 3*time.Second, "frames before the restart", func() bool { _, n := earlyImg.get(); return n > 0 })
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// When the master lists the topics again (an XML-RPC call; rostopic list adds its
	// Python start-up, about 0.6 s here, on top).
	master := apimaster.NewClient(strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"), "/checker", &http.Client{Timeout: time.Second})
	registered := eventually(t, 5*time.Second, "topics registered again", func() bool {
		topics, err := master.GetPublishedTopics("")
		if err != nil {
			return false
		}
		for _, tt := range topics {
			if tt[0] == tp.Image {
				return true
			}
		}
		return false
	})
	out, err := tool(t, m, 30*time.Second, "rostopic", "list")
	if err != nil || !strings.Contains(out, tp.Image) || !strings.Contains(out, tp.CmdVel) {
		t.Fatalf("rostopic list after the restart: %v\n%s", err, out)
	}
	listed := time.Since(restarted)
	p := peer(t, m, "late_viewer")
	var img latest[sensor_msgs.Image]
	subscribe(t, p, tp.Image, &img)
	eventually(t, 10*time.Second, "frames at a new subscriber", func() bool { _, n := img.get(); return n >= 3 })
	framed := time.Since(restarted)
	// The service and the parameters are back too.
	if v, err := p.ParamGetInt("/sim_bridge/seed"); err != nil || v != 1 {
		t.Fatalf("~seed after the restart: %v %v", v, err)
	}
	st := b.Stats()
	t.Logf("after the restart: topics registered at %v, rostopic list (started then) shows them at %v, a new subscriber has 3 frames at %v (re-registrations %d)",
		registered.Round(time.Millisecond), listed.Round(time.Millisecond), framed.Round(time.Millisecond), st.Reregistrations)
	// Informational: a subscriber that does not re-register itself gets frames again only
	// if the bridge kept its address (goroslib retries the same publisher after 5 s).
	_, n0 := earlyImg.get()
	resumed := false
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end) && !resumed; time.Sleep(100 * time.Millisecond) {
		_, n := earlyImg.get()
		resumed = n > n0+5
	}
	t.Logf("subscriber from before the restart resumed: %v", resumed)
	if st.Reregistrations != 1 {
		t.Fatalf("re-registrations %d, want 1", st.Reregistrations)
	}
	if why := timingNotEnforced(); why != "" && (listed > 2*time.Second || framed > 2*time.Second) {
		t.Logf("recovery slower than 2 s; not enforced: %s", why)
	} else if listed > 2*time.Second || framed > 2*time.Second || registered > 2*time.Second {
		t.Fatalf("recovery too slow or not counted: list %v, frames %v, re-registrations %d", listed, framed, st.Reregistrations)
	}
}

// policyClient is a small ROS node that runs a task's scripted policy against a lockstep
// bridge: it reads sim/observation and sim/episode_status and sends arm/cmd_vel and
// gripper/command, exactly as a policy node on a robot would.
type policyClient struct {
	t      *testing.T
	node   *goroslib.Node
	vel    *goroslib.Publisher
	grip   *goroslib.Publisher
	reset  *goroslib.ServiceClient
	obs    latest[std_msgs.Float64MultiArray]
	status latest[std_msgs.Float64MultiArray]
	motion rosiface.Motion
	primed bool
}

func newPolicyClient(t *testing.T, m *rosnodetest.Master, tp rosiface.Topics, motion rosiface.Motion) *policyClient {
	c := &policyClient{t: t, node: peer(t, m, "policy"), motion: motion}
	subscribe(t, c.node, tp.Observation, &c.obs)
	subscribe(t, c.node, tp.Status, &c.status)
	var err error
	if c.vel, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: c.node, Topic: tp.CmdVel, Msg: &geometry_msgs.TwistStamped{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.vel.Close)
	if c.grip, err = goroslib.NewPublisher(goroslib.PublisherConf{Node: c.node, Topic: tp.Gripper, Msg: &std_msgs.Float64{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.grip.Close)
	if c.reset, err = goroslib.NewServiceClient(goroslib.ServiceClientConf{Node: c.node, Name: tp.Reset, Srv: &std_srvs.Trigger{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.reset.Close)
	return c
}

func (c *policyClient) state() (metaworld.Obs, rosiface.EpisodeStatus, int) {
	om, n := c.obs.get()
	sm, _ := c.status.get()
	var o metaworld.Obs
	if om == nil || sm == nil {
		return o, rosiface.EpisodeStatus{Step: -1}, n
	}
	d, err := rosiface.ParseObservation(om, metaworld.ObsDim)
	if err != nil {
		c.t.Fatal(err)
	}
	copy(o[:], d)
	st, err := rosiface.ParseEpisodeStatus(sm)
	if err != nil {
		c.t.Fatal(err)
	}
	return o, st, n
}

// waitState waits for the status of step `step` (of the episode with seed `seed`, when
// seed >= 0) and an observation newer than mark. Checking the seed matters after a reset:
// the latched status of the previous episode's step 0 can still arrive after mark.
func (c *policyClient) waitState(step, seed int, mark int, resend func()) (metaworld.Obs, rosiface.EpisodeStatus) {
	deadline := time.Now().Add(10 * time.Second)
	last := time.Now()
	for {
		o, st, n := c.state()
		if st.Step == step && n > mark && (seed < 0 || st.Seed == uint64(seed)) {
			return o, st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no state for step %d (have step %d, %d observations, mark %d)", step, st.Step, n, mark)
		}
		// Until the bridge has connected to this node's publishers, commands are lost:
		// resend the first one (a later one is never resent, so no step is doubled).
		if resend != nil && time.Since(last) > 300*time.Millisecond {
			resend()
			last = time.Now()
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// episode runs one episode with seed until its first success or its end.
func (c *policyClient) episode(task *metaworld.Task, seed int) (success bool, steps int) {
	if err := c.node.ParamSetInt("/sim_bridge/seed", seed); err != nil {
		c.t.Fatal(err)
	}
	_, _, mark := c.state()
	var res std_srvs.TriggerRes
	if err := c.reset.Call(&std_srvs.TriggerReq{}, &res); err != nil || !res.Success {
		c.t.Fatalf("sim/reset: %v %+v", err, res)
	}
	o, _ := c.waitState(0, seed, mark, nil)
	for k := 0; ; k++ {
		vel, grip := c.motion.Command(task.Scripted(&o))
		_, _, mark := c.state()
		send := func() {
			c.grip.Write(&std_msgs.Float64{Data: grip})
			c.vel.Write(rosiface.Twist(rosiface.Header(uint32(k), time.Time{}, "world"), vel))
		}
		send()
		var resend func()
		if !c.primed {
			resend = send
		}
		var st rosiface.EpisodeStatus
		o, st = c.waitState(k+1, seed, mark, resend)
		c.primed = true
		if st.Success {
			return true, st.Step
		}
		if st.Truncated {
			return false, st.Step
		}
	}
}

// TestLockstepScriptedPolicy: the scripted policy driven over ROS in lockstep succeeds
// as often as in-process rollouts on the same seeds (and takes the same number of steps).
func TestLockstepScriptedPolicy(t *testing.T) {
	m := rosnodetest.New(t)
	const seeds = 20
	for _, name := range []string{"reach", "drawer-open"} {
		t.Run(name, func(t *testing.T) {
			task := mustTask(t, name)
			ref := inProcess(t, task, seeds)
			b := startBridge(t, m, Config{Task: task, Lockstep: true, Seed: 1000})
			c := newPolicyClient(t, m, b.Topics(), b.Motion())
			if v, err := c.node.ParamGetBool("/use_sim_time"); err != nil || !v {
				t.Fatalf("/use_sim_time: %v %v", v, err)
			}
			start := time.Now()
			wins, same, totalSteps := 0, 0, 0
			for i := 0; i < seeds; i++ {
				ok, steps := c.episode(task, i)
				totalSteps += steps
				r := ref.Results[i]
				if ok {
					wins++
				}
				if ok == r.Success && steps == r.Steps {
					same++
				} else {
					t.Logf("seed %d: over ROS success %v in %d steps, in-process %v in %d", i, ok, steps, r.Success, r.Steps)
				}
			}
			el := time.Since(start)
			st := b.Stats()
			// The policy node was created with /use_sim_time set, so goroslib follows
			// /clock: its time is the simulator's. The last /clock (published by the bridge
			// as it steps) may still be on its way when the episode's last status arrives:
			// wait for it, briefly.
			want := simEpoch.Add(time.Duration(int(st.Steps)+seeds) * b.sim.Period())
			clk := c.node.TimeNow()
			for deadline := time.Now().Add(2 * time.Second); !clk.Equal(want) && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
				clk = c.node.TimeNow()
			}
			t.Logf("%s: over ROS (lockstep) %d/%d successes, in-process %.0f%%; %d/%d episodes identical in outcome and length; %d steps in %v (%.0f steps/s); sim clock %v; unpaired %d, coalesced %d",
				name, wins, seeds, 100*ref.SuccessRate, same, seeds, totalSteps, el.Round(time.Millisecond), float64(totalSteps)/el.Seconds(),
				clk.Sub(simEpoch), st.UnpairedSteps, st.Coalesced)
			if float64(wins) != ref.SuccessRate*seeds {
				t.Fatalf("success over ROS %d/%d, in-process %.0f%%", wins, seeds, 100*ref.SuccessRate)
			}
			if st.Coalesced != 0 {
				t.Errorf("%d commands coalesced in lockstep", st.Coalesced)
			}
			if !clk.Equal(want) {
				t.Errorf("/clock %v, want %v (one period per step and per reset)", clk.Sub(simEpoch), want.Sub(simEpoch))
			}
		})
	}
	// The bridges removed /use_sim_time when they closed.
	if out, err := tool(t, m, 10*time.Second, "rosparam", "get", "/use_sim_time"); err == nil {
		t.Errorf("/use_sim_time left set: %s", out)
	}
}

// TestEpisodeEnd: at MaxSteps the status says truncated and commands are ignored until
// sim/reset; with AutoReset the next episode starts by itself with ~seed.
func TestEpisodeEnd(t *testing.T) {
	m := rosnodetest.New(t)
	task := mustTask(t, "reach")
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("auto-reset=%v", auto), func(t *testing.T) {
			b := startBridge(t, m, Config{Task: task, Lockstep: true, AutoReset: auto, Seed: 5, Env: metaworld.Options{MaxSteps: 4}})
			c := newPolicyClient(t, m, b.Topics(), b.Motion())
			_, st, mark := c.state()
			eventually(t, 3*time.Second, "initial state", func() bool { _, st, mark = c.state(); return st.Step == 0 })
			for k := 0; k < 6; k++ {
				if auto && k == 4 {
					// The episode ended at step 4: the next one starts by itself, seed 6.
					eventually(t, 3*time.Second, "auto-reset", func() bool { _, st, _ = c.state(); return st.Seed == 6 && st.Step == 0 })
					_, _, mark = c.state()
				}
				send := func() {
					c.grip.Write(&std_msgs.Float64{Data: 0})
					c.vel.Write(rosiface.Twist(rosiface.Header(0, time.Time{}, "world"), [3]float64{0.1, 0, 0}))
				}
				send()
				var resend func()
				if k == 0 {
					resend = send
				}
				want := min(k+1, 4)
				if auto && k >= 4 {
					want = k - 4 + 1
				}
				_, st = c.waitState(want, -1, mark, resend)
				_, _, mark = c.state()
				if k == 3 && !st.Truncated {
					t.Fatalf("step 4 of 4 not truncated: %+v", st)
				}
			}
			s := b.Stats()
			if auto {
				if st.Seed != 6 || s.Episodes != 2 {
					t.Fatalf("auto-reset: status %+v, episodes %d", st, s.Episodes)
				}
			} else if st.Step != 4 || !st.Truncated || s.Ignored != 2 || s.Steps != 4 {
				t.Fatalf("after the end: status %+v, ignored %d, steps %d", st, s.Ignored, s.Steps)
			}
		})
	}
}
