package translog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"go.uber.org/zap/zaptest"

	"robodistill/control/episode"
)

// crashImages runs a log and copies its unfinished bag twice while it runs: after steps
// transitions and after more more. A copy of the file is what kill -9 would leave (the
// page cache survives the process).
func crashImages(t *testing.T, steps, more int) (first, second []byte) {
	t.Helper()
	cfg := testConfig(t)
	cfg.FlushEvery = 20 * time.Millisecond
	l, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog(t, l)
	src := newSource(32, 32)
	copyActive := func(n int) []byte {
		for i := int(l.Stats().Recorded); i < n; i++ {
			l.Record(src.at(i))
		}
		waitFor(t, "the flush", 10*time.Second, func() bool { return l.Stats().Written == uint64(n) })
		active, _ := filepath.Glob(filepath.Join(cfg.Dir, "*"+activeSuffix))
		if len(active) != 1 {
			t.Fatalf("active bags %v", active)
		}
		b, err := os.ReadFile(active[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first = copyActive(steps)
	second = copyActive(steps + more)
	if !bytes.HasPrefix(second, first) {
		t.Fatal("the bag was rewritten, not appended to")
	}
	return first, second
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "crashed.bag")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Recover keeps every complete chunk of an unfinished bag, cuts a torn one, and writes
// the index: the bag then opens indexed, with control/episode, go-rosbag and Debian's
// rosbag.
func TestRecover(t *testing.T) {
	first, second := crashImages(t, 40, 10)
	cases := []struct {
		name      string
		data      []byte
		steps     int
		truncated int64
	}{
		{"cut at a chunk's end", first, 40, 0},
		{"torn chunk", second[:len(first)+(len(second)-len(first))/2], 40, int64(len(second)-len(first)) / 2},
		{"torn index data", second[:len(second)-5], 50, -1}, // the chunk's index data is cut and rewritten
		{"complete", second, 50, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.data)
			if c.truncated > 0 {
				// control/episode reads an unfinished bag, but not a torn one.
				if _, err := episode.OpenBag(path); !errors.Is(err, episode.ErrTruncated) {
					t.Fatalf("episode.OpenBag of a torn bag: %v", err)
				}
			}
			res, err := Recover(path)
			if err != nil {
				t.Fatal(err)
			}
			if res.Indexed || (c.truncated >= 0 && res.Truncated != c.truncated) || (c.truncated < 0 && res.Truncated <= 0) || res.Chunks == 0 {
				t.Fatalf("result %+v", res)
			}
			b, ep := readEpisode(t, path)
			if !b.Indexed() || ep.Len() != c.steps || b.MessageCount() != res.Messages {
				t.Fatalf("recovered: indexed %v, %d steps (want %d), %d messages (Recover says %d)", b.Indexed(), ep.Len(), c.steps, b.MessageCount(), res.Messages)
			}
			check := newSource(32, 32)
			for k := range ep.Len() {
				s, err := ep.Step(k)
				if err != nil {
					t.Fatal(err)
				}
				if tr := check.at(k); !bytes.Equal(s.Frame.Data, tr.Image.Data) || s.Command == nil || s.Command.Vel != tr.Command.Vel {
					t.Fatalf("step %d differs", k)
				}
			}
			tp := newTopicNames("/robot")
			if n := len(rawMessages[std_msgs.Float32](t, path, tp.Reward)); n != c.steps {
				t.Fatalf("go-rosbag's indexed reader finds %d rewards", n)
			}
			if _, err := lookRosbag(); err == nil {
				rosbagInfo(t, path, map[string]int{tp.Image: c.steps, tp.Safety: c.steps})
			}
			// Recovering again changes nothing.
			before, _ := os.ReadFile(path)
			if res, err := Recover(path); err != nil || !res.Indexed {
				t.Fatalf("second Recover: %+v, %v", res, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("a second Recover changed the bag")
			}
		})
	}
	if _, err := Recover(writeFile(t, []byte("#ROSRECORD V1.2\n..."))); !errors.Is(err, ErrNotBag) {
		t.Fatalf("not a bag: %v", err)
	}
	// Killed before the first flush: only the header; the folder's recovery removes it.
	if res, err := Recover(writeFile(t, first[:len(bagMagic)+bagHeaderLen+100])); err != nil || res.Messages != 0 || res.Truncated != 100 {
		t.Fatalf("header only: %+v, %v", res, err)
	}
}

// New recovers what a crash left in its folder, removes empty leftovers and continues
// the sequence numbers.
func TestNewRecovers(t *testing.T) {
	first, second := crashImages(t, 30, 20)
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	torn := second[:len(second)-(len(second)-len(first))/3]
	for name, data := range map[string][]byte{
		"robot-000006-20250301T120000Z.bag.active": first[:len(bagMagic)+bagHeaderLen], // nothing flushed
		"robot-000007-20250301T120000Z.bag.active": torn,
	} {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Record(newSource(8, 8).at(0))
	closeLog(t, l)
	files := bags(t, cfg.Dir)
	if len(files) != 2 || filepath.Base(files[0]) != "robot-000007-20250301T120000Z.bag" || filepath.Base(files[1])[:13] != "robot-000008-" {
		t.Fatalf("bags %v", files)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Dir, "*"+activeSuffix)); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
	if _, ep := readEpisode(t, files[0]); ep.Len() != 30 {
		t.Fatalf("recovered %d steps, want 30", ep.Len())
	}
}

// FuzzRecover: Recover never panics on damaged bags, and what it rebuilds opens indexed
// with control/episode, with the messages it counted.
func FuzzRecover(f *testing.F) {
	seed := fuzzSeedBag(f)
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(seed[:len(seed)/2])
	f.Add(seed[:len(bagMagic)+bagHeaderLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.bag")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Recover(path)
		if err != nil || res.Indexed {
			return
		}
		b, err := episode.OpenBag(path)
		if err != nil {
			t.Fatalf("Recover succeeded (%+v) but control/episode cannot read the bag: %v", res, err)
		}
		defer b.Close()
		if !b.Indexed() || b.MessageCount() != res.Messages {
			t.Fatalf("indexed %v, %d messages, Recover says %+v", b.Indexed(), b.MessageCount(), res)
		}
		if res, err := Recover(path); err != nil || !res.Indexed {
			t.Fatalf("second Recover: %+v, %v", res, err)
		}
	})
}

// fuzzSeedBag writes a small unfinished bag of three chunks and returns its bytes.
func fuzzSeedBag(tb testing.TB) []byte {
	w := bareWriter(tb, Config{Dir: tb.TempDir()})
	src := newSource(2, 2)
	for i := range 6 {
		var s slot
		s.copyFrom(src.at(i))
		w.step(&s)
		if i%2 == 1 {
			w.flush()
		}
	}
	path := w.bag.path
	w.bag.close()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if w.bag.flushes != 3 {
		tb.Fatalf("%d chunks", w.bag.flushes)
	}
	return data
}
