package translog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
)

// Log is the transition log. Record, StartEpisode, EndEpisode and Stats are safe for
// concurrent use (the control thread is expected to be the one caller of the first
// three); Close is called at shutdown, and again returns the same result.
type Log struct {
	cfg    Config
	log    *zap.Logger
	topics topicNames
	lock   *os.File

	// The ring: the producers (under pmu) fill slots[head%n] and publish head; the
	// writer reads slots[tail%n] and publishes tail, which frees the slot.
	pmu    sync.Mutex
	closed bool
	slots  []slot
	head   atomic.Uint64
	tail   atomic.Uint64
	wake   chan struct{}

	closing   chan struct{}
	closeOnce sync.Once
	abort     atomic.Bool
	abortCh   chan struct{}
	abortOnce sync.Once
	done      chan struct{}

	recorded, dropped, rejected atomic.Uint64
	written, lost               atomic.Uint64
	bytes                       atomic.Int64
	episodes                    atomic.Int64
	lastFlush                   atomic.Int64 // Unix ns
	rejectReason                atomic.Uint32

	// Owned by the writer goroutine until done is closed.
	w        writer
	closeErr error
	cutShort uint64 // transitions discarded because Close's deadline came
}

// Stats are the log's counters since New.
type Stats struct {
	// Recorded counts transitions Record accepted; Dropped those it refused because the
	// queue was full (or the log closed), Rejected those that failed Transition.Validate.
	Recorded, Dropped, Rejected uint64
	// Written counts transitions in bag files on disk (written and fsynced); Lost those
	// accepted but never written (write errors, or Close cut short by its deadline).
	// Recorded = Written + Lost + Queued + the transitions of the chunk being filled.
	Written, Lost uint64
	// Queued is the number of slots waiting for the writer.
	Queued int
	// Bytes is the size of everything written to bags; Episodes the bags finished.
	Bytes    int64
	Episodes int
	// LastFlush is when a chunk was last written and fsynced (zero: never).
	LastFlush time.Time
}

// LostError is Close's error when its deadline came before every recorded transition
// was written: Lost transitions were discarded.
type LostError struct {
	Lost uint64
	// Unfinished is set when the writer was still busy at the deadline (a write or fsync
	// that did not return): the bag in progress stays unfinished and New recovers it.
	Unfinished bool
	Err        error
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("translog.Close: the deadline came before the queue was written: %d transitions lost", e.Lost)
	if e.Unfinished {
		s += " (at most; the writer was blocked and the last bag is left for recovery)"
	}
	return s + ": " + e.Err.Error()
}

func (e *LostError) Unwrap() error { return e.Err }

// Files of the log folder.
const (
	bagSuffix    = ".bag"
	activeSuffix = ".bag.active" // a bag being written, or left by a crash
	lockFile     = ".lock"
	namePrefix   = "robot-"
)

// New opens the log folder cfg.Dir (creating it), takes its lock, recovers bags a crash
// left unfinished (see Recover), and starts the writer.
func New(cfg Config, log *zap.Logger) (*Log, error) {
	return newLog(cfg, log, nil)
}

// hooks let tests hold, slow or short-circuit the writer.
type hooks struct {
	beforeSlot func() // called by the writer before each slot
	discard    bool   // the writer frees slots without writing them (BenchmarkRecord)
}

func newLog(cfg Config, log *zap.Logger, h *hooks) (*Log, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("translog.New: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "translog"))
	types, err := msgTypes()
	if err != nil {
		return nil, fmt.Errorf("translog.New: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("translog.New: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("translog.New: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("translog.New: another process is logging to %s (lock %s): %w", cfg.Dir, lockFile, err)
	}
	next, err := recoverDir(cfg.Dir, log)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("translog.New: %w", err)
	}
	l := &Log{
		cfg:     cfg,
		log:     log,
		topics:  newTopicNames(cfg.Namespace),
		lock:    lock,
		slots:   make([]slot, cfg.Slots),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		abortCh: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.MaxFrameBytes > 0 {
		for i := range l.slots {
			l.slots[i].frame = make([]byte, 0, cfg.MaxFrameBytes)
		}
	}
	l.w = writer{l: l, types: types, seq: next, objTopics: map[string]string{}}
	if h != nil {
		l.w.hooks = *h
	}
	go l.run()
	return l, nil
}

// Record queues a copy of t for the writer and reports whether it was accepted. It
// never blocks on I/O and allocates nothing once every slot has held a frame of this
// size. A full queue drops t (counted in Stats.Dropped); an invalid t is refused
// (Stats.Rejected; see Transition.Validate). A transition recorded outside an episode
// starts one with default metadata.
func (l *Log) Record(t *Transition) bool {
	if p := t.check(); p != probNone {
		l.rejected.Add(1)
		l.rejectReason.Store(uint32(p))
		return false
	}
	l.pmu.Lock()
	head := l.head.Load()
	if l.closed || head-l.tail.Load() >= uint64(len(l.slots)-markerSlots) {
		l.pmu.Unlock()
		l.dropped.Add(1)
		return false
	}
	l.slots[head%uint64(len(l.slots))].copyFrom(t)
	l.head.Store(head + 1)
	l.pmu.Unlock()
	l.recorded.Add(1)
	l.notify()
	return true
}

func (l *Log) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// ErrQueueFull is returned by StartEpisode and EndEpisode when not even the slots kept
// for episode boundaries are free: the writer has stalled.
var ErrQueueFull = errors.New("translog: queue full")

// ErrClosed is returned by StartEpisode and EndEpisode after Close.
var ErrClosed = errors.New("translog: closed")

// StartEpisode queues the start of an episode: the transitions recorded after it go to a
// new bag, whose metadata is meta with Format, Version and Episode (the bag's sequence
// number) filled in, Source "robot" and Namespace, Rate, Width and Height defaulted from
// the configuration and the first frame. An episode still open is ended first.
func (l *Log) StartEpisode(meta episode.Meta) error {
	return l.marker(kindStart, &meta)
}

// EndEpisode queues the end of the current episode: its bag is finished (indexed,
// fsynced and renamed to .bag) once its transitions are written.
func (l *Log) EndEpisode() error { return l.marker(kindEnd, nil) }

func (l *Log) marker(kind uint8, meta *episode.Meta) error {
	l.pmu.Lock()
	head := l.head.Load()
	if l.closed {
		l.pmu.Unlock()
		return ErrClosed
	}
	if head-l.tail.Load() >= uint64(len(l.slots)) {
		l.pmu.Unlock()
		return ErrQueueFull
	}
	s := &l.slots[head%uint64(len(l.slots))]
	s.kind = kind
	if meta != nil {
		s.meta = *meta
	}
	l.head.Store(head + 1)
	l.pmu.Unlock()
	l.notify()
	return nil
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	s := Stats{
		Recorded: l.recorded.Load(),
		Dropped:  l.dropped.Load(),
		Rejected: l.rejected.Load(),
		Written:  l.written.Load(),
		Lost:     l.lost.Load(),
		Bytes:    l.bytes.Load(),
		Episodes: int(l.episodes.Load()),
	}
	s.Queued = int(l.head.Load() - l.tail.Load())
	if ns := l.lastFlush.Load(); ns != 0 {
		s.LastFlush = time.Unix(0, ns)
	}
	return s
}

// closeMargin is the share of Close's remaining time kept for finishing the bag (last
// chunk, index, fsyncs, rename) after the queue's draining is cut short, at most
// maxCloseMargin: with the daemon's 2 s, Close drains for 1.5 s at most.
const (
	closeMargin    = 2
	maxCloseMargin = 500 * time.Millisecond
)

// Close stops accepting transitions, writes those queued, finishes the bag in progress
// and releases the folder. If ctx ends first (or comes within a margin of its
// deadline), the queue's remaining transitions are discarded so that the bag can still be
// finished in time, and Close returns a *LostError with their number. Close returns by
// ctx's deadline even when a write blocks; the bag is then recovered on the next start.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.pmu.Lock()
		l.closed = true
		l.pmu.Unlock()
		close(l.closing)
	})
	var soft <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		t := time.NewTimer(left - min(left/closeMargin, maxCloseMargin))
		defer t.Stop()
		soft = t.C
	}
	select {
	case <-l.done:
	case <-soft:
		l.stopWriter()
	case <-ctx.Done():
		l.stopWriter()
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		lost := l.recorded.Load() - l.written.Load()
		return &LostError{Lost: lost, Unfinished: true, Err: ctx.Err()}
	}
	err := l.closeErr
	if l.cutShort > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		err = errors.Join(&LostError{Lost: l.cutShort, Err: cause}, err)
	}
	return err
}

func (l *Log) stopWriter() {
	l.abortOnce.Do(func() {
		l.abort.Store(true)
		close(l.abortCh)
	})
}

// topicNames are the topics a step is written on.
type topicNames struct {
	rosiface.Topics
	Policy string // std_msgs/Float64MultiArray: the policy's action before the safety filter
	Safety string // diagnostic_msgs/DiagnosticStatus: the safety filter's state
}

// Extra topics of the transition log, relative to the namespace.
const (
	PolicyTopic = "policy/action"
	SafetyTopic = "safety/status"
)

func newTopicNames(ns string) topicNames {
	t := rosiface.DefaultTopics(ns)
	join := func(s string) string {
		if t.Namespace == "/" {
			return "/" + s
		}
		return t.Namespace + "/" + s
	}
	return topicNames{Topics: t, Policy: join(PolicyTopic), Safety: join(SafetyTopic)}
}
