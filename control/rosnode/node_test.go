package rosnode

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apislave"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"go.uber.org/zap/zaptest"

	"robodistill/control/rosnode/rosnodetest"
)

func testConfig(m *rosnodetest.Master, name string) Config {
	return Config{Name: name, MasterURI: m.URI, Host: "127.0.0.1", CheckInterval: 100 * time.Millisecond}
}

// peer is a plain goroslib node, as a freshly started ROS node would be.
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

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
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

// TestReRegisterAfterMasterRestart is the property goroslib lacks: after rosmaster is
// killed and restarted, peers that start afterwards find the node's topics and services,
// its subscriptions receive from new publishers, and its OnConnect hooks ran again.
func TestReRegisterAfterMasterRestart(t *testing.T) {
	m := rosnodetest.New(t)
	n, err := New(testConfig(m, "restart_probe"), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	}()
	pub, err := n.Advertise("/probe/out", &std_msgs.Int64{}, false)
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	if err := n.Subscribe("/probe/in", func(msg *std_msgs.Int64) { got.Store(msg.Data) }, 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Serve("probe/trigger", &std_srvs.Trigger{}, func(*std_srvs.TriggerReq) (*std_srvs.TriggerRes, bool) {
		return &std_srvs.TriggerRes{Success: true, Message: "ok"}, true
	}); err != nil {
		t.Fatal(err)
	}
	n.OnConnect(func() error { return n.ParamSetInt("~hook", 42) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				pub.Write(&std_msgs.Int64{Data: i})
			}
		}
	}()

	for round := 1; round <= 2; round++ {
		if round == 2 {
			// A connection a peer opened to the node's slave API and never used (Go's HTTP
			// client leaves these behind) makes closing a goroslib node take 5 s; the
			// rebuild must not wait for it.
			idle, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(n.curURLForTest(t), "http://"), "/"))
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			d := waitFor(t, 2*time.Second, "re-registration", func() bool { return n.Stats().Registrations == 2 && n.Stats().Connected })
			t.Logf("re-registered %v after the new master answered", d.Round(time.Millisecond))
		}
		p := peer(t, m, "peer"+string(rune('0'+round)))
		var recv atomic.Int64
		sub, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: p, Topic: "/probe/out", Callback: func(msg *std_msgs.Int64) { recv.Store(msg.Data) }})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "a new subscriber receives", func() bool { return recv.Load() > 0 })
		sub.Close()

		ppub, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: p, Topic: "/probe/in", Msg: &std_msgs.Int64{}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "the node receives from a new publisher", func() bool {
			ppub.Write(&std_msgs.Int64{Data: int64(100 * round)})
			return got.Load() == int64(100*round)
		})
		ppub.Close()

		sc, err := goroslib.NewServiceClient(goroslib.ServiceClientConf{Node: p, Name: "/probe/trigger", Srv: &std_srvs.Trigger{}})
		if err != nil {
			t.Fatal(err)
		}
		var res std_srvs.TriggerRes
		if err := sc.Call(&std_srvs.TriggerReq{}, &res); err != nil || !res.Success {
			t.Fatalf("round %d: service call %v %+v", round, err, res)
		}
		sc.Close()
		if v, err := n.ParamGetInt("~hook"); err != nil || v != 42 {
			t.Fatalf("round %d: hook parameter %v %v", round, v, err)
		}
	}
}

func TestWaitsForMaster(t *testing.T) {
	m := rosnodetest.New(t)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	n, err := New(testConfig(m, "early"), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	pub, _ := n.Advertise("/early/out", &std_msgs.Int64{}, false)
	if err := pub.Write(&std_msgs.Int64{}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("write without master: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := n.WaitConnected(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connected without a master: %v", err)
	}
	cancel()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s.Registrations != 1 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := pub.Write(&std_msgs.Float64{}); err == nil {
		t.Fatal("wrong message type accepted")
	}
}

// A shutdown request (what `rosnode kill` sends) ends the node with ErrShutdown.
func TestShutdownRequest(t *testing.T) {
	m := rosnodetest.New(t)
	n, err := New(testConfig(m, "victim"), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSuffix(strings.TrimPrefix(n.curURLForTest(t), "http://"), "/")
	if err := apislave.NewClient(url, "/killer", &http.Client{Timeout: time.Second}).Shutdown("test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("node still running after a shutdown request")
	}
	if err := n.Close(); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Close: %v", err)
	}
}

func (n *Node) curURLForTest(t *testing.T) string {
	t.Helper()
	u, err := n.master.LookupNode(n.abs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDeclarationErrors(t *testing.T) {
	n := &Node{conf: Config{Name: "x", Namespace: "/"}, abs: "/x", wake: make(chan struct{}, 1)}
	if _, err := n.Advertise("/t", std_msgs.Int64{}, false); err == nil {
		t.Error("non-pointer message accepted")
	}
	if err := n.Subscribe("/t", func(int) {}, 0); err == nil {
		t.Error("bad callback accepted")
	}
	if err := n.Serve("/s", &std_srvs.Trigger{}, func() {}); err == nil {
		t.Error("bad service callback accepted")
	}
}
