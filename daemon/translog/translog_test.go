package translog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
)

// 300 transitions of 64×64 rgb8 frames across two episodes come back from
// control/episode's reader as two episodes with the same frames, states, commands and
// rewards, and the extra topics (policy action, safety state) through go-rosbag's
// indexed reader.
func TestRoundTrip(t *testing.T) {
	cfg := testConfig(t)
	l, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(64, 64)
	lengths := []int{130, 170}
	metas := []episode.Meta{
		{Task: "drawer-open", Goal: "open the drawer", Policy: "sac@abc", Camera: "wrist", ActionScale: 0.01},
		{Task: "drawer-open", Goal: "open the drawer", Policy: "sac@abc", Camera: "wrist", ActionScale: 0.01, MaxSteps: 500},
	}
	i := 0
	for e, n := range lengths {
		if err := l.StartEpisode(metas[e]); err != nil {
			t.Fatal(err)
		}
		for range n {
			if !l.Record(src.at(i)) {
				t.Fatalf("transition %d refused: %+v", i, l.Stats())
			}
			i++
		}
		if err := l.EndEpisode(); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l)
	st := l.Stats()
	if st.Recorded != 300 || st.Written != 300 || st.Dropped != 0 || st.Lost != 0 || st.Episodes != 2 || st.Queued != 0 || st.LastFlush.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	files := bags(t, cfg.Dir)
	if len(files) != 2 {
		t.Fatalf("bags %v", files)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Dir, "*"+activeSuffix)); len(left) != 0 {
		t.Fatalf("unfinished bags left: %v", left)
	}
	var total int64
	i = 0
	check := newSource(64, 64)
	tp := newTopicNames(cfg.Namespace)
	for e, path := range files {
		if want := fmt.Sprintf("robot-%06d-20250301T12", e); !strings.HasPrefix(filepath.Base(path), want) {
			t.Errorf("bag %s, want a name starting %s", filepath.Base(path), want)
		}
		b, ep := readEpisode(t, path)
		total += b.Size()
		if !b.Indexed() || ep.Len() != lengths[e] || ep.Meta == nil {
			t.Fatalf("%s: indexed %v, %d steps (want %d), meta %v", path, b.Indexed(), ep.Len(), lengths[e], ep.Meta)
		}
		m := *ep.Meta
		want := metas[e]
		want.Format, want.Version, want.Source, want.Episode, want.Namespace, want.Rate, want.Width, want.Height =
			episode.Format, episode.Version, "robot", e, "/robot", 50, 64, 64
		if m != want || ep.Number != e {
			t.Fatalf("meta %+v, want %+v", m, want)
		}
		motion := rosiface.Motion{Scale: 0.01, Rate: 50}
		policy := rawMessages[std_msgs.Float64MultiArray](t, path, tp.Policy)
		safety := rawMessages[diagnostic_msgs.DiagnosticStatus](t, path, tp.Safety)
		if len(policy) != lengths[e] || len(safety) != lengths[e] {
			t.Fatalf("%d policy and %d safety messages, want %d", len(policy), len(safety), lengths[e])
		}
		for k := range ep.Len() {
			s, err := ep.Step(k)
			if err != nil {
				t.Fatal(err)
			}
			tr := check.at(i)
			if !bytes.Equal(s.Frame.Data, tr.Image.Data) || s.Frame.Encoding != "rgb8" || s.Hash != episode.RGBFrameHash(64, 64, tr.Image.Data) {
				t.Fatalf("episode %d step %d: frame differs", e, k)
			}
			if !s.Time.Equal(tr.Time) || !s.Stamp.Equal(tr.Image.Stamp) {
				t.Fatalf("step %d: time %v stamp %v, want %v %v", k, s.Time, s.Stamp, tr.Time, tr.Image.Stamp)
			}
			if s.Hand == nil || s.Hand.Pos != tr.Hand.Pos || s.Hand.Quat != tr.Hand.Quat || s.Goal == nil || *s.Goal != tr.Goal.Pos {
				t.Fatalf("step %d: hand %+v goal %v", k, s.Hand, s.Goal)
			}
			if s.Joints == nil || fmt.Sprint(s.Joints.Name, s.Joints.Position, s.Joints.Velocity) != fmt.Sprint(tr.Joints.Name, tr.Joints.Position, tr.Joints.Velocity) {
				t.Fatalf("step %d: joints %+v", k, s.Joints)
			}
			if len(s.Objects) != 2 || s.Objects[0].Name != "object" || s.Objects[0].Pos != tr.Objects[0].Pose.Pos || s.Objects[1].Quat != tr.Objects[1].Pose.Quat {
				t.Fatalf("step %d: objects %+v", k, s.Objects)
			}
			c := s.Command
			if c == nil || !c.HasVel || !c.HasGrip || c.Vel != tr.Command.Vel || c.Grip != tr.Command.Grip ||
				c.Action != motion.Action(tr.Command.Vel, tr.Command.Grip) {
				t.Fatalf("step %d: command %+v, want %+v", k, c, tr.Command)
			}
			switch {
			case s.Reward == nil:
				t.Fatalf("step %d: no reward", k)
			case tr.RewardValid && *s.Reward != tr.Reward:
				t.Fatalf("step %d: reward %v, want %v", k, *s.Reward, tr.Reward)
			case !tr.RewardValid && !math.IsNaN(float64(*s.Reward)):
				t.Fatalf("step %d: a step without reward reads %v, want NaN", k, *s.Reward)
			}
			if p := policy[k]; len(p.Data) != 4 || [4]float64(p.Data) != tr.Policy || p.Layout.Dim[0].Label != "action" {
				t.Fatalf("step %d: policy action %+v, want %v", k, p, tr.Policy)
			}
			sf := safety[k]
			if sf.Level != int8(tr.Safety.Level) || sf.Message != tr.Safety.Reason || sf.Values[0].Value != tr.Safety.Level.String() ||
				sf.Values[1].Value != fmt.Sprint(tr.Safety.Estop) {
				t.Fatalf("step %d: safety %+v, want %+v", k, sf, tr.Safety)
			}
			i++
		}
	}
	if total != st.Bytes {
		t.Fatalf("stats count %d bytes, the bags have %d", st.Bytes, total)
	}
	if _, err := exec.LookPath("rosbag"); err == nil {
		rosbagInfo(t, files[1], map[string]int{tp.Image: 170, tp.Policy: 170, tp.Safety: 170, tp.CmdVel: 170, episode.MetaTopic: 1})
	}
}

// rosbagInfo runs Debian's `rosbag info` on path and checks that it lists the topics with
// the given message counts, and that the bag is indexed.
func rosbagInfo(t *testing.T, path string, counts map[string]int) {
	t.Helper()
	out, err := exec.Command("rosbag", "info", path).CombinedOutput()
	if err != nil {
		t.Fatalf("rosbag info %s: %v\n%s", path, err, out)
	}
	for topic, n := range counts {
		unit := "msgs"
		if n == 1 {
			unit = "msg"
		}
		if !regexp.MustCompile(regexp.QuoteMeta(topic) + `\s+` + fmt.Sprint(n) + `\s+` + unit + `\s+:`).Match(out) {
			t.Errorf("rosbag info does not list %s with %d %s:\n%s", topic, n, unit, out)
		}
	}
	yaml, err := exec.Command("rosbag", "info", "--yaml", path).CombinedOutput()
	if err != nil || !bytes.Contains(yaml, []byte("indexed: True")) {
		t.Fatalf("rosbag info --yaml: %v\n%s", err, yaml)
	}
}

// heldLog is a Log whose writer waits before each slot while held.
type heldLog struct {
	*Log
	mu sync.Mutex
}

func newHeldLog(t *testing.T, cfg Config) *heldLog {
	h := &heldLog{}
	l, err := newLog(cfg, zaptest.NewLogger(t), &hooks{beforeSlot: func() { h.mu.Lock(); h.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	h.Log = l
	return h
}

// A full queue drops transitions and counts them; the slots kept for episode boundaries
// still take StartEpisode and EndEpisode, in order; what was accepted is written.
func TestQueueFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.Slots = 16
	h := newHeldLog(t, cfg)
	h.mu.Lock()
	src := newSource(8, 8)
	if err := h.StartEpisode(episode.Meta{Task: "a"}); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range 20 {
		if h.Record(src.at(i)) {
			accepted++
		}
	}
	// 16 slots: the marker and 11 transitions fill the 12 open to transitions.
	if st := h.Stats(); accepted != 11 || st.Recorded != 11 || st.Dropped != 9 || st.Queued != 12 {
		t.Fatalf("accepted %d, stats %+v", accepted, st)
	}
	for _, f := range []func() error{h.EndEpisode, func() error { return h.StartEpisode(episode.Meta{Task: "b"}) }, h.EndEpisode, h.EndEpisode} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.EndEpisode(); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a 17th slot: %v", err)
	}
	h.mu.Unlock()
	closeLog(t, h.Log)
	if st := h.Stats(); st.Written != 11 || st.Episodes != 1 {
		t.Fatalf("stats after close %+v", st)
	}
	files := bags(t, cfg.Dir)
	if len(files) != 1 {
		t.Fatalf("bags %v (the empty episode b leaves none)", files)
	}
	if _, ep := readEpisode(t, files[0]); ep.Len() != 11 || ep.Meta.Task != "a" {
		t.Fatalf("%d steps, meta %+v", ep.Len(), ep.Meta)
	}
	if h.Record(src.at(30)) || !errors.Is(h.StartEpisode(episode.Meta{}), ErrClosed) {
		t.Fatal("a closed log accepted a transition or an episode")
	}
}

// Record allocates nothing once the slots have been used.
func TestRecordAllocs(t *testing.T) {
	cfg := testConfig(t)
	cfg.Slots, cfg.MaxFrameBytes, cfg.FlushEvery, cfg.ChunkSize = 64, 64*64*3, time.Minute, 64<<20
	h := newHeldLog(t, cfg)
	src := newSource(64, 64)
	i := 0
	// Two rounds through the ring, so every slot has held a transition.
	for range 2 * cfg.Slots / 16 {
		for range 16 {
			if !h.Record(src.at(i)) {
				t.Fatalf("transition %d dropped", i)
			}
			i++
		}
		waitFor(t, "the writer", 10*time.Second, func() bool { return h.Stats().Queued == 0 })
	}
	h.mu.Lock() // the writer must not allocate during the measurement
	before := h.Stats().Recorded
	allocs := testing.AllocsPerRun(50, func() {
		h.Record(src.at(i))
		i++
	})
	if got := h.Stats().Recorded - before; got != 51 {
		t.Fatalf("%d of 51 transitions accepted", got)
	}
	h.mu.Unlock()
	if allocs != 0 {
		t.Fatalf("Record allocates %v times per call", allocs)
	}
	closeLog(t, h.Log)
}

// The writer encodes a step without allocating once the chunk buffer and the index
// slices are large enough.
func TestWriteStepAllocs(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushEvery, cfg.ChunkSize = time.Minute, 64<<20
	w := bareWriter(t, cfg)
	src := newSource(64, 64)
	var s slot
	s.copyFrom(src.at(0))
	w.step(&s)
	defer w.bag.close()
	w.bag.chunk = append(make([]byte, 0, 8<<20), w.bag.chunk...)
	// Warm up: the per-connection index slices reach their size, then a flush keeps
	// their capacity for the next chunk.
	k := 1
	for ; k < 150; k++ {
		s.copyFrom(src.at(k))
		w.step(&s)
	}
	w.flush()
	allocs := testing.AllocsPerRun(100, func() {
		s.copyFrom(src.at(k))
		w.step(&s)
		k++
	})
	if allocs != 0 {
		t.Fatalf("writing a step allocates %v times", allocs)
	}
}

// bareWriter is a writer without its goroutine, for tests that drive it directly.
func bareWriter(tb testing.TB, cfg Config) *writer {
	types, err := msgTypes()
	if err != nil {
		tb.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	l := &Log{cfg: cfg, log: zap.NewNop(), topics: newTopicNames(cfg.Namespace)}
	return &writer{l: l, types: types, objTopics: map[string]string{}, timer: time.NewTimer(time.Hour)}
}

// A chunk that is far from full is written and fsynced within FlushEvery: an unfinished
// bag reads, with control/episode, every step recorded more than that ago.
func TestFlushEvery(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushEvery = 100 * time.Millisecond
	l, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog(t, l)
	src := newSource(16, 16)
	for i := range 5 {
		l.Record(src.at(i))
	}
	waitFor(t, "a flush", 10*time.Second, func() bool { return l.Stats().Written == 5 })
	st := l.Stats()
	active, _ := filepath.Glob(filepath.Join(cfg.Dir, "*"+activeSuffix))
	if len(active) != 1 || st.LastFlush.IsZero() || st.Bytes == 0 {
		t.Fatalf("active bags %v, stats %+v", active, st)
	}
	b, ep := readEpisode(t, active[0])
	if b.Indexed() || ep.Len() != 5 {
		t.Fatalf("unfinished bag: indexed %v, %d steps", b.Indexed(), ep.Len())
	}
}

// Close drains the queue when it has time and, when its deadline comes first, discards
// the rest, still finishes the bag, and says how many transitions were lost.
func TestCloseDeadline(t *testing.T) {
	cfg := testConfig(t)
	slow := make(chan struct{})
	l, err := newLog(cfg, zaptest.NewLogger(t), &hooks{beforeSlot: func() {
		select {
		case <-slow:
		case <-time.After(20 * time.Millisecond):
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(32, 32)
	for i := range 200 {
		if !l.Record(src.at(i)) {
			t.Fatal("dropped")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = l.Close(ctx)
	took := time.Since(start)
	var lost *LostError
	if !errors.As(err, &lost) || lost.Lost == 0 || lost.Unfinished || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	if took > 3*time.Second {
		t.Fatalf("Close took %v with a 1 s deadline", took)
	}
	st := l.Stats()
	if st.Lost != lost.Lost || st.Written+st.Lost != st.Recorded || st.Episodes != 1 {
		t.Fatalf("lost %d, stats %+v", lost.Lost, st)
	}
	files := bags(t, cfg.Dir)
	if len(files) != 1 {
		t.Fatalf("bags %v", files)
	}
	if b, ep := readEpisode(t, files[0]); !b.Indexed() || uint64(ep.Len()) != st.Written {
		t.Fatalf("bag: indexed %v, %d steps, %d written", b.Indexed(), ep.Len(), st.Written)
	}
	t.Logf("Close took %v: %d written, %d lost", took, st.Written, st.Lost)
}

// A writer blocked in a write does not hold Close past its deadline; the bag is left
// unfinished for the next start to recover.
func TestCloseBlockedWriter(t *testing.T) {
	cfg := testConfig(t)
	block := make(chan struct{})
	l, err := newLog(cfg, zaptest.NewLogger(t), &hooks{beforeSlot: func() { <-block }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(block); <-l.done }()
	src := newSource(8, 8)
	for i := range 10 {
		l.Record(src.at(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = l.Close(ctx)
	var lost *LostError
	if !errors.As(err, &lost) || !lost.Unfinished || lost.Lost != 10 {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v with a 200 ms deadline", took)
	}
}

// A transition outside StartEpisode/EndEpisode starts an episode with default metadata;
// an empty episode leaves no bag; sequence numbers continue across restarts.
func TestImplicitEpisodeAndSequence(t *testing.T) {
	cfg := testConfig(t)
	src := newSource(8, 8)
	for run := range 2 {
		l, err := New(cfg, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.StartEpisode(episode.Meta{Task: "empty"}); err != nil {
			t.Fatal(err)
		}
		if err := l.EndEpisode(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			l.Record(src.at(10*run + i))
		}
		closeLog(t, l)
	}
	files := bags(t, cfg.Dir)
	if len(files) != 2 || !strings.HasPrefix(filepath.Base(files[1]), "robot-000001-") {
		t.Fatalf("bags %v", files)
	}
	for n, f := range files {
		if _, ep := readEpisode(t, f); ep.Len() != 3 || ep.Meta.Episode != n || ep.Meta.Source != "robot" || ep.Meta.Task != "" {
			t.Fatalf("%s: %d steps, meta %+v", f, ep.Len(), ep.Meta)
		}
	}
}

// One process at a time logs to a folder.
func TestFolderLock(t *testing.T) {
	cfg := testConfig(t)
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "another process is logging") {
		t.Fatalf("second New: %v", err)
	}
	closeLog(t, l)
	l, err = New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
}

// Record refuses invalid transitions and counts them; Validate says what is wrong.
func TestRejects(t *testing.T) {
	cfg := testConfig(t)
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog(t, l)
	src := newSource(4, 4)
	cases := []struct {
		edit func(*Transition)
		want string
	}{
		{func(t *Transition) { t.Time = time.Time{} }, "time 0001-01-01 00:00:00 +0000 UTC is not a ROS time"},
		{func(t *Transition) { t.Time = time.Unix(-5, 0) }, "is not a ROS time"},
		{func(t *Transition) { t.Image.Width = 0 }, "image of 0×4 pixels"},
		{func(t *Transition) { t.Image.Encoding = "rgba8" }, `image encoding "rgba8" is not rgb8, bgr8 or mono8`},
		{func(t *Transition) { t.Image.Step = 5 }, "image step 5 is shorter than a row of 4 rgb8 pixels"},
		{func(t *Transition) { t.Image.Data = t.Image.Data[:47] }, "image 4×4 rgb8 (step 0) has 47 bytes"},
		{func(t *Transition) { t.Image.Step = 13 }, "image 4×4 rgb8 (step 13) has 48 bytes"},
		{func(t *Transition) { t.Objects[1].Name = "a/b" }, `object name "a/b" is empty or contains '/'`},
		{func(t *Transition) { t.Safety.Level = 7 }, "safety level 7 is not 0..3"},
	}
	for i, c := range cases {
		tr := *src.at(i)
		tr.Objects = []Object{{Name: "x"}, {Name: "y"}}
		c.edit(&tr)
		err := tr.Validate()
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: %v, want %q", i, err, c.want)
		}
		if l.Record(&tr) {
			t.Errorf("case %d: recorded", i)
		}
	}
	if st := l.Stats(); st.Rejected != uint64(len(cases)) || st.Recorded != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Padded rows are accepted and packed.
	tr := src.at(0)
	padded := make([]byte, 4*16)
	for y := range 4 {
		copy(padded[y*16:], tr.Image.Data[y*12:(y+1)*12])
	}
	want := tr.Image.Data
	tr.Image.Step, tr.Image.Data = 16, padded
	if err := tr.Validate(); err != nil || !l.Record(tr) {
		t.Fatalf("padded image: %v", err)
	}
	var s slot
	s.copyFrom(tr)
	if !bytes.Equal(s.t.Image.Data, want) || s.t.Image.Step != 12 {
		t.Fatal("padded rows are not packed")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "dir: the log folder is required"},
		{Config{Dir: "x", Namespace: "/a//b"}, `namespace: "/a//b" has an empty name between slashes`},
		{Config{Dir: "x", Namespace: "/9robot"}, `namespace: "/9robot": "9robot" is not a ROS name (a letter, then letters, digits or _)`},
		{Config{Dir: "x", Slots: 3}, "slots: 3 is out of range [8, 65536]"},
		{Config{Dir: "x", MaxFrameBytes: -1}, "max_frame_bytes: -1 is out of range [0, 67108864]"},
		{Config{Dir: "x", FlushEvery: time.Millisecond}, "flush_every: 1ms is out of range [10ms, 1m]"},
		{Config{Dir: "x", ChunkSize: 100}, "chunk_size: 100 bytes is out of range [4096, 67108864]"},
		{Config{Dir: "x", Rate: -50}, "rate: -50 Hz is out of range [1, 1000]"},
	}
	for _, c := range cases {
		err := c.cfg.WithDefaults().Validate()
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
		if _, err := New(c.cfg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v", c.cfg, err)
		}
	}
	if err := (Config{Dir: "x", Namespace: "robot/arm_1"}).WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRecord measures Record on warm slots, with a writer that frees each slot
// without writing it (so that only Record is measured, and no disk is filled; the writer
// has its own benchmark); 64 px and 224 px rgb8 frames.
func BenchmarkRecord(b *testing.B) {
	for _, px := range []int{64, 224} {
		b.Run(fmt.Sprintf("%dpx", px), func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Slots, cfg.MaxFrameBytes = 256, px*px*3
			l, err := newLog(cfg, nil, &hooks{discard: true})
			if err != nil {
				b.Fatal(err)
			}
			src := newSource(px, px)
			dropped := 0
			record := func(i int) {
				for !l.Record(src.at(i)) {
					dropped++
					runtime.Gosched()
				}
			}
			for i := range 2 * cfg.Slots { // every slot used once
				record(i)
			}
			b.SetBytes(int64(px * px * 3))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				record(i)
			}
			b.StopTimer()
			b.ReportMetric(float64(dropped)/float64(b.N), "full/op")
			closeLog(b, l)
		})
	}
}

// BenchmarkSlotCopy measures Record's copy of a transition into a slot alone.
func BenchmarkSlotCopy(b *testing.B) {
	for _, px := range []int{64, 224} {
		b.Run(fmt.Sprintf("%dpx", px), func(b *testing.B) {
			src := newSource(px, px)
			var s slot
			s.copyFrom(src.at(0))
			b.SetBytes(int64(px * px * 3))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.copyFrom(src.at(i))
			}
		})
	}
}

// BenchmarkWriter measures the writer end to end: transitions through the queue into
// bags, chunks written and fsynced, per transition.
func BenchmarkWriter(b *testing.B) {
	cfg := testConfig(b)
	cfg.Slots = 1024
	l, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := newSource(64, 64)
	b.SetBytes(64 * 64 * 3)
	b.ResetTimer()
	for i := range b.N {
		for !l.Record(src.at(i)) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	closeLog(b, l)
	if st := l.Stats(); st.Written != uint64(b.N) {
		b.Fatalf("stats %+v", st)
	}
}
