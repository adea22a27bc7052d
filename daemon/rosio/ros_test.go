package rosio

import (
	"bufio"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"go.uber.org/zap/zaptest"

	"robodistill/control/rosnode"
	"robodistill/control/rosnode/rosnodetest"
)

// daemonSide is the daemon's node with Inputs and Outputs on it.
type daemonSide struct {
	node *rosnode.Node
	in   *Inputs
	out  *Outputs
}

func startDaemonSide(t *testing.T, m *rosnodetest.Master, cfg Config, check time.Duration) *daemonSide {
	t.Helper()
	log := zaptest.NewLogger(t)
	node, err := rosnode.New(rosnode.Config{Name: "robodistilld", MasterURI: m.URI, Host: "127.0.0.1", CheckInterval: check}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := node.Close(); err != nil {
			t.Error(err)
		}
	})
	in, err := NewInputs(node, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	out, err := NewOutputs(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return &daemonSide{node, in, out}
}

// peer is a plain goroslib node, as a freshly started ROS node (a camera driver, rviz)
// would be.
func peer(t *testing.T, m *rosnodetest.Master, name string) *goroslib.Node {
	t.Helper()
	n, err := goroslib.NewNode(goroslib.NodeConf{Name: name, MasterAddress: strings.TrimSuffix(strings.TrimPrefix(m.URI, "http://"), "/"),
		Host: "127.0.0.1", LogDestinations: goroslib.LogDestinationCallback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func peerPublisher(t *testing.T, n *goroslib.Node, topic string, msg any, latch bool) *goroslib.Publisher {
	t.Helper()
	p, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: n, Topic: topic, Msg: msg, Latch: latch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// latest keeps the last message a test subscriber received.
type latest[T any] struct {
	mu  sync.Mutex
	msg *T
	n   int
}

func (l *latest[T]) get() (*T, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg, l.n
}

func subscribe[T any](t *testing.T, n *goroslib.Node, topic string, l *latest[T]) *goroslib.Subscriber {
	t.Helper()
	s, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: n, Topic: topic, Callback: func(m *T) {
		l.mu.Lock()
		l.msg, l.n = m, l.n+1
		l.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually retries f (which may publish) until it reports true.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestROSRoundTrip: every input arrives in its slot from a separate node, malformed
// messages are counted and dropped, and every output reaches a subscriber, safety_state
// latched.
func TestROSRoundTrip(t *testing.T) {
	m := rosnodetest.New(t)
	cfg := DefaultConfig()
	cfg.Namespace = "robot1"
	cfg.Objects = append(cfg.Objects, Object{"cup", QuatWXYZ})
	d := startDaemonSide(t, m, cfg, 0)
	tp := d.in.Topics()
	if _, err := d.out.SafetyState("ok"); err != nil { // before anyone subscribes: latched
		t.Fatal(err)
	}

	p := peer(t, m, "robot_driver")
	img := peerPublisher(t, p, tp.Image, &sensor_msgs.Image{}, false)
	ee := peerPublisher(t, p, tp.EEPose, &geometry_msgs.PoseStamped{}, false)
	js := peerPublisher(t, p, tp.JointStates, &sensor_msgs.JointState{}, false)
	obj := peerPublisher(t, p, tp.Objects[1], &geometry_msgs.PoseStamped{}, false)
	goal := peerPublisher(t, p, tp.Goal, &geometry_msgs.PoseStamped{}, false)
	estop := peerPublisher(t, p, tp.Estop, &std_msgs.Bool{}, false)

	st := d.in.NewState()
	var f Frame
	eventually(t, 5*time.Second, "inputs arrive", func() bool {
		img.Write(imageMsg("bgr8", 64, 48, 64*3, seqBytes(64*48*3)))
		ee.Write(poseMsg("world", [3]float64{0.1, 0.6, 0.2}, [4]float64{1, 0, 0, 0}))
		js.Write(sawyerJoints(0.01, -0.02))
		obj.Write(poseMsg("world", [3]float64{0, 0.7, 0.05}, [4]float64{0, 1, 0, 0}))
		goal.Write(poseMsg("", [3]float64{0, 0.8, 0.1}, [4]float64{1, 0, 0, 0}))
		estop.Write(&std_msgs.Bool{Data: true})
		d.in.Read(st)
		return d.in.ReadFrame(&f) && st.EEPose.Stamp.Valid() && st.Joints.Stamp.Valid() && st.Objects[1].Stamp.Valid() &&
			st.Goal.Stamp.Valid() && st.Estop.Engaged
	})
	if f.Encoding != "bgr8" || f.Width != 64 || f.Height != 48 || len(f.Data) != 64*48*3 || f.Data[5] != seqBytes(6)[5] ||
		st.Joints.Position[8] != -0.02 || st.Objects[1].Quat != [4]float64{0, 1, 0, 0} || st.Objects[0].Stamp.Valid() {
		t.Fatalf("frame %dx%d %s, state %+v", f.Width, f.Height, f.Encoding, st)
	}
	if !f.Stamp.Header.Equal(t0) || f.Stamp.Seq != 1 || time.Since(f.Stamp.Received) > 5*time.Second {
		t.Fatalf("frame stamp %+v", f.Stamp)
	}

	// A JointState without the fingers is dropped; the last good one stays.
	js.Write(jointMsg([]string{"right_j0"}, []float64{0}, nil))
	eventually(t, 3*time.Second, "malformed joint state counted", func() bool {
		for _, s := range d.in.Stats() {
			if s.Topic == tp.JointStates && s.Malformed == 1 && strings.Contains(s.LastError, `"right_j1" missing`) {
				return true
			}
		}
		return false
	})
	d.in.Read(st)
	if st.Joints.Position[7] != 0.01 {
		t.Fatalf("joints after a malformed message: %v", st.Joints.Position)
	}

	// Outputs.
	var safety latest[std_msgs.String]
	var twist latest[geometry_msgs.TwistStamped]
	var grip latest[std_msgs.Float64]
	var reward latest[std_msgs.Float32]
	var diag latest[diagnostic_msgs.DiagnosticArray]
	viewer := peer(t, m, "viewer")
	subscribe(t, viewer, tp.SafetyState, &safety)
	subscribe(t, viewer, tp.CmdVel, &twist)
	subscribe(t, viewer, tp.Gripper, &grip)
	subscribe(t, viewer, tp.Reward, &reward)
	subscribe(t, viewer, tp.Diagnostics, &diag)
	eventually(t, 5*time.Second, "latched safety state", func() bool {
		s, _ := safety.get()
		return s != nil && s.Data == "ok"
	})
	eventually(t, 5*time.Second, "outputs arrive", func() bool {
		if err := d.out.Command(time.Now(), [3]float64{0.1, -0.2, 0.3}, -1); err != nil {
			t.Fatal(err)
		}
		if err := d.out.Reward(0.25); err != nil {
			t.Fatal(err)
		}
		ages := &Ages{}
		d.in.Ages(time.Now(), ages)
		if err := d.out.Diagnostics(time.Now(), &Diagnostics{HardwareID: "test", Inputs: d.in.Stats(), Ages: ages}); err != nil {
			t.Fatal(err)
		}
		tw, _ := twist.get()
		g, _ := grip.get()
		r, _ := reward.get()
		dg, _ := diag.get()
		return tw != nil && g != nil && r != nil && dg != nil
	})
	tw, _ := twist.get()
	g, _ := grip.get()
	r, _ := reward.get()
	dg, _ := diag.get()
	if tw.Twist.Linear != (geometry_msgs.Vector3{X: 0.1, Y: -0.2, Z: 0.3}) || tw.Header.FrameId != "world" || g.Data != -1 || r.Data != 0.25 ||
		len(dg.Status) != 4 || dg.Status[3].Name != StatusInputs {
		t.Fatalf("outputs: %+v %+v %+v %+v", tw, g, r, dg)
	}
	if _, err := d.out.SafetyState("estop"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "safety change", func() bool {
		s, _ := safety.get()
		return s.Data == "estop"
	})
}

// TestMasterRestart: after rosmaster is killed and restarted, the daemon side receives
// from a publisher that only the new master knows of, and a subscriber that only the new
// master knows of receives the daemon's outputs, within a few seconds.
func TestMasterRestart(t *testing.T) {
	m := rosnodetest.New(t)
	d := startDaemonSide(t, m, DefaultConfig(), 100*time.Millisecond)
	tp := d.in.Topics()
	st := d.in.NewState()
	for round := 1; round <= 2; round++ {
		if round == 2 {
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		p := peer(t, m, "driver"+string(rune('0'+round)))
		goal := peerPublisher(t, p, tp.Goal, &geometry_msgs.PoseStamped{}, false)
		want := float64(round) / 10
		eventually(t, 10*time.Second, "the daemon receives from a new publisher", func() bool {
			goal.Write(poseMsg("world", [3]float64{want, 0.8, 0.1}, [4]float64{1, 0, 0, 0}))
			d.in.Read(st)
			return st.Goal.Pos[0] == want
		})
		var twist latest[geometry_msgs.TwistStamped]
		subscribe(t, p, tp.CmdVel, &twist)
		eventually(t, 10*time.Second, "a new subscriber receives the daemon's commands", func() bool {
			if err := d.out.Command(time.Now(), [3]float64{want, 0, 0}, 0); err != nil && err != rosnode.ErrNotConnected {
				t.Fatal(err)
			}
			tw, _ := twist.get()
			return tw != nil && tw.Twist.Linear.X == want
		})
		what := "after the node registered"
		if round == 2 {
			what = "after the restarted master answered"
		}
		t.Logf("round %d: a new publisher's and a new subscriber's messages flow %v %s", round, time.Since(start).Round(time.Millisecond), what)
		goal.Close()
		p.Close()
	}
	if s := d.node.Stats(); s.Registrations != 2 {
		t.Fatalf("node stats %+v: want 2 registrations", s)
	}
}

// TestPublishAllocs measures allocations per Command + Reward with the node connected:
// with no subscriber (the control thread's own cost), and with one subscriber in another
// process (rostopic), which adds what goroslib allocates to encode and send each message.
func TestPublishAllocs(t *testing.T) {
	m := rosnodetest.New(t)
	// No master checks during the measurement: they allocate on the node's goroutine.
	d := startDaemonSide(t, m, DefaultConfig(), time.Hour)
	cycle := func() {
		if err := d.out.Command(t0, [3]float64{0.1, 0.2, 0.3}, 1); err != nil {
			t.Fatal(err)
		}
		if err := d.out.Reward(0.5); err != nil {
			t.Fatal(err)
		}
	}
	const runs = 20 * slabSize
	alone := allocsPer(runs, cycle)
	t.Logf("Command + Reward, no subscriber: %.4f allocations per cycle", alone)
	if alone > 3.0/slabSize*1.5 {
		t.Errorf("%.4f allocations per cycle without subscribers, want about %.4f (one per slab)", alone, 3.0/slabSize)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hz := m.Command(ctx, "rostopic", "hz", d.out.Topics().CmdVel)
	out, err := hz.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hz.Start(); err != nil {
		t.Fatal(err)
	}
	defer hz.Wait()
	defer cancel()
	rates := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "average rate") {
				select {
				case rates <- sc.Text():
				default:
				}
			}
		}
	}()
	// Publish until rostopic reports a rate: it is connected.
	connected := time.After(20 * time.Second)
wait:
	for {
		select {
		case <-rates:
			break wait
		case <-connected:
			t.Fatal("rostopic hz received nothing within 20 s")
		case <-time.After(5 * time.Millisecond):
			cycle()
		}
	}
	paced := func() {
		cycle()
		time.Sleep(500 * time.Microsecond) // let goroslib's writer keep up: no drops
	}
	idle := allocsPer(2000, func() { time.Sleep(500 * time.Microsecond) }) // background: the node's goroutines
	with := allocsPer(2000, paced)
	t.Logf("Command + Reward, cmd_vel subscribed by rostopic: %.2f allocations per cycle in the process (%.2f while idle), "+
		"the increase being goroslib's writer goroutine encoding the TwistStamped", with, idle)
}

func BenchmarkCommandROS(b *testing.B) {
	m, err := rosnodetest.Start("")
	if err == rosnodetest.ErrNoROS {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	node, err := rosnode.New(rosnode.Config{Name: "bench", MasterURI: m.URI, Host: "127.0.0.1", CheckInterval: time.Hour}, zaptest.NewLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	out, err := NewOutputs(node, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := out.Command(t0, [3]float64{0.1, 0.2, 0.3}, 1); err != nil {
			b.Fatal(err)
		}
	}
}
