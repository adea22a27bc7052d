package rosio

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"go.uber.org/zap"

	"robodistill/control/rosnode"
)

// State is one reading of every input but the camera. Make it with Inputs.NewState so
// that Read does not allocate.
type State struct {
	EEPose Pose
	Joints Joints
	// Objects are the configured objects' poses, in configured order; the entries
	// beyond NumObjects stay zero.
	Objects    [MaxObjects]Pose
	NumObjects int
	Goal       Pose
	Estop      Estop
}

// Ages are how long ago each input was last received (Never when it was not). The safety
// filter decides what is too old.
type Ages struct {
	Image, EEPose, Joints, Goal, Estop time.Duration
	Objects                            [MaxObjects]time.Duration // beyond NumObjects: Never
}

// InputStats are one input topic's counters.
type InputStats struct {
	Topic     string
	Received  uint64 // valid messages
	Malformed uint64 // messages dropped as malformed
	LastError string // why the last malformed message was dropped
}

// meta is an input's counters and its log limiter.
type meta struct {
	topic     string
	received  atomic.Uint64
	malformed atomic.Uint64

	mu         sync.Mutex
	lastErr    string
	lastLog    time.Time
	suppressed uint64
}

// Inputs subscribes to the daemon's input topics and keeps the latest valid value of
// each in a slot. Callbacks run on goroslib's goroutines; Read, ReadFrame and Ages are
// for the control thread and do not allocate.
type Inputs struct {
	cfg    Config
	topics Topics
	log    *zap.Logger
	now    func() time.Time

	image   imageSlot
	ee      poseSlot
	goal    poseSlot
	objects []poseSlot
	joints  jointSlot
	estop   estopSlot
}

type poseSlot struct {
	meta
	vmu sync.Mutex
	v   Pose
}

type estopSlot struct {
	meta
	vmu sync.Mutex
	v   Estop
}

// bufSlot is the slot of an input with buffers (joint states, images): a callback
// decodes into spare under wmu (callbacks of one topic do not overlap, but a rebuilt
// subscriber after a master restart must not race an old one), then swap exchanges spare
// and cur under vmu, so a reader holds vmu only while copying.
type bufSlot[T any] struct {
	meta
	wmu        sync.Mutex
	vmu        sync.Mutex
	cur, spare T
}

type (
	jointSlot = bufSlot[Joints]
	imageSlot = bufSlot[Frame]
)

// swap publishes the value decoded into spare; the caller holds wmu.
func (s *bufSlot[T]) swap() {
	s.vmu.Lock()
	s.cur, s.spare = s.spare, s.cur
	s.vmu.Unlock()
	s.received.Add(1)
}

// NewInputs validates cfg and declares its subscriptions on node. Values arrive once the
// node is connected (node.WaitConnected) and a publisher is found.
func NewInputs(node *rosnode.Node, cfg Config, log *zap.Logger) (*Inputs, error) {
	in, err := newInputs(cfg, log)
	if err != nil {
		return nil, err
	}
	subs := []struct {
		topic string
		cb    any
	}{
		{in.topics.Image, in.onImage},
		{in.topics.EEPose, in.onEEPose},
		{in.topics.JointStates, in.onJoints},
		{in.topics.Goal, in.onGoal},
		{in.topics.Estop, in.onEstop},
	}
	for i := range in.objects {
		s := &in.objects[i]
		subs = append(subs, struct {
			topic string
			cb    any
		}{s.topic, func(m *geometry_msgs.PoseStamped) { in.onPose(s, m) }})
	}
	for _, s := range subs {
		// Queue 0: goroslib hands each message to the callback synchronously. A queue
		// would drop the newest messages when full, the wrong ones for a latest-value
		// slot; the callbacks only decode and copy, so they keep up.
		if err := node.Subscribe(s.topic, s.cb, 0); err != nil {
			return nil, fmt.Errorf("rosio.NewInputs: %w", err)
		}
	}
	return in, nil
}

// newInputs builds the slots without subscribing (tests call the callbacks directly).
func newInputs(cfg Config, log *zap.Logger) (*Inputs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rosio.NewInputs: %w", err)
	}
	cfg.Joints = append([]string(nil), cfg.Joints...)
	cfg.Objects = append([]Object(nil), cfg.Objects...)
	in := &Inputs{cfg: cfg, topics: cfg.ResolveTopics(), log: log.With(zap.String("component", "rosio.inputs")), now: time.Now}
	in.image.topic = in.topics.Image
	in.ee.topic = in.topics.EEPose
	in.goal.topic = in.topics.Goal
	in.estop.topic = in.topics.Estop
	in.joints.topic = in.topics.JointStates
	in.joints.cur = NewJoints(cfg.Joints)
	in.joints.spare = NewJoints(cfg.Joints)
	in.objects = make([]poseSlot, len(cfg.Objects))
	for i := range in.objects {
		in.objects[i].topic = in.topics.Objects[i]
	}
	return in, nil
}

// Topics are the resolved topic names.
func (in *Inputs) Topics() Topics { return in.topics }

// NewState returns a State whose buffers Read fills without allocating.
func (in *Inputs) NewState() *State {
	return &State{Joints: NewJoints(in.cfg.Joints), NumObjects: len(in.objects)}
}

// Read copies every input but the camera into dst (from NewState). Inputs never received
// have a zero Stamp. Each slot is read on its own; messages of one moment arrive on
// separate connections, so dst may mix a newer pose with older joints.
func (in *Inputs) Read(dst *State) {
	in.ee.read(&dst.EEPose)
	in.goal.read(&dst.Goal)
	for i := range in.objects {
		in.objects[i].read(&dst.Objects[i])
	}
	for i := len(in.objects); i < MaxObjects; i++ {
		dst.Objects[i] = Pose{}
	}
	dst.NumObjects = len(in.objects)
	in.estop.vmu.Lock()
	dst.Estop = in.estop.v
	in.estop.vmu.Unlock()
	in.joints.vmu.Lock()
	in.joints.cur.copyTo(&dst.Joints)
	in.joints.vmu.Unlock()
}

func (s *poseSlot) read(dst *Pose) {
	s.vmu.Lock()
	*dst = s.v
	s.vmu.Unlock()
}

// ReadFrame copies the latest camera frame into dst, reusing dst.Data when it is large
// enough (so in steady state it does not allocate). It reports false, leaving dst
// unchanged, when no frame has arrived yet.
func (in *Inputs) ReadFrame(dst *Frame) bool {
	in.image.vmu.Lock()
	defer in.image.vmu.Unlock()
	if !in.image.cur.Stamp.Valid() {
		return false
	}
	in.image.cur.copyTo(dst)
	return true
}

// Ages fills dst with every input's age at now.
func (in *Inputs) Ages(now time.Time, dst *Ages) {
	lockedAge := func(mu *sync.Mutex, s *Stamp) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return s.Age(now)
	}
	dst.Image = lockedAge(&in.image.vmu, &in.image.cur.Stamp)
	dst.EEPose = lockedAge(&in.ee.vmu, &in.ee.v.Stamp)
	dst.Goal = lockedAge(&in.goal.vmu, &in.goal.v.Stamp)
	dst.Joints = lockedAge(&in.joints.vmu, &in.joints.cur.Stamp)
	dst.Estop = lockedAge(&in.estop.vmu, &in.estop.v.Stamp)
	for i := range dst.Objects {
		dst.Objects[i] = Never
		if i < len(in.objects) {
			dst.Objects[i] = lockedAge(&in.objects[i].vmu, &in.objects[i].v.Stamp)
		}
	}
}

// Stats returns every input's counters (it allocates: for metrics and diagnostics, not
// for the control loop).
func (in *Inputs) Stats() []InputStats {
	metas := []*meta{&in.image.meta, &in.ee.meta, &in.joints.meta, &in.goal.meta, &in.estop.meta}
	for i := range in.objects {
		metas = append(metas, &in.objects[i].meta)
	}
	out := make([]InputStats, len(metas))
	for i, m := range metas {
		m.mu.Lock()
		out[i] = InputStats{Topic: m.topic, Received: m.received.Load(), Malformed: m.malformed.Load(), LastError: m.lastErr}
		m.mu.Unlock()
	}
	return out
}

// bad counts a malformed message and logs it, at most once per LogInterval per topic.
func (in *Inputs) bad(m *meta, now time.Time, err error) {
	total := m.malformed.Add(1)
	m.mu.Lock()
	m.lastErr = err.Error()
	log := m.lastLog.IsZero() || now.Sub(m.lastLog) >= LogInterval
	suppressed := m.suppressed
	if log {
		m.lastLog, m.suppressed = now, 0
	} else {
		m.suppressed++
	}
	m.mu.Unlock()
	if log {
		in.log.Warn("malformed message dropped; the input keeps its previous value",
			zap.String("topic", m.topic), zap.Error(err), zap.Uint64("malformed_total", total),
			zap.Uint64("not_logged_since_last", suppressed))
	}
}

func (in *Inputs) onImage(m *sensor_msgs.Image) {
	now := in.now()
	s := &in.image
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := DecodeImage(m, now, &s.spare); err != nil {
		in.bad(&s.meta, now, err)
		return
	}
	s.swap()
}

func (in *Inputs) onJoints(m *sensor_msgs.JointState) {
	now := in.now()
	s := &in.joints
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := DecodeJointState(m, now, &s.spare); err != nil {
		in.bad(&s.meta, now, err)
		return
	}
	s.swap()
}

func (in *Inputs) onEEPose(m *geometry_msgs.PoseStamped) { in.onPose(&in.ee, m) }
func (in *Inputs) onGoal(m *geometry_msgs.PoseStamped)   { in.onPose(&in.goal, m) }

func (in *Inputs) onPose(s *poseSlot, m *geometry_msgs.PoseStamped) {
	now := in.now()
	var p Pose
	if err := DecodePose(m, in.cfg.Frame, now, &p); err != nil {
		in.bad(&s.meta, now, err)
		return
	}
	s.vmu.Lock()
	s.v = p
	s.vmu.Unlock()
	s.received.Add(1)
}

func (in *Inputs) onEstop(m *std_msgs.Bool) {
	e := DecodeEstop(m, in.now())
	s := &in.estop
	s.vmu.Lock()
	s.v = e
	s.vmu.Unlock()
	s.received.Add(1)
}
