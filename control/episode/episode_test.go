package episode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rosbag "github.com/foxglove/go-rosbag"

	"robodistill/control/episode"
	"robodistill/control/episode/episodetest"
	"robodistill/control/rosiface"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// writeBag writes episode n of o into a file and returns its path.
func writeBag(t testing.TB, o episodetest.Options, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ep.bag")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := episode.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := episodetest.WriteEpisode(w, o, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func openEpisodes(t testing.TB, path string, opt episode.ReadOptions) []*episode.Episode {
	t.Helper()
	b, err := episode.OpenBag(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	eps, err := b.Episodes(opt)
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// checkStep compares a read step with what episodetest wrote.
func checkStep(t *testing.T, o episodetest.Options, n int, s *episode.Step, withObs, withStatus bool) {
	t.Helper()
	v := episodetest.StepValues(o, n, s.Index)
	k := s.Index
	if s.Frame.Width != o.Size || s.Frame.Height != o.Size || s.Frame.Encoding != "rgb8" || !bytes.Equal(s.Frame.Data, v.RGB) {
		t.Fatalf("step %d: frame %dx%d %s differs", k, s.Frame.Width, s.Frame.Height, s.Frame.Encoding)
	}
	if s.Hash != episode.RGBFrameHash(o.Size, o.Size, v.RGB) {
		t.Fatalf("step %d: hash %s", k, s.Hash)
	}
	if s.Hand == nil || s.Hand.Pos != v.Hand || s.Hand.Quat != v.HandQuat {
		t.Fatalf("step %d: hand %+v, want %v %v", k, s.Hand, v.Hand, v.HandQuat)
	}
	if s.Joints == nil || strings.Join(s.Joints.Name, ",") != strings.Join(episodetest.Joints, ",") ||
		!equal(s.Joints.Position, v.JointPos) || !equal(s.Joints.Velocity, v.JointVel) {
		t.Fatalf("step %d: joints %+v", k, s.Joints)
	}
	if len(s.Objects) != 2 || s.Objects[0].Name != "object" || s.Objects[0].Pos != v.Object ||
		s.Objects[1].Name != "object2" || s.Objects[1].Pos != v.Object2 || s.Objects[0].Quat != [4]float64{1, 0, 0, 0} {
		t.Fatalf("step %d: objects %+v", k, s.Objects)
	}
	if s.Goal == nil || *s.Goal != v.Goal {
		t.Fatalf("step %d: goal %v", k, s.Goal)
	}
	if withObs != (s.Obs != nil) || (withObs && !equal(s.Obs, v.Obs)) {
		t.Fatalf("step %d: obs %v", k, s.Obs)
	}
	if withStatus != (s.Status != nil) || (withStatus && *s.Status != v.Status) {
		t.Fatalf("step %d: status %+v, want %+v", k, s.Status, v.Status)
	}
	if s.CameraInfo == nil || s.CameraInfo.Width != uint32(o.Size) || s.CameraInfo.Header.FrameId != "corner" {
		t.Fatalf("step %d: camera info %+v", k, s.CameraInfo)
	}
	want := episodetest.Start(n).Add(episodetest.Period * time.Duration(k))
	if d := s.Time.Sub(want); d < 0 || d > 2*time.Millisecond || !s.Stamp.Equal(want) {
		t.Fatalf("step %d: time %v stamp %v, want %v", k, s.Time, s.Stamp, want)
	}
	if k == o.Steps-1 {
		if s.Command != nil {
			t.Fatalf("last step has a command %+v", s.Command)
		}
		return
	}
	if s.Command == nil || !s.Command.HasVel || !s.Command.HasGrip {
		t.Fatalf("step %d: command %+v", k, s.Command)
	}
	for i, a := range v.Action {
		want := math.Max(-1, math.Min(1, a))
		if math.Abs(s.Command.Action[i]-want) > 1e-12 {
			t.Fatalf("step %d: action %v, want %v", k, s.Command.Action, v.Action)
		}
	}
	if s.Command.Grip != v.Action[3] || s.Command.Vel[2] != 0.5*episodetest.ActionScale*episodetest.Rate {
		t.Fatalf("step %d: command %+v", k, s.Command)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Every recorded field survives a write and a read.
func TestRoundTrip(t *testing.T) {
	o := episodetest.Options{Steps: 6, Size: 8, Seed: 40}
	eps := openEpisodes(t, writeBag(t, o, 2), episode.ReadOptions{})
	if len(eps) != 1 {
		t.Fatalf("%d episodes", len(eps))
	}
	e := eps[0]
	want := episodetest.Meta(o, 2)
	want.Format, want.Version = episode.Format, episode.Version
	if e.Meta == nil || *e.Meta != want {
		t.Fatalf("meta %+v, want %+v", e.Meta, want)
	}
	if e.Number != 2 || e.Len() != o.Steps || e.Topics.Namespace != "/" {
		t.Fatalf("episode %d, %d steps, namespace %q", e.Number, e.Len(), e.Topics.Namespace)
	}
	n := 0
	for s, err := range e.Steps() {
		if err != nil {
			t.Fatal(err)
		}
		if s.Episode != 2 || s.Index != n {
			t.Fatalf("step %d of episode %d, want %d", s.Index, s.Episode, n)
		}
		checkStep(t, o, 2, s, true, true)
		n++
	}
	if n != o.Steps {
		t.Fatalf("%d steps", n)
	}
	en, err := episode.Summarize(e)
	if err != nil {
		t.Fatal(err)
	}
	// Rewards 0.5k for k = 1..5; success from step 4 on.
	if en.Seed != 42 || en.Steps != 6 || en.Return != 7.5 || !en.Success || en.FirstSuccess != 4 || len(en.Frames) != 6 {
		t.Fatalf("entry %+v", en)
	}
}

// A bag as `rosbag record` captures it from the sim bridge: no metadata or observation,
// state messages arriving just after their image, commands after that; under a namespace.
func TestBridgeBag(t *testing.T) {
	o := episodetest.Options{Steps: 5, Size: 4, Seed: 3, Bridge: true, Namespace: "robot1"}
	eps := openEpisodes(t, writeBag(t, o, 0), episode.ReadOptions{})
	if len(eps) != 1 || eps[0].Meta != nil || eps[0].Len() != 5 || eps[0].Topics.Namespace != "/robot1" {
		t.Fatalf("%d episodes, %+v", len(eps), eps[0])
	}
	for s, err := range eps[0].Steps() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, 0, s, false, true)
	}
}

// Images delivered after their state messages (a loaded recorder) still join the right
// state: stamped messages by header stamp, the status by bag-time proximity.
func TestBridgeBagImageLate(t *testing.T) {
	o := episodetest.Options{Steps: 6, Size: 4, Bridge: true, ImageLate: true}
	eps := openEpisodes(t, writeBag(t, o, 0), episode.ReadOptions{})
	for s, err := range eps[0].Steps() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, 0, s, false, true)
	}
}

// Without the status topic too (a robot's log), steps still assemble.
func TestBagWithoutStatus(t *testing.T) {
	o := episodetest.Options{Steps: 3, Size: 4, Bridge: true, NoStatus: true}
	eps := openEpisodes(t, writeBag(t, o, 1), episode.ReadOptions{})
	for s, err := range eps[0].Steps() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, 1, s, false, false)
	}
	en, err := episode.Summarize(eps[0])
	if err != nil || en.Success || en.FirstSuccess != -1 || en.Return != 0 {
		t.Fatalf("entry %+v %v", en, err)
	}
}

// One bag holding several episodes (the bridge was reset in between) splits where the
// episode status shows the reset.
func TestBagSplitsAtReset(t *testing.T) {
	o := episodetest.Options{Steps: 4, Size: 4, Bridge: true}
	path := filepath.Join(t.TempDir(), "two.bag")
	f, _ := os.Create(path)
	w, _ := episode.NewWriter(f)
	for n := 0; n < 3; n++ {
		if err := episodetest.WriteEpisode(w, o, n); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	f.Close()
	eps := openEpisodes(t, path, episode.ReadOptions{})
	if len(eps) != 3 {
		t.Fatalf("%d episodes, want 3", len(eps))
	}
	for n, e := range eps {
		if e.Len() != 4 {
			t.Fatalf("episode %d has %d steps", n, e.Len())
		}
		for s, err := range e.Steps() {
			if err != nil {
				t.Fatal(err)
			}
			checkStep(t, o, n, s, false, true)
		}
	}
}

// The frame hash is pinned: labels name frames by it.
func TestFrameHash(t *testing.T) {
	f := episode.Frame{Width: 2, Height: 1, Encoding: "rgb8", Data: []byte{1, 2, 3, 4, 5, 6}}
	got := f.Hash().String()
	golden := filepath.Join("testdata", "framehash.golden")
	if *update {
		os.WriteFile(golden, []byte(got+"\n"), 0o644)
	}
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(g)) {
		t.Fatalf("hash of a 2x1 rgb8 frame is %s, golden %s (the hash definition changed: every label would break)", got, g)
	}
	if h, err := episode.ParseHash(got); err != nil || h != f.Hash() {
		t.Fatalf("ParseHash: %v", err)
	}
	// Encoding and geometry are part of the hash.
	for _, g := range []episode.Frame{
		{Width: 2, Height: 1, Encoding: "bgr8", Data: f.Data},
		{Width: 1, Height: 2, Encoding: "rgb8", Data: f.Data},
	} {
		if g.Hash() == f.Hash() {
			t.Errorf("%+v hashes like %+v", g, f)
		}
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("g", 64)} {
		if _, err := episode.ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

// A written bag's bytes are pinned: the format does not change by accident.
func TestGoldenBag(t *testing.T) {
	o := episodetest.Options{Steps: 3, Size: 2, Seed: 1}
	got, err := os.ReadFile(writeBag(t, o, 0))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "episode.bag.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the written bag (%d bytes) differs from %s (%d bytes); if the format changed on purpose, bump episode.Version and run go test -update", len(got), golden, len(want))
	}
	// And the golden file still reads.
	eps := openEpisodes(t, golden, episode.ReadOptions{})
	for s, err := range eps[0].Steps() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, 0, s, true, true)
	}
}

// Bags written with lz4 or bz2 chunks (rosbag record --lz4 / -j) read the same.
func TestCompressedChunks(t *testing.T) {
	o := episodetest.Options{Steps: 4, Size: 8, Bridge: true}
	plain, err := os.ReadFile(writeBag(t, o, 0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lz4.bag")
	recompress(t, plain, path)
	eps := openEpisodes(t, path, episode.ReadOptions{})
	for s, err := range eps[0].Steps() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, 0, s, false, true)
	}
	// Frames located in compressed chunks are fetched through their references.
	en, err := episode.Summarize(eps[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, ref := range en.Frames {
		if ref.Chunk == 0 {
			t.Fatalf("frame %d is not in a compressed chunk: %+v", k, ref)
		}
		f, err := eps[0].Bag().FrameAt(ref)
		if err != nil || f.Hash() != ref.Hash {
			t.Fatalf("frame %d: %v", k, err)
		}
	}
}

// recompress copies a bag's messages into an lz4-compressed bag with small chunks.
func recompress(t testing.TB, plain []byte, path string) {
	t.Helper()
	r, err := rosbag.NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	it, err := r.Messages(rosbag.ScanLinear(true))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(path)
	defer f.Close()
	w, err := rosbag.NewWriter(f, rosbag.WithCompression(rosbag.CompressionLZ4), rosbag.WithChunksize(200))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for it.More() {
		c, m, err := it.Next()
		if err != nil {
			break
		}
		if !seen[c.Conn] {
			seen[c.Conn] = true
			if err := w.WriteConnection(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTopics(t *testing.T) {
	o := episodetest.Options{Steps: 3, Size: 2}
	b, err := episode.OpenBag(writeBag(t, o, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, _ := json.Marshal(b.Topics())
	for _, want := range []string{`{"topic":"/camera/image_raw","type":"sensor_msgs/Image","count":3}`, `{"topic":"/robodistill/episode","type":"std_msgs/String","count":1}`, `{"topic":"/arm/cmd_vel","type":"geometry_msgs/TwistStamped","count":2}`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("topics %s lack %s", got, want)
		}
	}
	if !b.Indexed() || b.MessageCount() != 1+3*9+2*2 {
		t.Fatalf("indexed %v, %d messages", b.Indexed(), b.MessageCount())
	}
}

// Damaged files give errors that say what is wrong, and never a panic.
func TestBadBags(t *testing.T) {
	o := episodetest.Options{Steps: 3, Size: 4}
	good, err := os.ReadFile(writeBag(t, o, 0))
	if err != nil {
		t.Fatal(err)
	}
	read := func(data []byte) error {
		b, err := episode.ReadBag("x.bag", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return err
		}
		eps, err := b.Episodes(episode.ReadOptions{})
		if err != nil {
			return err
		}
		for _, e := range eps {
			if _, err := episode.Summarize(e); err != nil {
				return err
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name string
		data []byte
		is   error
		msg  string
	}{
		{"empty", nil, episode.ErrNotBag, "shorter than the magic"},
		{"text", []byte("hello, this is not a bag at all\n"), episode.ErrNotBag, `file starts with "hello, this `},
		{"ros1 v1.2", []byte("#ROSRECORD V1.2\n..........."), episode.ErrNotBag, "ROSRECORD"},
		{"magic only", good[:13], episode.ErrTruncated, "no bag header"},
		{"cut in the header", good[:100], episode.ErrTruncated, "at byte 13"},
		{"cut in a chunk", good[:6000], episode.ErrTruncated, "index starts at byte"},
		{"bad header length", append(append([]byte{}, good[:13]...), 0xff, 0xff, 0xff, 0x7f), episode.ErrCorrupt, "claims a 2147483647-byte header"},
	} {
		err := read(tc.data)
		if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "x.bag") {
			t.Errorf("%s: %v; want %v naming the file and %q", tc.name, err, tc.is, tc.msg)
		}
	}
	// Every truncation fails cleanly, and is reported as one.
	for n := 13; n < len(good); n += 97 {
		if err := read(good[:n]); err == nil || !errors.Is(err, episode.ErrTruncated) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	// Every single-byte corruption either reads or fails with an error.
	for i := 13; i < len(good); i += 7 {
		d := bytes.Clone(good)
		d[i] ^= 0x5a
		_ = read(d)
	}
}

func TestWrongTopics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.bag")
	f, _ := os.Create(path)
	w, _ := episode.NewWriter(f)
	tp := rosiface.DefaultTopics("")
	at := episodetest.Start(0)
	if err := w.Write(tp.Image, at, rosiface.Image(rosiface.Header(0, at, ""), make([]byte, 12), 2, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tp.EEPose, at, rosiface.Float64(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tp.Image, at, rosiface.Float64(1)); err == nil || !strings.Contains(err.Error(), "sensor_msgs/Image") {
		t.Fatalf("a second type on a topic: %v", err)
	}
	w.Close()
	f.Close()
	b, err := episode.OpenBag(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Episodes(episode.ReadOptions{}); err == nil || !strings.Contains(err.Error(), "topic /arm/ee_pose has type std_msgs/Float64, want geometry_msgs/PoseStamped") {
		t.Fatalf("wrong type: %v", err)
	}

	// No camera at all: the error lists what the bag has.
	path2 := filepath.Join(dir, "y.bag")
	f, _ = os.Create(path2)
	w, _ = episode.NewWriter(f)
	w.Write(tp.Gripper, at, rosiface.Float64(1))
	w.Close()
	f.Close()
	b2, err := episode.OpenBag(path2)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.Episodes(episode.ReadOptions{}); err == nil || !strings.Contains(err.Error(), "no camera images") || !strings.Contains(err.Error(), "/gripper/command (std_msgs/Float64)") {
		t.Fatalf("no camera: %v", err)
	}
	if _, err := episode.OpenBag(filepath.Join(dir, "missing.bag")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCollectionFrames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	o := episodetest.Options{Episodes: 3, Steps: 4, Size: 6, Seed: 9}
	entries := episodetest.Collection(t, dir, o)
	c, err := episode.OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Entries()) != 3 || len(c.Stale()) != 0 {
		t.Fatalf("%d entries, stale %v", len(c.Entries()), c.Stale())
	}
	for n := 0; n < 3; n++ {
		for k := 0; k < 4; k++ {
			v := episodetest.StepValues(o, n, k)
			h := episode.RGBFrameHash(o.Size, o.Size, v.RGB)
			if entries[n].Frames[k].Hash != h {
				t.Fatalf("entry %d frame %d hash", n, k)
			}
			locs := c.Locate(h)
			if len(locs) != 1 || locs[0] != (episode.FrameLoc{Episode: n, Step: k}) {
				t.Fatalf("Locate %d/%d: %v", n, k, locs)
			}
			f, err := c.Frame(h)
			if err != nil || !bytes.Equal(f.Data, v.RGB) {
				t.Fatalf("Frame %d/%d: %v", n, k, err)
			}
		}
	}
	if _, err := c.Frame(episode.Hash{1}); !errors.Is(err, episode.ErrUnknownFrame) {
		t.Fatalf("unknown hash: %v", err)
	}
	steps := 0
	for s, err := range c.All() {
		if err != nil {
			t.Fatal(err)
		}
		checkStep(t, o, s.Episode, s, true, true)
		steps++
	}
	if steps != 12 {
		t.Fatalf("All gave %d steps", steps)
	}
	if err := c.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkFrameByHash(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "c")
	o := episodetest.Options{Episodes: 4, Steps: 50, Size: 64}
	entries := episodetest.Collection(b, dir, o)
	c, err := episode.OpenCollection(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := entries[i%len(entries)]
		if _, err := c.Frame(e.Frames[i%len(e.Frames)].Hash); err != nil {
			b.Fatal(err)
		}
	}
}
