package episode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"go.uber.org/zap"
)

// Collection reads a collection folder written by Store. It is safe for concurrent use.
type Collection struct {
	dir     string
	spec    Spec
	entries []Entry
	byEp    map[int]int           // episode number -> entries index
	byHash  map[Hash][]FrameLoc   // frame hash -> where it occurs
	stale   []int                 // episodes whose entries were rebuilt from their bags
	mu      sync.Mutex            // guards files
	files   map[string]*frameFile // open bags for Frame
}

// FrameLoc is a step of a collection.
type FrameLoc struct {
	Episode int `json:"episode"`
	Step    int `json:"step"`
}

type frameFile struct {
	f   *os.File
	bag *Bag // unscanned: used for record framing and chunk decompression only
}

// OpenCollection opens the collection folder dir. It reads the index; an episode whose
// bag has no usable index line (a torn or damaged line, a missing index) is indexed from
// its bag in memory (see Stale), and an index line whose bag is missing is an error.
func OpenCollection(dir string) (*Collection, error) {
	fail := func(err error) (*Collection, error) {
		return nil, fmt.Errorf("episode.OpenCollection %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fail(err)
	}
	if !st.IsDir() {
		return fail(fmt.Errorf("not a folder (an episode collection is a folder with %s)", SpecFile))
	}
	data, err := os.ReadFile(filepath.Join(dir, SpecFile))
	if errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("not an episode collection (no %s)", SpecFile))
	}
	if err != nil {
		return fail(err)
	}
	c := &Collection{dir: dir, byEp: map[int]int{}, byHash: map[Hash][]FrameLoc{}, files: map[string]*frameFile{}}
	if err := json.Unmarshal(data, &c.spec); err != nil {
		return fail(fmt.Errorf("%s: %w", SpecFile, err))
	}
	if c.spec.Format != Format {
		return fail(fmt.Errorf("%s names format %q, want %q", SpecFile, c.spec.Format, Format))
	}
	if c.spec.Version < 1 || c.spec.Version > Version {
		return fail(fmt.Errorf("%s is format version %d; this reader knows 1..%d", SpecFile, c.spec.Version, Version))
	}
	indexed, err := readIndexFile(dir)
	if err != nil {
		return fail(err)
	}
	entries, _, err := loadIndex(dir, false, zap.NewNop())
	if err != nil {
		return fail(err)
	}
	c.entries = entries
	for i, e := range entries {
		c.byEp[e.Episode] = i
		if old, ok := indexed[e.File]; !ok || compareEntries(old, e) != nil {
			c.stale = append(c.stale, e.Episode)
		}
		for s, f := range e.Frames {
			c.byHash[f.Hash] = append(c.byHash[f.Hash], FrameLoc{Episode: e.Episode, Step: s})
		}
	}
	return c, nil
}

// readIndexFile returns the intact lines of the index by file.
func readIndexFile(dir string) (map[string]Entry, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lines, _, _ := indexLines(data)
	out := map[string]Entry{}
	for _, e := range lines {
		out[e.File] = e
	}
	return out, nil
}

// Close closes the bags opened for Frame.
func (c *Collection) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, f := range c.files {
		errs = append(errs, f.f.Close())
		delete(c.files, k)
	}
	return errors.Join(errs...)
}

// Dir is the collection folder.
func (c *Collection) Dir() string { return c.dir }

// Spec is the collection's identity (collection.json).
func (c *Collection) Spec() Spec { return c.spec }

// Entries lists the completed episodes in episode order.
func (c *Collection) Entries() []Entry { return c.entries }

// Stale lists the episodes whose index lines were missing or out of date and were
// rebuilt from their bags on open (`robodistill collect` rewrites the index).
func (c *Collection) Stale() []int { return c.stale }

// Entry returns episode n's index entry.
func (c *Collection) Entry(n int) (Entry, bool) {
	i, ok := c.byEp[n]
	if !ok {
		return Entry{}, false
	}
	return c.entries[i], true
}

// Episode opens episode n's bag; close it with Episode.Close.
func (c *Collection) Episode(n int) (*Episode, error) {
	e, ok := c.Entry(n)
	if !ok {
		return nil, fmt.Errorf("episode.Collection %s: no episode %d", c.dir, n)
	}
	b, err := OpenBag(filepath.Join(c.dir, e.File))
	if err != nil {
		return nil, err
	}
	eps, err := b.Episodes(ReadOptions{})
	if err != nil {
		b.Close()
		return nil, err
	}
	if len(eps) != 1 || eps[0].Len() != e.Steps {
		b.Close()
		return nil, fmt.Errorf("episode.Collection %s: %s no longer matches its index entry (%d steps): run `robodistill collect verify`", c.dir, e.File, e.Steps)
	}
	ep := eps[0]
	ep.Number, ep.owned = n, true
	return ep, nil
}

// All iterates over every step of every episode, in order.
func (c *Collection) All() iter.Seq2[*Step, error] {
	return func(yield func(*Step, error) bool) {
		for _, e := range c.entries {
			ep, err := c.Episode(e.Episode)
			if err != nil {
				yield(nil, err)
				return
			}
			for s, err := range ep.Steps() {
				if !yield(s, err) || err != nil {
					ep.Close()
					return
				}
			}
			ep.Close()
		}
	}
}

// Locate returns every step whose frame has hash h (identical frames share a hash).
func (c *Collection) Locate(h Hash) []FrameLoc { return c.byHash[h] }

// ErrUnknownFrame reports a hash that no frame of the collection has.
var ErrUnknownFrame = errors.New("no frame with this hash")

// Frame fetches the frame with hash h straight from its bag through the index, and checks
// its hash.
func (c *Collection) Frame(h Hash) (Frame, error) {
	locs := c.byHash[h]
	if len(locs) == 0 {
		return Frame{}, fmt.Errorf("episode.Collection %s: frame %s: %w", c.dir, h, ErrUnknownFrame)
	}
	loc := locs[0]
	e := c.entries[c.byEp[loc.Episode]]
	ref := e.Frames[loc.Step]
	f, err := c.readFrame(e.File, ref)
	if err != nil {
		return Frame{}, fmt.Errorf("episode.Collection %s: frame %s (episode %d step %d): %w", c.dir, h, loc.Episode, loc.Step, err)
	}
	if got := f.Hash(); got != h {
		return Frame{}, fmt.Errorf("episode.Collection %s: frame at episode %d step %d has hash %s, the index says %s: the index is out of date (run `robodistill collect verify`)", c.dir, loc.Episode, loc.Step, got, h)
	}
	return f, nil
}

func (c *Collection) readFrame(file string, ref FrameRef) (Frame, error) {
	c.mu.Lock()
	ff, ok := c.files[file]
	if !ok {
		f, err := os.Open(filepath.Join(c.dir, file))
		if err != nil {
			c.mu.Unlock()
			return Frame{}, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			c.mu.Unlock()
			return Frame{}, err
		}
		ff = &frameFile{f: f, bag: &Bag{name: file, r: f, size: st.Size(), cachePos: -1}}
		c.files[file] = ff
	}
	c.mu.Unlock()
	return ff.bag.FrameAt(ref)
}

// FrameAt decodes the image message that ref (from an index entry or Summarize) locates,
// without scanning the bag. It does not check ref.Hash; Collection.Frame does.
func (b *Bag) FrameAt(ref FrameRef) (Frame, error) {
	var data []byte
	if ref.Chunk == 0 {
		rec, err := b.recordAt(ref.Rec)
		if err != nil {
			return Frame{}, err
		}
		if rec.header.op != opMessage {
			return Frame{}, fmt.Errorf("%w: no message record at byte %d", ErrCorrupt, ref.Rec)
		}
		data = make([]byte, rec.dataLen)
		if _, err := b.r.ReadAt(data, rec.dataOff); err != nil {
			return Frame{}, err
		}
	} else {
		chunk, err := b.chunkData(ref.Chunk)
		if err != nil {
			return Frame{}, err
		}
		if ref.Rec < 0 || ref.Rec >= int64(len(chunk)) {
			return Frame{}, fmt.Errorf("%w: record offset %d outside the chunk", ErrCorrupt, ref.Rec)
		}
		h, off, n, _, err := parseRecord(chunk, int(ref.Rec))
		if err != nil {
			return Frame{}, err
		}
		if h.op != opMessage {
			return Frame{}, fmt.Errorf("%w: no message record at chunk offset %d", ErrCorrupt, ref.Rec)
		}
		data = chunk[off : off+n]
	}
	var img sensor_msgs.Image
	if err := decodeMsg(data, &img); err != nil {
		return Frame{}, fmt.Errorf("%w: image message: %v", ErrCorrupt, err)
	}
	return imageFrame(&img)
}

// Verify reads every bag of the collection and compares it with the index as stored on
// disk: a missing, damaged or different line is reported, naming the episode and field.
func (c *Collection) Verify(ctx context.Context) error {
	indexed, err := readIndexFile(c.dir)
	if err != nil {
		return fmt.Errorf("episode.Verify %s: %w", c.dir, err)
	}
	var errs []error
	files, err := bagFiles(c.dir)
	if err != nil {
		return fmt.Errorf("episode.Verify %s: %w", c.dir, err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := indexBag(c.dir, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		old, ok := indexed[f]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no line in %s", f, IndexFile))
			continue
		}
		if err := compareEntries(old, e); err != nil {
			errs = append(errs, err)
		}
	}
	var missing []string
	for f := range indexed {
		if _, err := os.Stat(filepath.Join(c.dir, f)); err != nil {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	for _, f := range missing {
		errs = append(errs, fmt.Errorf("%s lists %s, which is missing", IndexFile, f))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("episode.Verify %s: %w", c.dir, err)
	}
	return nil
}
