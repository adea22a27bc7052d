package translog

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"robodistill/control/episode"
)

// retryAfter is how long the writer waits after a failed write before it opens a new bag
// (the transitions in between are lost and counted).
const retryAfter = 5 * time.Second

// logEvery rate-limits the writer's warnings about drops, rejects and write errors.
const logEvery = 10 * time.Second

// writer is the state of the writer goroutine.
type writer struct {
	l     *Log
	types [numTypes]msgType
	hooks hooks
	timer *time.Timer // fires when the chunk being filled is FlushEvery old
	armed bool

	seq       int // the next bag's sequence number
	open      bool
	meta      episode.Meta // the open episode's metadata (Episode is set per bag)
	implicit  bool         // the open episode was started by a transition, not StartEpisode
	bag       *bagWriter
	final     string // the open bag's name once finished
	steps     int    // steps in the open bag
	pending   uint64 // transitions in the chunk being filled
	lastT     int64  // bag time (ns) after which the next step must come
	failedAt  time.Time
	spare     []byte // a chunk buffer kept from a finished bag
	objTopics map[string]string

	loggedDrops, loggedRejects uint64
	lastWarn                   time.Time
}

func (l *Log) run() {
	w := &l.w
	defer close(l.done)
	defer l.lock.Close() // releases the folder's flock
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	closing := l.closing
	draining := false
	for {
		w.drain()
		if l.abort.Load() {
			w.discardQueue()
			break
		}
		if draining && l.head.Load() == l.tail.Load() {
			break
		}
		select {
		case <-l.wake:
		case <-w.timer.C:
			w.armed = false
			if w.bag != nil && !w.bag.empty() {
				w.flush()
			}
		case <-closing:
			draining, closing = true, nil
		case <-l.abortCh:
		}
		w.warn()
	}
	w.timer.Stop()
	l.closeErr = w.endBag()
	w.warn()
}

// drain processes the queued slots, checking for an abort between them.
func (w *writer) drain() {
	l := w.l
	n := uint64(len(l.slots))
	for tail := l.tail.Load(); tail != l.head.Load(); tail++ {
		if l.abort.Load() {
			return
		}
		if w.hooks.beforeSlot != nil {
			w.hooks.beforeSlot()
		}
		s := &l.slots[tail%n]
		if w.hooks.discard {
			s.kind = 0
		}
		switch s.kind {
		case kindTransition:
			w.step(s)
		case kindStart:
			w.endBag()
			w.open, w.implicit, w.meta = true, false, s.meta
		case kindEnd:
			w.endBag()
			w.open = false
		}
		l.tail.Store(tail + 1)
	}
}

// discardQueue drops what is queued when Close's deadline cuts the drain short.
func (w *writer) discardQueue() {
	l := w.l
	n := uint64(len(l.slots))
	var lost uint64
	for tail := l.tail.Load(); tail != l.head.Load(); tail++ {
		if l.slots[tail%n].kind == kindTransition {
			lost++
		}
		l.tail.Store(tail + 1)
	}
	l.cutShort += lost
	l.lost.Add(lost)
	if lost > 0 {
		l.log.Warn("close deadline: discarded queued transitions", zap.Uint64("lost", lost))
	}
}

// step writes one transition into the open bag, opening one if needed.
func (w *writer) step(s *slot) {
	l := w.l
	if w.bag == nil {
		if !w.failedAt.IsZero() && time.Since(w.failedAt) < retryAfter {
			l.lost.Add(1)
			return
		}
		if err := w.openBag(&s.t); err != nil {
			w.fail("open bag", err)
			l.lost.Add(1)
			return
		}
	}
	b := w.bag
	w.encodeStep(&s.t)
	w.pending++
	if age := time.Since(b.opened); len(b.chunk) >= l.cfg.ChunkSize || age >= l.cfg.FlushEvery {
		w.flush()
	} else if !w.armed {
		w.timer.Reset(l.cfg.FlushEvery - age)
		w.armed = true
	}
}

// openBag creates the next bag for the open (or an implicit) episode.
func (w *writer) openBag(t *Transition) error {
	l := w.l
	if !w.open {
		w.open, w.implicit, w.meta = true, true, episode.Meta{}
		l.log.Info("transitions recorded outside an episode: starting one")
	}
	seq := w.seq
	w.seq++ // a failed attempt does not retry the same name
	name := fmt.Sprintf("%s%06d-%s", namePrefix, seq, t.Time.UTC().Format("20060102T150405Z"))
	path := filepath.Join(l.cfg.Dir, name+activeSuffix)
	buf := w.spare // the last bag's chunk buffer, when big enough
	if need := l.cfg.ChunkSize + 2*len(t.Image.Data) + 64<<10; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	b, err := createBag(path, buf)
	if err != nil {
		return err
	}
	w.spare = nil
	if err := syncDir(l.cfg.Dir); err != nil {
		b.close()
		os.Remove(path)
		return err
	}
	l.bytes.Add(b.size)
	w.bag, w.final, w.steps, w.lastT, w.failedAt = b, filepath.Join(l.cfg.Dir, name+bagSuffix), 0, 0, time.Time{}
	m := w.meta
	m.Format, m.Version, m.Episode = episode.Format, episode.Version, seq
	if m.Source == "" {
		m.Source = "robot"
	}
	if m.Namespace == "" {
		m.Namespace = l.topics.Namespace
	}
	if m.Rate == 0 {
		m.Rate = l.cfg.Rate
	}
	if m.Width == 0 && m.Height == 0 {
		m.Width, m.Height = t.Image.Width, t.Image.Height
	}
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	// The metadata goes first, at the first step's time (encodeStep keeps that time).
	ns := t.Time.UnixNano()
	at := b.beginMsg(b.connID(episode.MetaTopic, w.types[typString]), ns)
	b.chunk = appendString(b.chunk, string(js))
	b.endMsg(at)
	l.log.Info("episode bag started", zap.String("file", filepath.Base(w.final)), zap.Int("episode", m.Episode), zap.Bool("implicit", w.implicit))
	return nil
}

// encodeStep appends the messages of one step to the chunk (docs/translog.md).
func (w *writer) encodeStep(t *Transition) {
	b, tp, ty := w.bag, &w.l.topics, &w.types
	// Bag times: the step's state at T, its command at C in (T, next T]; both strictly
	// increase so that control/episode joins each command to its frame.
	T := max(t.Time.UnixNano(), w.lastT)
	C := T + int64(time.Microsecond)
	if sent := t.Sent.UnixNano(); !t.Sent.IsZero() && sent > T && sent <= T+int64(time.Second) {
		C = sent
	}
	w.lastT = C
	seq := uint32(w.steps)
	w.steps++

	at := b.beginMsg(b.connID(tp.Image, ty[typImage]), T)
	b.chunk = encImage(b.chunk, seq, &t.Image)
	b.endMsg(at)
	if t.Hand.Valid {
		at = b.beginMsg(b.connID(tp.EEPose, ty[typPose]), T)
		b.chunk = encPose(b.chunk, seq, &t.Hand)
		b.endMsg(at)
	}
	if len(t.Joints.Name) > 0 || len(t.Joints.Position) > 0 {
		at = b.beginMsg(b.connID(tp.JointStates, ty[typJoints]), T)
		b.chunk = encJoints(b.chunk, seq, &t.Joints)
		b.endMsg(at)
	}
	for i := range t.Objects {
		o := &t.Objects[i]
		topic, ok := w.objTopics[o.Name]
		if !ok {
			topic = tp.ObjectPose(o.Name)
			w.objTopics[strings.Clone(o.Name)] = topic
		}
		at = b.beginMsg(b.connID(topic, ty[typPose]), T)
		b.chunk = encPose(b.chunk, seq, &o.Pose)
		b.endMsg(at)
	}
	if t.Goal.Valid {
		at = b.beginMsg(b.connID(tp.Goal, ty[typPose]), T)
		b.chunk = encPose(b.chunk, seq, &t.Goal)
		b.endMsg(at)
	}
	r := t.Reward
	if !t.RewardValid {
		r = float32(math.NaN())
	}
	at = b.beginMsg(b.connID(tp.Reward, ty[typFloat32]), T)
	b.chunk = appendF32(b.chunk, r)
	b.endMsg(at)
	if t.PolicyValid {
		at = b.beginMsg(b.connID(tp.Policy, ty[typMultiArray]), T)
		b.chunk = encAction(b.chunk, &t.Policy)
		b.endMsg(at)
	}
	at = b.beginMsg(b.connID(tp.Safety, ty[typDiagnostic]), T)
	b.chunk = encSafety(b.chunk, &t.Safety)
	b.endMsg(at)
	if t.Command.Valid {
		at = b.beginMsg(b.connID(tp.CmdVel, ty[typTwist]), C)
		b.chunk = encTwist(b.chunk, seq, &t.Command)
		b.endMsg(at)
		at = b.beginMsg(b.connID(tp.Gripper, ty[typFloat64]), C)
		b.chunk = appendF64(b.chunk, t.Command.Grip)
		b.endMsg(at)
	}
}

// flush writes the chunk being filled; on failure the bag is abandoned.
func (w *writer) flush() {
	l := w.l
	w.disarm()
	size := w.bag.size
	if err := w.bag.flush(); err != nil {
		w.fail("write chunk", err)
		return
	}
	l.written.Add(w.pending)
	w.pending = 0
	l.bytes.Add(w.bag.size - size)
	l.lastFlush.Store(time.Now().UnixNano())
}

// endBag finishes the open bag, if any: last chunk, index, rename to .bag.
func (w *writer) endBag() error {
	l := w.l
	b := w.bag
	if b == nil {
		return nil
	}
	size := b.size
	w.disarm()
	if err := b.flush(); err != nil {
		return w.fail("write chunk", err)
	}
	l.written.Add(w.pending)
	w.pending = 0
	l.lastFlush.Store(time.Now().UnixNano())
	if err := b.writeIndex(); err != nil {
		return w.fail("write index", err)
	}
	l.bytes.Add(b.size - size)
	if err := b.close(); err != nil {
		return w.fail("close bag", err)
	}
	if err := os.Rename(b.path, w.final); err != nil {
		return w.fail("rename bag", err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return w.fail("sync folder", err)
	}
	w.spare, w.bag = b.chunk, nil
	l.episodes.Add(1)
	l.log.Info("episode bag finished", zap.String("file", filepath.Base(w.final)), zap.Int("steps", w.steps), zap.Int64("bytes", b.size))
	return nil
}

// fail abandons the open bag after an I/O error: its transitions not yet written are
// lost, its flushed chunks stay in the .active file for recovery, and no bag is opened
// for retryAfter.
func (w *writer) fail(op string, err error) error {
	l := w.l
	err = fmt.Errorf("translog: %s: %w", op, err)
	if w.bag != nil {
		l.lost.Add(w.pending)
		w.pending = 0
		w.bag.close()
		w.bag = nil
	}
	w.failedAt = time.Now()
	l.log.Error("transition log write failed; transitions are lost until a new bag opens", zap.Error(err), zap.Duration("retry_after", retryAfter))
	return err
}

// warn logs drops and rejects, at most every logEvery.
func (w *writer) warn() {
	l := w.l
	if time.Since(w.lastWarn) < logEvery {
		return
	}
	d, r := l.dropped.Load(), l.rejected.Load()
	if d == w.loggedDrops && r == w.loggedRejects {
		return
	}
	w.lastWarn = time.Now()
	l.log.Warn("transitions not recorded",
		zap.Uint64("dropped_queue_full", d-w.loggedDrops), zap.Uint64("rejected_invalid", r-w.loggedRejects),
		zap.Stringer("last_reject_reason", problem(l.rejectReason.Load())))
	w.loggedDrops, w.loggedRejects = d, r
}

// disarm stops the flush timer: the chunk is being written.
func (w *writer) disarm() {
	if w.armed {
		w.timer.Stop()
		w.armed = false
	}
}
