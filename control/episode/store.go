package episode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// Files of a collection folder.
const (
	SpecFile  = "collection.json"
	IndexFile = "index.jsonl"
	lockFile  = ".lock"
	tmpSuffix = ".tmp"
)

// Spec identifies a collection: a run with the same Spec continues it, a run with another
// is refused. Params are the arguments that determine the episodes' content (for
// `robodistill collect`: task, policy, seed, camera, size, rate, max_steps, full).
type Spec struct {
	Format  string            `json:"format"`
	Version int               `json:"version"`
	Source  string            `json:"source"` // "sim" or "robot"
	Params  map[string]string `json:"params"`
}

// ErrSpecMismatch reports a folder that holds a collection made with other arguments.
var ErrSpecMismatch = errors.New("the folder holds a collection made with different arguments")

// Store writes a collection folder crash-safely: each episode goes to a temporary file
// that is fsynced and renamed into place before its index line is appended and fsynced,
// so a crash at any moment leaves every completed episode readable and indexed (or
// indexable from its bag). One process at a time holds a folder (an flock on .lock).
type Store struct {
	dir  string
	spec Spec
	log  *zap.Logger
	lock *os.File

	mu      sync.Mutex
	index   *os.File
	entries map[int]Entry
}

// OpenStore creates the collection folder dir for spec, or opens it to continue a
// collection with the same spec: it removes stale temporary files, drops a torn last
// index line, and indexes bags that were renamed into place but not yet indexed.
func OpenStore(dir string, spec Spec, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	spec.Format, spec.Version = Format, Version
	fail := func(err error) (*Store, error) { return nil, fmt.Errorf("episode.OpenStore %s: %w", dir, err) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	specPath := filepath.Join(dir, SpecFile)
	if _, err := os.Stat(specPath); errors.Is(err, os.ErrNotExist) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fail(err)
		}
		for _, e := range ents {
			if e.Name() != lockFile {
				return fail(fmt.Errorf("not an episode collection (no %s) and not empty (it holds %s): choose an empty or new folder", SpecFile, e.Name()))
			}
		}
	}
	s := &Store{dir: dir, spec: spec, log: log, entries: map[int]Entry{}}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fail(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fail(fmt.Errorf("another process is writing this collection (lock %s): %w", lockFile, err))
	}
	s.lock = lock
	if err := s.open(specPath); err != nil {
		s.Close()
		return fail(err)
	}
	return s, nil
}

func (s *Store) open(specPath string) error {
	if data, err := os.ReadFile(specPath); err == nil {
		var have Spec
		if err := json.Unmarshal(data, &have); err != nil {
			return fmt.Errorf("%s: %w", SpecFile, err)
		}
		if err := s.spec.matches(have); err != nil {
			return err
		}
	} else if errors.Is(err, os.ErrNotExist) {
		data, _ := json.MarshalIndent(s.spec, "", "  ")
		if err := writeAtomic(s.dir, SpecFile, append(data, '\n')); err != nil {
			return err
		}
	} else {
		return err
	}
	epDir := filepath.Join(s.dir, "episodes")
	if err := os.MkdirAll(epDir, 0o755); err != nil {
		return err
	}
	removed := 0
	for _, d := range []string{s.dir, epDir} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), tmpSuffix) {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					return fmt.Errorf("remove stale temporary file: %w", err)
				}
				removed++
			}
		}
	}
	if removed > 0 {
		s.log.Info("removed unfinished episodes", zap.Int("files", removed))
	}
	entries, rewrite, err := loadIndex(s.dir, true, s.log)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s.entries[e.Episode] = e
	}
	if rewrite {
		if err := s.rewriteIndex(); err != nil {
			return err
		}
	}
	s.index, err = os.OpenFile(filepath.Join(s.dir, IndexFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return err
}

// matches explains how have (the folder's spec) differs from s.
func (s Spec) matches(have Spec) error {
	if have.Format != Format {
		return fmt.Errorf("%s names format %q, want %q", SpecFile, have.Format, Format)
	}
	if have.Version > Version {
		return fmt.Errorf("%s is format version %d, newer than this program's %d", SpecFile, have.Version, Version)
	}
	var diffs []string
	if have.Source != s.Source {
		diffs = append(diffs, fmt.Sprintf("source is %q there, %q here", have.Source, s.Source))
	}
	keys := map[string]bool{}
	for k := range have.Params {
		keys[k] = true
	}
	for k := range s.Params {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		a, aok := have.Params[k]
		b, bok := s.Params[k]
		switch {
		case aok && bok && a != b:
			diffs = append(diffs, fmt.Sprintf("%s is %q there, %q here", k, a, b))
		case !aok:
			diffs = append(diffs, fmt.Sprintf("%s is unset there, %q here", k, b))
		case !bok:
			diffs = append(diffs, fmt.Sprintf("%s is %q there, unset here", k, a))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w (%s): use another folder, or the same arguments to continue it", ErrSpecMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

// loadIndex reads the index and reconciles it with the bags present. Entries whose bag is
// missing are an error for a reader (strict) and dropped for a writer; bags without a
// usable entry (a crash between rename and index line, a torn or unparseable line, a
// changed size) are indexed from the bag. rewrite reports that the file should be
// rewritten to match.
func loadIndex(dir string, writer bool, log *zap.Logger) (entries []Entry, rewrite bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	lines, good, bad := indexLines(data)
	if good != len(data) || len(bad) > 0 {
		rewrite = true
		log.Warn("index has damaged lines; they are rebuilt from the bags", zap.Int("bad_lines", len(bad)), zap.Bool("torn_last_line", good != len(data)))
	}
	byFile := map[string]Entry{}
	for _, e := range lines {
		if _, dup := byFile[e.File]; dup {
			rewrite = true
		}
		byFile[e.File] = e
	}
	files, err := bagFiles(dir)
	if err != nil {
		return nil, false, err
	}
	present := map[string]bool{}
	seen := map[int]string{}
	for _, f := range files {
		present[f] = true
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return nil, false, err
		}
		e, ok := byFile[f]
		if !ok || e.Bytes != st.Size() {
			if e, err = indexBag(dir, f); err != nil {
				return nil, false, fmt.Errorf("%w (delete %s to record that episode again)", err, f)
			}
			rewrite = true
			log.Info("indexed episode from its bag", zap.String("file", f))
		}
		if other, dup := seen[e.Episode]; dup {
			return nil, false, fmt.Errorf("%s and %s both hold episode %d", other, f, e.Episode)
		}
		seen[e.Episode] = f
		entries = append(entries, e)
	}
	for f := range byFile {
		if !present[f] {
			if !writer {
				return nil, false, fmt.Errorf("%s lists %s, which is missing", IndexFile, f)
			}
			log.Warn("index lists a missing bag; that episode will be recorded again", zap.String("file", f))
			rewrite = true
		}
	}
	sortEntries(entries)
	return entries, rewrite, nil
}

func (s *Store) rewriteIndex() error {
	var buf []byte
	es := s.Entries()
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	return writeAtomic(s.dir, IndexFile, buf)
}

// Dir is the collection folder.
func (s *Store) Dir() string { return s.dir }

// Has reports whether episode n is complete.
func (s *Store) Has(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[n]
	return ok
}

// Entries returns the completed episodes in episode order.
func (s *Store) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sortEntries(out)
	return out
}

// Close releases the folder.
func (s *Store) Close() error {
	var errs []error
	if s.index != nil {
		errs = append(errs, s.index.Close())
		s.index = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // closing releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Pending is an episode being written to its temporary file.
type Pending struct {
	*Writer
	s          *Store
	n          int
	f          *os.File
	tmp, final string
	done       bool
}

// Begin starts episode n.
func (s *Store) Begin(n int) (*Pending, error) {
	if s.Has(n) {
		return nil, fmt.Errorf("episode.Begin: episode %d is already complete", n)
	}
	rel := EpisodeFile(n)
	final := filepath.Join(s.dir, rel)
	tmp := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("episode.Begin: %w", err)
	}
	w, err := NewWriter(f)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &Pending{Writer: w, s: s, n: n, f: f, tmp: tmp, final: final}, nil
}

// Commit finishes the bag, makes it durable, reads it back to build its index entry, moves
// it into place and appends the entry to the index (fsynced).
func (p *Pending) Commit() (Entry, error) {
	fail := func(err error) (Entry, error) {
		p.Abort()
		return Entry{}, fmt.Errorf("episode.Commit episode %d: %w", p.n, err)
	}
	if p.done {
		return Entry{}, fmt.Errorf("episode.Commit episode %d: already committed or aborted", p.n)
	}
	if err := p.Writer.Close(); err != nil {
		return fail(err)
	}
	if err := p.f.Sync(); err != nil {
		return fail(err)
	}
	if err := p.f.Close(); err != nil {
		return fail(err)
	}
	rel := EpisodeFile(p.n)
	// Read back what was written: the entry comes from the file, exactly as an index
	// rebuilt from the bags would.
	tmpRel := filepath.Join(filepath.Dir(rel), filepath.Base(p.tmp))
	e, err := indexTemp(p.s.dir, tmpRel, p.n)
	if err != nil {
		return fail(err)
	}
	e.File = rel
	if err := os.Rename(p.tmp, p.final); err != nil {
		return fail(err)
	}
	p.done = true
	if err := syncDir(filepath.Dir(p.final)); err != nil {
		return Entry{}, fmt.Errorf("episode.Commit episode %d: %w", p.n, err)
	}
	line, err := json.Marshal(e)
	if err != nil {
		return Entry{}, err
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.index.Write(append(line, '\n')); err != nil {
		return Entry{}, fmt.Errorf("episode.Commit episode %d: append index: %w", p.n, err)
	}
	if err := s.index.Sync(); err != nil {
		return Entry{}, fmt.Errorf("episode.Commit episode %d: sync index: %w", p.n, err)
	}
	s.entries[p.n] = e
	return e, nil
}

// indexTemp indexes a temporary bag as if it had its final name.
func indexTemp(dir, tmpRel string, n int) (Entry, error) {
	b, err := OpenBag(filepath.Join(dir, tmpRel))
	if err != nil {
		return Entry{}, err
	}
	defer b.Close()
	eps, err := b.Episodes(ReadOptions{})
	if err != nil {
		return Entry{}, err
	}
	if len(eps) != 1 {
		return Entry{}, fmt.Errorf("the bag holds %d episodes, want 1", len(eps))
	}
	if eps[0].Meta != nil && eps[0].Meta.Episode != n {
		return Entry{}, fmt.Errorf("the bag's metadata says episode %d", eps[0].Meta.Episode)
	}
	eps[0].Number = n
	e, err := Summarize(eps[0])
	if err != nil {
		return Entry{}, err
	}
	e.Bytes = b.Size()
	return e, nil
}

// Abort discards an unfinished episode.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	os.Remove(p.tmp)
}

// writeAtomic replaces dir/name with data durably: temporary file, fsync, rename, fsync
// of the folder.
func writeAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
