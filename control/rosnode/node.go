// Package rosnode is a ROS1 node that behaves like rospy's and roscpp's where goroslib
// does not: it reads ROS_MASTER_URI, ROS_HOSTNAME / ROS_IP and ROS_NAMESPACE (FromEnv), and
// it survives a rosmaster restart. goroslib registers publishers, subscribers and services
// once; a restarted master has forgotten them, so new peers (a restarted node, rostopic,
// rosbag record) cannot find them. A Node therefore keeps its declarations, asks the master
// every CheckInterval whether it still knows the node, and when it does not, rebuilds the
// goroslib node and every declared publisher, subscriber and service, then runs the
// OnConnect hooks (parameters live in the master and are lost with it too).
//
// The rebuilt node listens on the same ports as before when it can, so subscribers that
// retry a lost publisher's old address (goroslib's do, after 5 s) find it again. Peers
// that publish to this node are found again only once they register with the new master
// themselves. See docs/bridge.md for the details and the measured recovery times.
//
// The sim bridge and the daemon both use it; the sim bridge is the first.
package rosnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goroslib "github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
	"github.com/bluenviron/goroslib/v2/pkg/apiparam"
	"github.com/bluenviron/goroslib/v2/pkg/apislave"
	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/serviceproc"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrNotConnected is returned by Publisher.Write while the node is not registered with a
// master (before the first registration and during a rebuild); the message is dropped.
var ErrNotConnected = errors.New("rosnode: not connected to a ROS master")

// ErrShutdown ends a Node that was told to shut down: by `rosnode kill`, or by the master
// when another node registered under the same name.
var ErrShutdown = errors.New("rosnode: node shut down by the ROS master (rosnode kill, or another node took its name)")

// Stats are a Node's counters.
type Stats struct {
	Connected bool
	// Registrations counts successful (re)builds; Registrations-1 master restarts were
	// recovered from.
	Registrations uint64
	// MasterDown is set while the master does not answer.
	MasterDown bool
	// Dropped counts Publisher.Write calls made while not connected.
	Dropped uint64
	// GoroslibErrors counts error messages goroslib logged (e.g. a peer that sent a
	// message that does not decode: goroslib drops its connection and retries after 5 s).
	GoroslibErrors uint64
	// LastRegistration is when the node last (re)registered.
	LastRegistration time.Time
}

// Node is a restart-proof ROS node. Declare publishers, subscribers and services at any
// time; they are registered as soon as (and whenever) the node is connected.
type Node struct {
	conf Config
	abs  string
	log  *zap.Logger
	hot  *zap.Logger // sampled: goroslib's messages and per-call failures

	master *apimaster.Client
	params *apiparam.Client

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu      sync.Mutex
	decls   []decl
	hooks   []func() error
	built   int           // declarations registered on the current goroslib node
	hooked  int           // hooks run since the current registration
	changed chan struct{} // closed and replaced whenever the registration state changes
	err     error
	stats   Stats

	// Owned by the run goroutine.
	cur    *goroslib.Node
	curURL string
	ports  [3]int // slave API, TCPROS, UDPROS

	dropped, goroslibErrors atomic.Uint64
	closing                 sync.WaitGroup // old goroslib nodes still closing
}

// decl is a declared publisher, subscriber or service.
type decl interface {
	create(n *goroslib.Node) error
	close()
}

// New validates conf and starts the node's goroutine, which registers with the master as
// soon as it answers (retrying every CheckInterval) and re-registers after a restart.
func New(conf Config, log *zap.Logger) (*Node, error) {
	if err := conf.Validate(); err != nil {
		return nil, fmt.Errorf("rosnode.New: %w", err)
	}
	conf = conf.withDefaults()
	addr, _ := masterAddress(conf.MasterURI)
	httpc := &http.Client{Timeout: conf.CallTimeout}
	n := &Node{
		conf:    conf,
		abs:     conf.absName(),
		master:  apimaster.NewClient(addr, conf.absName(), httpc),
		params:  apiparam.NewClient(addr, conf.absName(), httpc),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	n.log = log.With(zap.String("node", n.abs), zap.String("master", conf.MasterURI))
	n.hot = n.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, 5*time.Second, 1, 0)
	}))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.run()
	return n, nil
}

// Name is the node's fully qualified name.
func (n *Node) Name() string { return n.abs }

// Resolve turns a ROS name into a global one: "~p" is private to the node, "p" is in the
// node's namespace, "/p" stays.
func (n *Node) Resolve(name string) string {
	switch {
	case strings.HasPrefix(name, "/"):
		return name
	case strings.HasPrefix(name, "~"):
		return n.abs + "/" + strings.TrimPrefix(name[1:], "/")
	case n.conf.Namespace == "/":
		return "/" + name
	}
	return n.conf.Namespace + "/" + name
}

// Close unregisters everything and stops the node. It returns the error that ended the
// node early (ErrShutdown), if any.
func (n *Node) Close() error {
	n.cancel()
	<-n.done
	return n.Err()
}

// Done is closed when the node has stopped (Close, or ErrShutdown).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped by itself, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// WaitConnected returns once the node is registered with the master together with every
// publisher, subscriber, service and hook declared before the call.
func (n *Node) WaitConnected(ctx context.Context) error {
	n.mu.Lock()
	wantDecls, wantHooks := len(n.decls), len(n.hooks)
	n.mu.Unlock()
	for {
		n.mu.Lock()
		ok := n.stats.Connected && n.built >= wantDecls && n.hooked >= wantHooks
		ch := n.changed
		n.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-n.done:
			if err := n.Err(); err != nil {
				return err
			}
			return errors.New("rosnode: node closed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes WaitConnected callers; n.mu is held.
func (n *Node) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	s := n.stats
	n.mu.Unlock()
	s.Dropped = n.dropped.Load()
	s.GoroslibErrors = n.goroslibErrors.Load()
	return s
}

// OnConnect adds a hook run after every registration, first or after a master restart,
// from the node's goroutine (e.g. to set parameters, which a restarted master has lost).
// A hook that fails makes the node rebuild and retry.
func (n *Node) OnConnect(f func() error) {
	n.mu.Lock()
	n.hooks = append(n.hooks, f)
	n.mu.Unlock()
	n.poke()
}

func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Node) add(d decl) {
	n.mu.Lock()
	n.decls = append(n.decls, d)
	n.mu.Unlock()
	n.poke()
}

// Publisher is a declared topic to publish on.
type Publisher struct {
	n     *Node
	topic string
	proto any
	typ   reflect.Type
	latch bool
	cur   atomic.Pointer[goroslib.Publisher]
}

// Advertise declares a publisher of topic with the type of msg (a pointer to a goroslib
// message struct). A latched publisher sends its last message to each new subscriber.
func (n *Node) Advertise(topic string, msg any, latch bool) (*Publisher, error) {
	t := reflect.TypeOf(msg)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("rosnode.Advertise %s: message %T is not a pointer to a message struct", topic, msg)
	}
	if _, err := msgproc.MD5(reflect.New(t.Elem()).Elem().Interface()); err != nil {
		return nil, fmt.Errorf("rosnode.Advertise %s: %w", topic, err)
	}
	p := &Publisher{n: n, topic: n.Resolve(topic), proto: msg, typ: t, latch: latch}
	n.add(p)
	return p, nil
}

func (p *Publisher) create(gn *goroslib.Node) error {
	gp, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: gn, Topic: p.topic, Msg: p.proto, Latch: p.latch})
	if err != nil {
		return fmt.Errorf("publisher %s: %w", p.topic, err)
	}
	p.cur.Store(gp)
	return nil
}

func (p *Publisher) close() {
	if gp := p.cur.Swap(nil); gp != nil {
		gp.Close()
	}
}

// Topic is the publisher's global topic name.
func (p *Publisher) Topic() string { return p.topic }

// Write publishes msg (of the declared type). Messages are encoded later by goroslib's
// per-subscriber goroutines, so msg must not be modified afterwards. It returns
// ErrNotConnected, dropping msg, while the node is not registered.
func (p *Publisher) Write(msg any) error {
	if reflect.TypeOf(msg) != p.typ {
		return fmt.Errorf("rosnode: %s takes %v, not %T", p.topic, p.typ, msg)
	}
	gp := p.cur.Load()
	if gp == nil {
		p.n.dropped.Add(1)
		return ErrNotConnected
	}
	gp.Write(msg)
	return nil
}

type subscription struct {
	topic    string
	callback any
	queue    uint
	cur      *goroslib.Subscriber
}

// Subscribe declares a subscriber of topic. callback is a func(*Msg) for a goroslib
// message type; goroslib calls it from its own goroutine, one message at a time, and a
// slow callback stalls the stream: keep it short (store the message and return). queue > 0
// buffers that many messages and drops newer ones when full.
func (n *Node) Subscribe(topic string, callback any, queue uint) error {
	t := reflect.TypeOf(callback)
	if t == nil || t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 0 || t.In(0).Kind() != reflect.Pointer {
		return fmt.Errorf("rosnode.Subscribe %s: callback must be a func(*Message), got %T", topic, callback)
	}
	if _, err := msgproc.MD5(reflect.New(t.In(0).Elem()).Elem().Interface()); err != nil {
		return fmt.Errorf("rosnode.Subscribe %s: %w", topic, err)
	}
	n.add(&subscription{topic: n.Resolve(topic), callback: callback, queue: queue})
	return nil
}

func (s *subscription) create(gn *goroslib.Node) error {
	gs, err := goroslib.NewSubscriber(goroslib.SubscriberConf{Node: gn, Topic: s.topic, Callback: s.callback, QueueSize: s.queue})
	if err != nil {
		return fmt.Errorf("subscriber %s: %w", s.topic, err)
	}
	s.cur = gs
	return nil
}

func (s *subscription) close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}

type service struct {
	name     string
	srv      any
	callback any
	cur      *goroslib.ServiceProvider
}

// Serve declares a service provider. srv is a pointer to a goroslib service type (e.g.
// &std_srvs.Trigger{}); callback is func(*Req) (*Res, bool), where false reports failure
// to the caller. goroslib calls it from the requesting connection's goroutine.
func (n *Node) Serve(name string, srv, callback any) error {
	if reflect.TypeOf(srv) == nil || reflect.TypeOf(srv).Kind() != reflect.Pointer {
		return fmt.Errorf("rosnode.Serve %s: service %T is not a pointer", name, srv)
	}
	if _, err := serviceproc.MD5(reflect.ValueOf(srv).Elem().Interface()); err != nil {
		return fmt.Errorf("rosnode.Serve %s: %w", name, err)
	}
	if t := reflect.TypeOf(callback); t == nil || t.Kind() != reflect.Func || t.NumIn() != 1 || t.NumOut() != 2 {
		return fmt.Errorf("rosnode.Serve %s: callback must be func(*Req) (*Res, bool), got %T", name, callback)
	}
	n.add(&service{name: n.Resolve(name), srv: srv, callback: callback})
	return nil
}

func (s *service) create(gn *goroslib.Node) error {
	sp, err := goroslib.NewServiceProvider(goroslib.ServiceProviderConf{Node: gn, Name: s.name, Srv: s.srv, Callback: s.callback})
	if err != nil {
		return fmt.Errorf("service %s: %w", s.name, err)
	}
	s.cur = sp
	return nil
}

func (s *service) close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}

// Parameters. They go straight to the master's parameter server (with this node as the
// caller), so they work whether or not the node is registered. Names are resolved with
// Resolve ("~seed" is the node's private parameter).

// ParamIsSet reports whether a parameter exists.
func (n *Node) ParamIsSet(name string) (bool, error) { return n.params.HasParam(n.Resolve(name)) }

// ParamGetInt reads an integer parameter.
func (n *Node) ParamGetInt(name string) (int, error) { return n.params.GetParamInt(n.Resolve(name)) }

// ParamSetInt writes an integer parameter.
func (n *Node) ParamSetInt(name string, v int) error {
	return n.params.SetParamInt(n.Resolve(name), v)
}

// ParamGetBool reads a boolean parameter.
func (n *Node) ParamGetBool(name string) (bool, error) {
	return n.params.GetParamBool(n.Resolve(name))
}

// ParamSetBool writes a boolean parameter.
func (n *Node) ParamSetBool(name string, v bool) error {
	return n.params.SetParamBool(n.Resolve(name), v)
}

// ParamDelete removes a parameter.
func (n *Node) ParamDelete(name string) error { return n.params.DeleteParam(n.Resolve(name)) }

// run owns the goroslib node: it builds it, adds late declarations, checks the master and
// rebuilds after a restart.
func (n *Node) run() {
	defer close(n.done)
	tick := time.NewTicker(n.conf.CheckInterval)
	defer tick.Stop()
	var built []decl // declarations created on the current goroslib node
	hooksRun := 0
	for {
		if n.cur == nil {
			if err := n.build(); err != nil {
				n.hot.Warn("cannot register with the ROS master; retrying", zap.Error(err))
			} else {
				built, hooksRun = nil, 0
			}
		}
		if n.cur != nil {
			var err error
			if built, hooksRun, err = n.reconcile(built, hooksRun); err != nil {
				n.hot.Warn("registration failed; rebuilding the node", zap.Error(err))
				n.teardown(built, false)
				built = nil
			}
		}
		select {
		case <-n.ctx.Done():
			n.teardown(built, true)
			n.closing.Wait()
			return
		case <-n.wake:
			continue
		case <-tick.C:
		}
		if n.cur == nil {
			continue
		}
		switch st := n.check(); st {
		case stateOK, stateMasterDown:
		case stateForgotten:
			n.log.Info("the ROS master no longer knows this node (restarted?); re-registering")
			n.teardown(built, false)
			built = nil
		case stateShutdown:
			n.log.Error("node shut down by the ROS master")
			n.teardown(built, true)
			n.closing.Wait()
			n.mu.Lock()
			n.err = ErrShutdown
			n.mu.Unlock()
			return
		}
	}
}

type state int

const (
	stateOK state = iota
	stateMasterDown
	stateForgotten
	stateShutdown
)

// check asks the master whether it still knows this node at its address, and this node's
// own slave API whether goroslib is still running (a shutdown request stops it).
func (n *Node) check() state {
	if _, err := apislave.NewClient(strings.TrimSuffix(strings.TrimPrefix(n.curURL, "http://"), "/"), n.abs,
		&http.Client{Timeout: n.conf.CallTimeout}).GetPid(); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return stateShutdown
		}
	}
	url, err := n.master.LookupNode(n.abs)
	if err == nil {
		n.setMasterDown(false)
		if url != n.curURL {
			n.log.Error("another node registered under this node's name", zap.String("their_uri", url), zap.String("our_uri", n.curURL))
			return stateShutdown
		}
		return stateOK
	}
	if _, err2 := n.master.GetURI(); err2 != nil {
		if n.setMasterDown(true) {
			n.log.Warn("ROS master does not answer; streams keep flowing, waiting for it", zap.Error(err2))
		}
		return stateMasterDown
	}
	n.setMasterDown(false)
	return stateForgotten
}

// setMasterDown records the master's state and reports whether it changed.
func (n *Node) setMasterDown(down bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	changed := n.stats.MasterDown != down
	n.stats.MasterDown = down
	return changed
}

// build creates the goroslib node, on the previous ports when there were any.
func (n *Node) build() error {
	addr, _ := masterAddress(n.conf.MasterURI)
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		if n.ports == [3]int{} || attempt > 0 {
			p, err := freePorts()
			if err != nil {
				return err
			}
			n.ports = p
		}
		gn, err := goroslib.NewNode(goroslib.NodeConf{
			MasterAddress:   addr,
			Namespace:       n.conf.Namespace,
			Name:            n.conf.Name,
			Host:            n.conf.Host,
			ApislavePort:    n.ports[0],
			TcprosPort:      n.ports[1],
			UdprosPort:      n.ports[2],
			LogLevel:        goroslib.LogLevelInfo,
			LogDestinations: goroslib.LogDestinationCallback | goroslib.LogDestinationRosout,
			OnLog:           n.onLog,
		})
		if err == nil {
			url, err := n.master.LookupNode(n.abs)
			if err != nil {
				gn.Close()
				return fmt.Errorf("looking up own registration: %w", err)
			}
			n.cur, n.curURL = gn, url
			return nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return lastErr
}

// reconcile creates declarations added since the last call and runs hooks not yet run on
// this registration, then marks the node connected.
func (n *Node) reconcile(built []decl, hooksRun int) ([]decl, int, error) {
	n.mu.Lock()
	decls := n.decls[len(built):]
	hooks := n.hooks
	n.mu.Unlock()
	for _, d := range decls {
		if err := d.create(n.cur); err != nil {
			return built, hooksRun, err
		}
		built = append(built, d)
	}
	// A hook added later runs once now; all hooks run again after a rebuild.
	for ; hooksRun < len(hooks); hooksRun++ {
		if err := hooks[hooksRun](); err != nil {
			return built, hooksRun, fmt.Errorf("on-connect hook: %w", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	changed := !n.stats.Connected || n.built != len(built) || n.hooked != hooksRun
	n.built, n.hooked = len(built), hooksRun
	if !n.stats.Connected {
		n.stats.Connected = true
		n.stats.Registrations++
		n.stats.LastRegistration = time.Now()
		n.log.Info("registered with the ROS master", zap.Uint64("registration", n.stats.Registrations), zap.Int("declarations", len(built)))
	}
	if changed {
		n.notifyLocked()
	}
	if len(n.decls) != len(built) || len(n.hooks) != hooksRun {
		n.poke() // more arrived meanwhile
	}
	return built, hooksRun, nil
}

// teardown closes every goroslib object, unregistering what the master still knows.
// Each is closed (and so unregistered) before the node, because the rebuilt node reuses
// this one's address: a late unregistration would remove the new registration.
//
// Closing a goroslib node can take 5 s: its slave API server (net/http) waits for
// connections a peer opened but has not used yet (Go's HTTP client leaves such
// connections behind when it dials for concurrent requests to one node), and the TCPROS
// port stays bound meanwhile. So unless this is the final close, teardown waits at most
// closeWait and otherwise lets the old node finish in the background and rebuilds on new
// ports.
func (n *Node) teardown(built []decl, final bool) {
	n.mu.Lock()
	n.stats.Connected = false
	n.built, n.hooked = 0, 0
	n.notifyLocked()
	n.mu.Unlock()
	for i := len(built) - 1; i >= 0; i-- {
		built[i].close()
	}
	if n.cur == nil {
		return
	}
	old := n.cur
	n.cur = nil
	closed := make(chan struct{})
	n.closing.Add(1)
	go func() {
		defer n.closing.Done()
		old.Close()
		close(closed)
	}()
	if final {
		<-closed
		return
	}
	select {
	case <-closed:
	case <-time.After(closeWait):
		n.log.Info("previous node still closing; re-registering on new ports", zap.Duration("waited", closeWait))
		n.ports = [3]int{}
	}
}

// closeWait bounds how long a rebuild waits for the previous goroslib node to close.
const closeWait = 300 * time.Millisecond

func (n *Node) onLog(level goroslib.LogLevel, msg string) {
	switch {
	case level >= goroslib.LogLevelError:
		n.goroslibErrors.Add(1)
		n.hot.Warn("goroslib: "+msg, zap.Uint64("goroslib_errors", n.goroslibErrors.Load()))
	case level == goroslib.LogLevelWarn:
		n.hot.Warn("goroslib: " + msg)
	default:
		n.hot.Debug("goroslib: " + msg)
	}
}

// freePorts picks the slave API, TCPROS and UDPROS ports. They are kept across rebuilds.
func freePorts() ([3]int, error) {
	var p [3]int
	a, err := net.Listen("tcp", ":0")
	if err != nil {
		return p, fmt.Errorf("picking ports: %w", err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", ":0")
	if err != nil {
		return p, fmt.Errorf("picking ports: %w", err)
	}
	defer b.Close()
	u, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return p, fmt.Errorf("picking ports: %w", err)
	}
	defer u.Close()
	return [3]int{a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, u.LocalAddr().(*net.UDPAddr).Port}, nil
}
