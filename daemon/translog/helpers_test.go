package translog

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
	rosbag "github.com/foxglove/go-rosbag"

	"robodistill/control/episode"
)

// t0 is the first transition's time in the tests: a whole second, far from 1970.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const period = 20 * time.Millisecond // 50 Hz

// frameOf fills a w×h rgb8 frame that differs for every i.
func frameOf(i, w, h int) []byte {
	b := make([]byte, 3*w*h)
	for p := range b {
		b[p] = byte(i*7 + p*13 + (p/(3*w))*5)
	}
	return b
}

// source builds test transitions; it reuses its buffers like a control loop would.
type source struct {
	w, h   int
	frames [][]byte // cycled through
	tr     Transition
}

func newSource(w, h int) *source {
	s := &source{w: w, h: h}
	for i := range 8 {
		s.frames = append(s.frames, frameOf(i, w, h))
	}
	s.tr.Joints = Joints{Name: []string{"j1", "j2", "j3"}, Position: make([]float64, 3), Velocity: make([]float64, 3)}
	s.tr.Objects = []Object{{Name: "object"}, {Name: "object2"}}
	return s
}

// at fills the transition of cycle i (its values are derived from i, so that a reader
// can check them) and returns it.
func (s *source) at(i int) *Transition {
	t := &s.tr
	f := float64(i)
	t.Time = t0.Add(time.Duration(i) * period)
	t.Sent = t.Time.Add(3 * time.Millisecond)
	t.Image = Image{Stamp: t.Time.Add(-5 * time.Millisecond), FrameID: "camera", Width: s.w, Height: s.h, Encoding: "rgb8", Data: s.frames[i%len(s.frames)]}
	t.Hand = Pose{Valid: true, Stamp: t.Time.Add(-time.Millisecond), FrameID: "world", Pos: [3]float64{f, 0.1, 0.2}, Quat: [4]float64{1, 0, 0, 0}}
	for j := range t.Joints.Position {
		t.Joints.Position[j] = f + float64(j)/10
		t.Joints.Velocity[j] = -f
	}
	t.Joints.Stamp = t.Hand.Stamp
	t.Objects[0].Pose = Pose{Valid: true, Stamp: t.Hand.Stamp, Pos: [3]float64{0.5, f / 100, 0}, Quat: [4]float64{1, 0, 0, 0}}
	t.Objects[1].Pose = Pose{Valid: true, Stamp: t.Hand.Stamp, Pos: [3]float64{-0.5, f / 100, 0}, Quat: [4]float64{0, 1, 0, 0}}
	t.Goal = Pose{Valid: true, Stamp: t.Hand.Stamp, Pos: [3]float64{0.1, 0.7, 0.1}, Quat: [4]float64{1, 0, 0, 0}}
	t.Command = Command{Valid: true, Stamp: t.Time, Vel: [3]float64{0.01 * float64(i%50), -0.2, 0.3}, Grip: float64(i%3) - 1}
	t.Policy, t.PolicyValid = [4]float64{0.5, -0.5, f / 1000, 1}, true
	t.Reward, t.RewardValid = float32(i)/4, i%10 != 9
	t.Safety = Safety{Level: SafetyLevel(i % 3), Reason: "speed", Estop: i%3 == 2}
	return t
}

// testConfig is a configuration for a fresh folder under the test's temporary folder.
func testConfig(t testing.TB) Config {
	return Config{Dir: filepath.Join(t.TempDir(), "log"), Slots: 512, Namespace: "/robot"}
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// bags lists the finished bags of a log folder in sequence order.
func bags(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, namePrefix+"*"+bagSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// readEpisode opens a bag with control/episode and returns its one episode.
func readEpisode(t testing.TB, path string) (*episode.Bag, *episode.Episode) {
	t.Helper()
	b, err := episode.OpenBag(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	eps, err := b.Episodes(episode.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 {
		t.Fatalf("%s holds %d episodes, want 1", path, len(eps))
	}
	return b, eps[0]
}

// rawMessages reads every message of a bag on topic through go-rosbag's indexed reader
// (which checks the index section), decoding each into a new T.
func rawMessages[T any](t testing.TB, path, topic string) []*T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rosbag.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	it, err := r.Messages()
	if err != nil {
		t.Fatal(err)
	}
	var out []*T
	for it.More() {
		c, m, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Topic != topic {
			continue
		}
		v := new(T)
		if err := decodeROS(m.Data, v); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		out = append(out, v)
	}
	return out
}

// decodeROS decodes a message's serialized bytes with goroslib.
func decodeROS(data []byte, dst any) error {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
	return protocommon.MessageDecode(strings.NewReader(string(append(b, data...))), dst)
}

// waitFor polls ok for up to limit.
func waitFor(t testing.TB, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
