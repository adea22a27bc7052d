package episode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"robodistill/control/episode"
	"robodistill/control/episode/episodetest"
)

var storeOpts = episodetest.Options{Episodes: 4, Steps: 3, Size: 4, Seed: 7}

func newCollection(t *testing.T) (string, []episode.Entry) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "c")
	return dir, episodetest.Collection(t, dir, storeOpts)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reopen checks what a reader and then a writer make of a damaged folder: the reader sees
// every episode (rebuilding entries listed in stale from the bags), the writer repairs
// the index so that it verifies and matches the original entries.
func reopen(t *testing.T, dir string, want []episode.Entry, stale []int) {
	t.Helper()
	c, err := episode.OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Stale(), stale) {
		t.Errorf("stale %v, want %v", c.Stale(), stale)
	}
	if got := c.Entries(); !sameEntries(got, want) {
		t.Errorf("reader: entries differ")
	}
	c.Close()
	s, err := episode.OpenStore(dir, episodetest.Spec(storeOpts), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEntries(s.Entries(), want) {
		t.Errorf("writer: entries differ")
	}
	s.Close()
	c, err = episode.OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Stale()) != 0 {
		t.Errorf("after the writer repaired the index, stale %v", c.Stale())
	}
	if err := c.Verify(context.Background()); err != nil {
		t.Error(err)
	}
}

func sameEntries(a, b []episode.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].File != b[i].File || a[i].Return != b[i].Return || !slices.Equal(a[i].Frames, b[i].Frames) || a[i].Bytes != b[i].Bytes || a[i].Seed != b[i].Seed {
			return false
		}
	}
	return true
}

// The states a crash can leave, each repaired on the next open.
func TestStoreCrashStates(t *testing.T) {
	index := func(dir string) string { return filepath.Join(dir, episode.IndexFile) }
	t.Run("torn last line", func(t *testing.T) {
		dir, want := newCollection(t)
		data := readFile(t, index(dir))
		os.WriteFile(index(dir), data[:len(data)-40], 0o644)
		reopen(t, dir, want, []int{want[len(want)-1].Episode})
	})
	t.Run("renamed but not indexed", func(t *testing.T) {
		dir, want := newCollection(t)
		data := readFile(t, index(dir))
		lines := bytes.SplitAfter(data, []byte("\n"))
		os.WriteFile(index(dir), bytes.Join(lines[:len(lines)-2], nil), 0o644)
		reopen(t, dir, want, []int{want[len(want)-1].Episode})
	})
	t.Run("no index", func(t *testing.T) {
		dir, want := newCollection(t)
		os.Remove(index(dir))
		reopen(t, dir, want, []int{0, 1, 2, 3})
	})
	t.Run("damaged middle line", func(t *testing.T) {
		dir, want := newCollection(t)
		data := readFile(t, index(dir))
		i := bytes.IndexByte(data, '\n')
		data[i+5] = '#'
		os.WriteFile(index(dir), data, 0o644)
		reopen(t, dir, want, []int{want[1].Episode})
	})
	t.Run("stale temporaries", func(t *testing.T) {
		dir, want := newCollection(t)
		tmp := filepath.Join(dir, "episodes", ".episode-000009.bag.tmp")
		os.WriteFile(tmp, []byte("#ROSBAG V2.0\npartial"), 0o644)
		os.WriteFile(filepath.Join(dir, ".index.jsonl.tmp"), []byte("{"), 0o644)
		reopen(t, dir, want, nil)
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temporary file left: %v", err)
		}
	})
	t.Run("index lists a missing bag", func(t *testing.T) {
		dir, want := newCollection(t)
		os.Remove(filepath.Join(dir, want[2].File))
		if _, err := episode.OpenCollection(dir); err == nil || !strings.Contains(err.Error(), "lists episodes/episode-000002.bag, which is missing") {
			t.Fatalf("reader: %v", err)
		}
		s, err := episode.OpenStore(dir, episodetest.Spec(storeOpts), nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Has(2) || !s.Has(3) || len(s.Entries()) != 3 {
			t.Fatalf("writer: has 2 %v, %d entries", s.Has(2), len(s.Entries()))
		}
		s.Close()
		// Collecting again restores it identically.
		got := episodetest.Collection(t, dir, storeOpts)
		if !sameEntries(got, want) {
			t.Fatal("episode 2 came back different")
		}
	})
}

func TestStoreRefuses(t *testing.T) {
	dir, _ := newCollection(t)
	other := storeOpts
	other.Seed = 8
	_, err := episode.OpenStore(dir, episodetest.Spec(other), nil)
	if !errors.Is(err, episode.ErrSpecMismatch) || !strings.Contains(err.Error(), `seed is "7" there, "8" here`) {
		t.Fatalf("different seed: %v", err)
	}
	s, err := episode.OpenStore(dir, episodetest.Spec(storeOpts), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := episode.OpenStore(dir, episodetest.Spec(storeOpts), nil); err == nil || !strings.Contains(err.Error(), "another process is writing this collection") {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := s.Begin(1); err == nil || !strings.Contains(err.Error(), "already complete") {
		t.Fatalf("Begin of a complete episode: %v", err)
	}
	p, err := s.Begin(10)
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if ents, _ := os.ReadDir(filepath.Join(dir, "episodes")); len(ents) != 4 {
		t.Fatalf("after Abort the folder holds %d files", len(ents))
	}
	s.Close()

	stray := t.TempDir()
	os.WriteFile(filepath.Join(stray, "notes.txt"), []byte("x"), 0o644)
	if _, err := episode.OpenStore(stray, episodetest.Spec(storeOpts), nil); err == nil || !strings.Contains(err.Error(), "not an episode collection (no collection.json) and not empty (it holds notes.txt)") {
		t.Fatalf("stray folder: %v", err)
	}
	if _, err := episode.OpenCollection(stray); err == nil || !strings.Contains(err.Error(), "not an episode collection (no collection.json)") {
		t.Fatalf("reader of a stray folder: %v", err)
	}
	if _, err := episode.OpenCollection(filepath.Join(stray, "notes.txt")); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("reader of a file: %v", err)
	}
	if _, err := episode.OpenCollection(filepath.Join(stray, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reader of a missing folder: %v", err)
	}
}

// Verify compares every bag with the index as stored and names what differs.
func TestVerifyDetects(t *testing.T) {
	dir, want := newCollection(t)
	idx := filepath.Join(dir, episode.IndexFile)
	data := readFile(t, idx)
	os.WriteFile(idx, bytes.Replace(data, []byte(`"return":1.5`), []byte(`"return":2.5`), 1), 0o644)
	c, err := episode.OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Verify(context.Background())
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "episodes/episode-000000.bag: return 2.5 in the index, 1.5 in the bag") {
		t.Fatalf("changed return: %v", err)
	}
	// A bag swapped for another episode's (same size) is caught by its frames.
	os.WriteFile(idx, data, 0o644)
	b1 := readFile(t, filepath.Join(dir, want[1].File))
	os.WriteFile(filepath.Join(dir, want[0].File), b1, 0o644)
	c, err = episode.OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Verify(context.Background()); err == nil || !strings.Contains(err.Error(), "episode-000000.bag: its metadata says episode 1") {
		t.Fatalf("swapped bag: %v", err)
	}
	// Fetching a frame whose bag changed under the index is refused rather than wrong.
	if _, err := c.Frame(want[0].Frames[1].Hash); err == nil || !strings.Contains(err.Error(), "the index is out of date") {
		t.Fatalf("frame from a swapped bag: %v", err)
	}
}
