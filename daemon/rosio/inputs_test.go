package rosio

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a settable clock for Inputs.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testInputs(t testing.TB, cfg Config) (*Inputs, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	in, err := newInputs(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	in.now = clk.now
	return in, clk, logs
}

func sawyerJoints(right, left float64) *sensor_msgs.JointState {
	pos := []float64{1, 2, 3, 4, 5, 6, 7, right, left}
	return jointMsg(append([]string(nil), SawyerJoints...), pos, make([]float64, len(pos)))
}

func TestInputsKeepLatestValid(t *testing.T) {
	in, clk, logs := testInputs(t, DefaultConfig())
	st := in.NewState()
	in.Read(st)
	if st.EEPose.Stamp.Valid() || st.Joints.Stamp.Valid() || st.Objects[0].Stamp.Valid() {
		t.Fatal("values before any message")
	}
	var ages Ages
	in.Ages(clk.now(), &ages)
	if ages.EEPose != Never || ages.Image != Never || ages.Objects[0] != Never || ages.Objects[1] != Never {
		t.Fatalf("ages before any message: %+v", ages)
	}

	in.onEEPose(poseMsg("world", [3]float64{0.1, 0.6, 0.2}, [4]float64{1, 0, 0, 0}))
	in.onJoints(sawyerJoints(0.01, -0.01))
	in.onPose(&in.objects[0], poseMsg("world", [3]float64{0, 0.7, 0.02}, [4]float64{1, 0, 0, 0}))
	in.onGoal(poseMsg("world", [3]float64{0, 0.8, 0.2}, [4]float64{1, 0, 0, 0}))
	in.onEstop(&std_msgs.Bool{Data: true})
	in.onImage(imageMsg("rgb8", 2, 3, 6, seqBytes(18)))
	clk.add(30 * time.Millisecond)

	// Malformed messages: counted, logged once per LogInterval per topic, value kept.
	for i := 0; i < 5; i++ {
		in.onEEPose(poseMsg("world", [3]float64{0.5, 0.5, 0.5}, [4]float64{3, 0, 0, 0}))
		in.onJoints(jointMsg([]string{"r_close"}, []float64{0}, nil))
		in.onImage(imageMsg("rgb8", 2, 3, 6, seqBytes(5)))
	}
	in.Read(st)
	if st.EEPose.Pos != [3]float64{0.1, 0.6, 0.2} || st.Joints.Position[7] != 0.01 || st.Joints.Position[8] != -0.01 {
		t.Fatalf("previous values not kept: %+v %+v", st.EEPose, st.Joints.Position)
	}
	if !st.Estop.Engaged || st.Goal.Pos[1] != 0.8 || st.Objects[0].Pos[1] != 0.7 || st.NumObjects != 1 {
		t.Fatalf("state %+v", st)
	}
	var f Frame
	if !in.ReadFrame(&f) || f.Width != 2 || len(f.Data) != 18 {
		t.Fatalf("frame %+v", f)
	}
	in.Ages(clk.now(), &ages)
	if ages.EEPose != 30*time.Millisecond || ages.Image != 30*time.Millisecond || ages.Objects[0] != 30*time.Millisecond || ages.Objects[1] != Never {
		t.Fatalf("ages %+v", ages)
	}
	for _, s := range in.Stats() {
		switch s.Topic {
		case "/arm/ee_pose", "/arm/joint_states", "/camera/image_raw":
			if s.Received != 1 || s.Malformed != 5 || s.LastError == "" {
				t.Errorf("%+v", s)
			}
		default:
			if s.Received != 1 || s.Malformed != 0 {
				t.Errorf("%+v", s)
			}
		}
	}
	if n := logs.Len(); n != 3 {
		t.Fatalf("%d log lines for 15 malformed messages on 3 topics, want 3: %v", n, logs.All())
	}
	line := logs.FilterField(zap.String("topic", "/arm/joint_states")).All()
	if len(line) != 1 || !strings.Contains(line[0].ContextMap()["error"].(string), `joint "right_j0" missing`) {
		t.Fatalf("joint states log: %+v", line)
	}
	// After LogInterval the next one is logged, reporting how many were not.
	clk.add(LogInterval)
	in.onEEPose(poseMsg("base_link", [3]float64{}, [4]float64{1, 0, 0, 0}))
	line = logs.FilterField(zap.String("topic", "/arm/ee_pose")).All()
	if len(line) != 2 || line[1].ContextMap()["not_logged_since_last"] != uint64(4) ||
		!strings.Contains(line[1].ContextMap()["error"].(string), `frame_id "base_link"`) {
		t.Fatalf("second ee_pose log: %+v", line)
	}
}

// The control thread's reads do not allocate.
func TestReadAllocs(t *testing.T) {
	in, clk, _ := testInputs(t, DefaultConfig())
	in.onEEPose(poseMsg("world", [3]float64{0.1, 0.6, 0.2}, [4]float64{1, 0, 0, 0}))
	in.onJoints(sawyerJoints(0, 0))
	in.onPose(&in.objects[0], poseMsg("world", [3]float64{0, 0.7, 0.02}, [4]float64{1, 0, 0, 0}))
	in.onGoal(poseMsg("world", [3]float64{0, 0.8, 0.2}, [4]float64{1, 0, 0, 0}))
	img := imageMsg("rgb8", 64, 64, 192, seqBytes(192*64))
	in.onImage(img)
	st := in.NewState()
	var f Frame
	var ages Ages
	b, _ := NewBuilder(DefaultConfig())
	var o Obs
	in.ReadFrame(&f) // sizes the caller's buffer once
	joints := sawyerJoints(0, 0)
	for name, fn := range map[string]func(){
		"Read":      func() { in.Read(st) },
		"ReadFrame": func() { in.ReadFrame(&f) },
		"Ages":      func() { in.Ages(clk.now(), &ages) },
		"Read+Build": func() {
			in.Read(st)
			if err := b.Build(st, &o); err != nil {
				t.Fatal(err)
			}
		},
		// Callbacks run on goroslib's goroutines; in steady state they do not allocate
		// either (goroslib allocates the message itself).
		"onImage":  func() { in.onImage(img) },
		"onJoints": func() { in.onJoints(joints) },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// Readers never see a torn value while callbacks write (run with -race).
func TestSlotsConcurrent(t *testing.T) {
	in, _, _ := testInputs(t, DefaultConfig())
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		data := make([]byte, 3*8*8)
		for i := 1; i <= n; i++ {
			for j := range data {
				data[j] = byte(i)
			}
			in.onImage(imageMsg("rgb8", 8, 8, 24, append([]byte(nil), data...)))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			v := float64(i)
			m := jointMsg(append([]string(nil), SawyerJoints...), []float64{v, v, v, v, v, v, v, v, v}, nil)
			m.Header.Seq = uint32(i)
			in.onJoints(m)
		}
	}()
	st := in.NewState()
	var f Frame
	writersDone := waitCh(&wg)
	for done := false; !done; {
		select {
		case <-writersDone:
			done = true
		default:
		}
		if in.ReadFrame(&f) {
			for _, b := range f.Data {
				if b != f.Data[0] {
					t.Fatalf("torn frame: %d and %d", f.Data[0], b)
				}
			}
		}
		in.Read(st)
		if st.Joints.Stamp.Valid() {
			for _, p := range st.Joints.Position {
				if p != float64(st.Joints.Stamp.Seq) {
					t.Fatalf("torn joints: seq %d positions %v", st.Joints.Stamp.Seq, st.Joints.Position)
				}
			}
		}
	}
	in.Read(st)
	if !in.ReadFrame(&f) || f.Data[0] != byte(n%256) || st.Joints.Position[0] != n {
		t.Fatalf("final values: frame %d joints %v", f.Data[0], st.Joints.Position[0])
	}
}

func waitCh(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

func BenchmarkRead(b *testing.B) {
	in, _, _ := testInputs(b, DefaultConfig())
	in.onJoints(sawyerJoints(0, 0))
	st := in.NewState()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		in.Read(st)
	}
}

func BenchmarkReadFrame64(b *testing.B)  { benchReadFrame(b, 64) }
func BenchmarkReadFrame480(b *testing.B) { benchReadFrame(b, 480) }

func benchReadFrame(b *testing.B, size int) {
	in, _, _ := testInputs(b, DefaultConfig())
	in.onImage(imageMsg("rgb8", uint32(size), uint32(size), uint32(3*size), seqBytes(3*size*size)))
	var f Frame
	b.SetBytes(int64(3 * size * size))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		in.ReadFrame(&f)
	}
}
