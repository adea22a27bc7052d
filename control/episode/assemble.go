package episode

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/control/rosiface"
)

// DefaultMaxSpeed is the hand speed of a unit action in m/s when a bag has no metadata:
// MetaWorld's 1 cm per 12.5 ms, which the simulator keeps at either control rate.
const DefaultMaxSpeed = 0.8

// ReadOptions configure how a bag's topics become episodes.
type ReadOptions struct {
	// Namespace of the ROS interface's topics; "" finds it from the camera topic.
	Namespace string
	// MaxSpeed converts velocity commands to actions when the bag has no metadata
	// (default DefaultMaxSpeed).
	MaxSpeed float64
}

// Pose is a position and a (w, x, y, z) orientation.
type Pose struct {
	Pos  [3]float64
	Quat [4]float64
}

// Joints is a joint state.
type Joints struct {
	Name               []string
	Position, Velocity []float64
	Effort             []float64
}

// Object is an object's pose on objects/<name>/pose.
type Object struct {
	Name string
	Pose
}

// Command is the command sent after a frame: the end effector's velocity and the gripper
// effort, and the MetaWorld action they stand for.
type Command struct {
	Vel     [3]float64 // m/s (arm/cmd_vel)
	HasVel  bool
	Grip    float64 // -1..1 (gripper/command)
	HasGrip bool
	// Action is (Vel / max speed, Grip), clipped to [-1, 1]; missing parts are 0.
	Action [4]float64
}

// Step is one camera frame joined with the other topics (docs/episodes.md, "Steps").
// Pointer and slice fields are nil when the bag has no message for them.
type Step struct {
	Episode int // the episode's number (Meta.Episode, or its position in the bag)
	Index   int // position in the episode, from 0
	// Time is the image's bag time and Stamp its header stamp.
	Time, Stamp time.Time
	Frame       Frame
	Hash        Hash
	CameraInfo  *sensor_msgs.CameraInfo
	Hand        *Pose // arm/ee_pose
	Joints      *Joints
	Objects     []Object // sorted by name
	Goal        *[3]float64
	Obs         []float64 // MetaWorld's observation (sim only)
	// Status is the simulator's ground truth for this frame: Reward is MetaWorld's reward
	// for the step that led to it, Success whether the task is solved in it.
	Status *rosiface.EpisodeStatus
	// Command is the command that followed this frame (the action taken in it).
	Command *Command
	// Reward is the daemon's distilled reward for this frame (robot logs).
	Reward *float32
}

// Episode is a run of steps in one bag: the whole bag for a recorded episode, or a part
// between two simulator resets in a bag recorded from the sim bridge.
type Episode struct {
	Number int
	Meta   *Meta // nil when the bag has no metadata message
	Topics rosiface.Topics

	bag      *Bag
	owned    bool
	maxSpeed float64
	steps    []stepRefs
	objects  []string
}

// stepRefs are the indices (into bag.msgs, -1 for none) of a step's messages.
type stepRefs struct {
	image, info, hand, joints, goal, obs, status, vel, grip, reward, meta int
	objects                                                               []int
	st                                                                    *rosiface.EpisodeStatus
}

// topic roles
const (
	roleNone = iota
	roleImage
	roleInfo
	roleHand
	roleJoints
	roleGoal
	roleObs
	roleStatus
	roleVel
	roleGrip
	roleReward
	roleMeta
	roleObject
	numRoles
)

// expected types per role
var roleTypes = map[int]any{
	roleImage:  &sensor_msgs.Image{},
	roleInfo:   &sensor_msgs.CameraInfo{},
	roleHand:   &geometry_msgs.PoseStamped{},
	roleJoints: &sensor_msgs.JointState{},
	roleGoal:   &geometry_msgs.PoseStamped{},
	roleObs:    &std_msgs.Float64MultiArray{},
	roleStatus: &std_msgs.Float64MultiArray{},
	roleVel:    &geometry_msgs.TwistStamped{},
	roleGrip:   &std_msgs.Float64{},
	roleReward: &std_msgs.Float32{},
	roleMeta:   &std_msgs.String{},
	roleObject: &geometry_msgs.PoseStamped{},
}

const imageSuffix = "camera/image_raw"

// Namespace finds the namespace of the ROS interface in the bag from its camera topic.
func (b *Bag) Namespace() (string, error) {
	var found []string
	for _, c := range b.conns {
		if strings.HasSuffix(c.Topic, "/"+imageSuffix) && c.Type == "sensor_msgs/Image" {
			found = append(found, strings.TrimSuffix(c.Topic, imageSuffix))
		}
	}
	sort.Strings(found)
	found = compact(found)
	switch len(found) {
	case 0:
		var topics []string
		for _, t := range b.Topics() {
			topics = append(topics, t.Topic+" ("+t.Type+")")
		}
		return "", fmt.Errorf("episode: bag %s has no camera images (sensor_msgs/Image on <namespace>/%s); its topics: %s", b.name, imageSuffix, strings.Join(topics, ", "))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("episode: bag %s has cameras in several namespaces %v: choose one", b.name, found)
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Episodes assembles the bag's steps: one per camera image, joined with the other topics
// (docs/episodes.md, "Steps"), and split into episodes where the simulator's episode
// status shows a reset (its seed changes or its step goes back) or a new metadata
// message starts.
func (b *Bag) Episodes(opt ReadOptions) ([]*Episode, error) {
	ns := opt.Namespace
	if ns == "" {
		var err error
		if ns, err = b.Namespace(); err != nil {
			return nil, err
		}
	}
	topics := rosiface.DefaultTopics(ns)
	byTopic := map[string]int{
		topics.Image: roleImage, topics.CameraInfo: roleInfo, topics.EEPose: roleHand,
		topics.JointStates: roleJoints, topics.Goal: roleGoal, topics.Observation: roleObs,
		topics.Status: roleStatus, topics.CmdVel: roleVel, topics.Gripper: roleGrip,
		topics.Reward: roleReward, MetaTopic: roleMeta,
	}
	objPrefix := strings.TrimSuffix(topics.ObjectPose("x"), "x/pose")
	role := map[uint32]int{}
	objName := map[uint32]string{}
	for id, c := range b.conns {
		r, ok := byTopic[c.Topic]
		if !ok && strings.HasPrefix(c.Topic, objPrefix) && strings.HasSuffix(c.Topic, "/pose") {
			name := strings.TrimSuffix(strings.TrimPrefix(c.Topic, objPrefix), "/pose")
			if name != "" && !strings.Contains(name, "/") {
				r, ok = roleObject, true
				objName[id] = name
			}
		}
		if !ok {
			continue
		}
		want, err := typeOf(roleTypes[r])
		if err != nil {
			return nil, err
		}
		if c.Type != want.name {
			return nil, fmt.Errorf("episode: bag %s: topic %s has type %s, want %s", b.name, c.Topic, c.Type, want.name)
		}
		if c.MD5 != want.md5 && c.MD5 != "*" {
			return nil, fmt.Errorf("episode: bag %s: topic %s (%s) has md5sum %s, want %s: a different definition of the message", b.name, c.Topic, c.Type, c.MD5, want.md5)
		}
		role[id] = r
	}

	// Messages per role (and per object), in time order.
	var lists [numRoles][]int
	objLists := map[string][]int{}
	for i := range b.msgs {
		id := b.msgs[i].conn
		r := role[id]
		switch r {
		case roleNone:
		case roleObject:
			objLists[objName[id]] = append(objLists[objName[id]], i)
		default:
			lists[r] = append(lists[r], i)
		}
	}
	images := lists[roleImage]
	if len(images) == 0 {
		return nil, fmt.Errorf("episode: bag %s has no messages on %s", b.name, topics.Image)
	}
	var objects []string
	for name := range objLists {
		objects = append(objects, name)
	}
	sort.Strings(objects)

	t := func(i int) int64 { return b.msgs[i].time }
	newPicker := func(list []int, stamped bool) *picker {
		p := &picker{list: list, t: t}
		if stamped {
			p.stamps = map[int64][]int{}
			for j, i := range list {
				if st, ok := b.headerStamp(i); ok {
					p.stamps[st] = append(p.stamps[st], j)
				}
			}
		}
		return p
	}
	pickers := map[int]*picker{}
	for _, r := range []int{roleInfo, roleHand, roleJoints, roleGoal} {
		pickers[r] = newPicker(lists[r], true)
	}
	for _, r := range []int{roleObs, roleStatus, roleReward, roleMeta, roleVel, roleGrip} {
		pickers[r] = newPicker(lists[r], false)
	}
	objPickers := make([]*picker, len(objects))
	for i, name := range objects {
		objPickers[i] = newPicker(objLists[name], true)
	}
	steps := make([]stepRefs, len(images))
	for k, img := range images {
		at := t(img)
		next := int64(math.MaxInt64)
		if k+1 < len(images) {
			next = t(images[k+1])
		}
		stamp, stamped := b.headerStamp(img)
		s := stepRefs{image: img}
		s.info = pickers[roleInfo].state(at, stamp, stamped)
		s.hand = pickers[roleHand].state(at, stamp, stamped)
		s.joints = pickers[roleJoints].state(at, stamp, stamped)
		s.goal = pickers[roleGoal].state(at, stamp, stamped)
		s.obs = pickers[roleObs].state(at, stamp, stamped)
		s.status = pickers[roleStatus].state(at, stamp, stamped)
		s.reward = pickers[roleReward].state(at, stamp, stamped)
		s.meta = pickers[roleMeta].latest(at)
		s.vel = pickers[roleVel].command(at, next)
		s.grip = pickers[roleGrip].command(at, next)
		s.objects = make([]int, len(objects))
		for i, p := range objPickers {
			s.objects[i] = p.state(at, stamp, stamped)
		}
		if s.status >= 0 {
			st, err := b.status(s.status)
			if err != nil {
				return nil, err
			}
			s.st = &st
		}
		steps[k] = s
	}

	// Split at resets.
	var eps []*Episode
	start := 0
	var prev *rosiface.EpisodeStatus
	for k := range steps {
		st := steps[k].st
		reset := k > start && (steps[k].meta != steps[k-1].meta ||
			(st != nil && prev != nil && (st.Seed != prev.Seed || st.Step < prev.Step)))
		if reset {
			eps = append(eps, &Episode{steps: steps[start:k]})
			start = k
		}
		if st != nil {
			prev = st
		}
	}
	eps = append(eps, &Episode{steps: steps[start:]})
	for i, e := range eps {
		e.bag, e.Topics, e.objects, e.Number = b, topics, objects, i
		e.maxSpeed = opt.MaxSpeed
		if e.maxSpeed <= 0 {
			e.maxSpeed = DefaultMaxSpeed
		}
		if m := e.steps[0].meta; m >= 0 {
			meta, err := b.meta(m)
			if err != nil {
				return nil, err
			}
			e.Meta = meta
			e.Number = meta.Episode
			if meta.Rate > 0 && meta.ActionScale > 0 {
				e.maxSpeed = rosiface.Motion{Scale: meta.ActionScale, Rate: meta.Rate}.MaxSpeed()
			}
		}
	}
	return eps, nil
}

// picker chooses, for each step, a message from one topic's time-ordered list.
type picker struct {
	list   []int
	t      func(int) int64
	stamps map[int64][]int // header stamp -> positions in list (nil: the type has no header)
}

// state is the topic's message for a frame at bag time at whose header stamp is stamp:
// one with the same header stamp if there is one (the nearest in bag time among them),
// else the one nearest in bag time (ties go to the later). -1: the topic is empty.
func (p *picker) state(at, stamp int64, stamped bool) int {
	if len(p.list) == 0 {
		return -1
	}
	dist := func(j int) int64 {
		d := p.t(p.list[j]) - at
		if d < 0 {
			return -d
		}
		return d
	}
	if c := p.stamps[stamp]; stamped && len(c) > 0 {
		best := c[0]
		for _, j := range c[1:] {
			if dist(j) < dist(best) {
				best = j
			}
		}
		return p.list[best]
	}
	j := sort.Search(len(p.list), func(i int) bool { return p.t(p.list[i]) >= at })
	switch {
	case j == len(p.list):
		return p.list[j-1]
	case j > 0 && dist(j-1) < dist(j):
		return p.list[j-1]
	}
	return p.list[j]
}

// latest is the last message at or before bag time at (-1: none).
func (p *picker) latest(at int64) int {
	j := sort.Search(len(p.list), func(i int) bool { return p.t(p.list[i]) > at })
	if j == 0 {
		return -1
	}
	return p.list[j-1]
}

// command is the latest message after the frame (bag time at) and at or before the next
// frame (-1: none).
func (p *picker) command(at, next int64) int {
	j := sort.Search(len(p.list), func(i int) bool { return p.t(p.list[i]) > next })
	if j > 0 && p.t(p.list[j-1]) > at {
		return p.list[j-1]
	}
	return -1
}

// headerStamp reads the std_msgs/Header stamp that starts message i (seq, then seconds and
// nanoseconds), without decoding the rest.
func (b *Bag) headerStamp(i int) (int64, bool) {
	m := &b.msgs[i]
	if m.n < 12 {
		return 0, false
	}
	var h []byte
	switch {
	case m.kept != nil:
		h = m.kept[:12]
	case m.chunk == 0:
		h = make([]byte, 12)
		if _, err := b.r.ReadAt(h, m.data); err != nil {
			return 0, false
		}
	default:
		c, err := b.chunkData(m.chunk)
		if err != nil || m.data < 0 || m.data+12 > int64(len(c)) {
			return 0, false
		}
		h = c[m.data : m.data+12]
	}
	return int64(binary.LittleEndian.Uint32(h[4:]))*1e9 + int64(binary.LittleEndian.Uint32(h[8:])), true
}

func (b *Bag) decode(i int, dst any) error {
	m := &b.msgs[i]
	data, err := b.bytesOf(m)
	if err != nil {
		return err
	}
	if err := decodeMsg(data, dst); err != nil {
		return fmt.Errorf("episode: bag %s: %w: %s message at %.3f s: %v", b.name, ErrCorrupt, b.conns[m.conn].Topic, float64(m.time)/1e9, err)
	}
	return nil
}

func (b *Bag) status(i int) (rosiface.EpisodeStatus, error) {
	var m std_msgs.Float64MultiArray
	if err := b.decode(i, &m); err != nil {
		return rosiface.EpisodeStatus{}, err
	}
	st, err := rosiface.ParseEpisodeStatus(&m)
	if err != nil {
		return st, fmt.Errorf("episode: bag %s: %w: %s at %.3f s: %v", b.name, ErrCorrupt, b.conns[b.msgs[i].conn].Topic, float64(b.msgs[i].time)/1e9, err)
	}
	return st, nil
}

func (b *Bag) meta(i int) (*Meta, error) {
	var m std_msgs.String
	if err := b.decode(i, &m); err != nil {
		return nil, err
	}
	var meta Meta
	if err := json.Unmarshal([]byte(m.Data), &meta); err != nil {
		return nil, fmt.Errorf("episode: bag %s: %w: metadata on %s: %v", b.name, ErrCorrupt, MetaTopic, err)
	}
	if err := meta.Check(); err != nil {
		return nil, fmt.Errorf("episode: bag %s: %w", b.name, err)
	}
	return &meta, nil
}

// Len is the number of steps.
func (e *Episode) Len() int { return len(e.steps) }

// Bag is the bag the episode is in.
func (e *Episode) Bag() *Bag { return e.bag }

// Close closes the bag of an episode opened from a Collection (episodes from
// Bag.Episodes are closed with their bag).
func (e *Episode) Close() error {
	if e.owned {
		return e.bag.Close()
	}
	return nil
}

// Status is step i's episode status (nil when the bag has none), without decoding the
// step's other messages.
func (e *Episode) Status(i int) (*rosiface.EpisodeStatus, error) {
	if i < 0 || i >= len(e.steps) {
		return nil, fmt.Errorf("episode %d: step %d out of range 0..%d", e.Number, i, len(e.steps)-1)
	}
	return e.steps[i].st, nil
}

// Steps iterates over the steps, decoding each as it goes.
func (e *Episode) Steps() iter.Seq2[*Step, error] {
	return func(yield func(*Step, error) bool) {
		for i := range e.steps {
			s, err := e.Step(i)
			if !yield(s, err) || err != nil {
				return
			}
		}
	}
}

// Step decodes step i.
func (e *Episode) Step(i int) (*Step, error) {
	if i < 0 || i >= len(e.steps) {
		return nil, fmt.Errorf("episode %d: step %d out of range 0..%d", e.Number, i, len(e.steps)-1)
	}
	r := &e.steps[i]
	b := e.bag
	s := &Step{Episode: e.Number, Index: i, Time: time.Unix(0, b.msgs[r.image].time).UTC(), Status: r.st}
	wrap := func(err error) (*Step, error) {
		return nil, fmt.Errorf("episode %d step %d: %w", e.Number, i, err)
	}
	var img sensor_msgs.Image
	if err := b.decode(r.image, &img); err != nil {
		return wrap(err)
	}
	f, err := imageFrame(&img)
	if err != nil {
		return wrap(fmt.Errorf("%w: %s: %v", ErrCorrupt, e.Topics.Image, err))
	}
	s.Frame, s.Hash, s.Stamp = f, f.Hash(), img.Header.Stamp
	if r.info >= 0 {
		s.CameraInfo = &sensor_msgs.CameraInfo{}
		if err := b.decode(r.info, s.CameraInfo); err != nil {
			return wrap(err)
		}
	}
	pose := func(idx int) (*Pose, error) {
		if idx < 0 {
			return nil, nil
		}
		var m geometry_msgs.PoseStamped
		if err := b.decode(idx, &m); err != nil {
			return nil, err
		}
		p := m.Pose
		return &Pose{Pos: [3]float64{p.Position.X, p.Position.Y, p.Position.Z},
			Quat: [4]float64{p.Orientation.W, p.Orientation.X, p.Orientation.Y, p.Orientation.Z}}, nil
	}
	if s.Hand, err = pose(r.hand); err != nil {
		return wrap(err)
	}
	if g, err := pose(r.goal); err != nil {
		return wrap(err)
	} else if g != nil {
		s.Goal = &g.Pos
	}
	for j, idx := range r.objects {
		p, err := pose(idx)
		if err != nil {
			return wrap(err)
		}
		if p != nil {
			s.Objects = append(s.Objects, Object{Name: e.objects[j], Pose: *p})
		}
	}
	if r.joints >= 0 {
		var m sensor_msgs.JointState
		if err := b.decode(r.joints, &m); err != nil {
			return wrap(err)
		}
		s.Joints = &Joints{Name: m.Name, Position: m.Position, Velocity: m.Velocity, Effort: m.Effort}
	}
	if r.obs >= 0 {
		var m std_msgs.Float64MultiArray
		if err := b.decode(r.obs, &m); err != nil {
			return wrap(err)
		}
		if len(m.Layout.Dim) != 1 || m.Layout.Dim[0].Label != "obs" || int(m.Layout.Dim[0].Size) != len(m.Data) {
			return wrap(fmt.Errorf("%w: %s: want values labelled \"obs\", got %d values with layout %+v", ErrCorrupt, e.Topics.Observation, len(m.Data), m.Layout.Dim))
		}
		s.Obs = m.Data
	}
	if r.vel >= 0 || r.grip >= 0 {
		c := &Command{}
		if r.vel >= 0 {
			var m geometry_msgs.TwistStamped
			if err := b.decode(r.vel, &m); err != nil {
				return wrap(err)
			}
			c.Vel, c.HasVel = rosiface.TwistLinear(&m), true
		}
		if r.grip >= 0 {
			var m std_msgs.Float64
			if err := b.decode(r.grip, &m); err != nil {
				return wrap(err)
			}
			c.Grip, c.HasGrip = m.Data, true
		}
		c.Action = rosiface.Motion{Scale: e.maxSpeed, Rate: 1}.Action(c.Vel, c.Grip)
		s.Command = c
	}
	if r.reward >= 0 {
		var m std_msgs.Float32
		if err := b.decode(r.reward, &m); err != nil {
			return wrap(err)
		}
		s.Reward = &m.Data
	}
	return s, nil
}

// maxImageSide bounds an image's width and height.
const maxImageSide = 1 << 15

// imageFrame checks an Image and packs its rows.
func imageFrame(m *sensor_msgs.Image) (Frame, error) {
	bpp := BytesPerPixel(m.Encoding)
	if bpp == 0 {
		return Frame{}, fmt.Errorf("image encoding %q is not supported (rgb8, bgr8, mono8)", m.Encoding)
	}
	w, h, step := int64(m.Width), int64(m.Height), int64(m.Step)
	if w < 1 || h < 1 || w > maxImageSide || h > maxImageSide {
		return Frame{}, fmt.Errorf("image of %d×%d pixels", w, h)
	}
	row := w * int64(bpp)
	if step < row {
		return Frame{}, fmt.Errorf("image row step %d is shorter than %d pixels of %s", step, w, m.Encoding)
	}
	if need := step*(h-1) + row; int64(len(m.Data)) < need {
		return Frame{}, fmt.Errorf("image %d×%d %s (step %d) has %d bytes, needs %d", w, h, m.Encoding, step, len(m.Data), need)
	}
	f := Frame{Width: int(w), Height: int(h), Encoding: m.Encoding}
	if step == row {
		f.Data = m.Data[:row*h]
		return f, nil
	}
	f.Data = make([]byte, 0, row*h)
	for y := int64(0); y < h; y++ {
		f.Data = append(f.Data, m.Data[y*step:y*step+row]...)
	}
	return f, nil
}
