package label

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Errors of the label store and reader.
var (
	// ErrTorn is a label file whose last line has no newline: a write cut short by a
	// crash. OpenStore drops that line; readers stop before it.
	ErrTorn = errors.New("label file ends in a partial record")
	// ErrDuplicate is an Append of a pair the same labeller already labelled.
	ErrDuplicate = errors.New("pair already labelled by this labeller")
	// ErrLocked is a label file that another process has open for writing.
	ErrLocked = errors.New("label file is in use by another process")
	// ErrClosed is an Append after Close.
	ErrClosed = errors.New("label store closed")
)

// MaxRecordSize bounds one record line; longer lines are corrupt.
const MaxRecordSize = 16 << 20

// CorruptError is a complete line of a label file that is not a valid record.
type CorruptError struct {
	Line   int   // 1-based
	Offset int64 // byte offset of the line's start
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("line %d (byte %d): %v", e.Line, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Reader reads records from a label file, one JSON object per line.
type Reader struct {
	r    *bufio.Reader
	line int
	off  int64
	buf  []byte
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Offset is the byte offset just past the last complete line read: where a writer
// resumes after a torn tail.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next record, io.EOF after the last one, ErrTorn when the input ends
// inside a line, or a *CorruptError for a line that does not decode or validate.
// Blank lines are skipped.
func (r *Reader) Next() (Record, error) {
	for {
		line, n, tooLong, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		start := r.off
		r.off += n
		r.line++
		if tooLong {
			return Record{}, &CorruptError{Line: r.line, Offset: start, Err: fmt.Errorf("line longer than %d bytes", MaxRecordSize)}
		}
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return Record{}, &CorruptError{Line: r.line, Offset: start, Err: err}
		}
		if err := rec.Validate(); err != nil {
			return Record{}, &CorruptError{Line: r.line, Offset: start, Err: err}
		}
		return rec, nil
	}
}

// readLine returns the next line without its newline and the bytes it took. An
// over-long line is consumed and reported with tooLong.
func (r *Reader) readLine() (line []byte, n int64, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.r.ReadSlice('\n')
		n += int64(len(chunk))
		if !tooLong {
			if len(r.buf)+len(chunk) > MaxRecordSize+1 {
				tooLong, r.buf = true, r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, n, true, nil
			}
			return r.buf[:len(r.buf)-1], n, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if n == 0 {
				return nil, 0, false, io.EOF
			}
			return nil, 0, false, ErrTorn
		default:
			return nil, 0, false, err
		}
	}
}

// ReadFile reads every record of a label file. A torn last line (a run still writing,
// or killed) is ignored; a corrupt line is an error naming it.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("label.ReadFile: %w", err)
	}
	defer f.Close()
	var out []Record
	rd := NewReader(f)
	for {
		rec, err := rd.Next()
		switch {
		case err == nil:
			out = append(out, rec)
			continue
		case errors.Is(err, io.EOF), errors.Is(err, ErrTorn):
			return out, nil
		}
		return out, fmt.Errorf("label.ReadFile %s: %w", path, err)
	}
}

// StoreOptions configures a Store.
type StoreOptions struct {
	// SyncEvery bounds how long an appended record may sit in the page cache before an
	// fsync: records survive a killed process as soon as Append returns, and a power
	// loss loses at most this much. 0 fsyncs after every record; a negative value only
	// at Close.
	SyncEvery time.Duration
	Log       *zap.Logger
}

// Store is an open label file: append-only JSON lines, one Record per line, written with
// one write call per record. Opening it takes an exclusive lock, drops a torn last line
// left by a crash, and indexes which pairs each labeller has answered, so that a rerun
// skips them. It is safe for concurrent use.
type Store struct {
	path string
	opt  StoreOptions
	log  *zap.Logger

	mu       sync.Mutex
	f        *os.File
	keys     map[recordKey]struct{}
	counts   map[string]int
	n        int
	lastSync time.Time
	dirty    bool
	err      error // a failed write: the file may end in a partial record
	dropped  int64
}

// OpenStore opens or creates the label file at path.
func OpenStore(path string, o StoreOptions) (*Store, error) {
	wrap := func(err error) error { return fmt.Errorf("label.OpenStore %s: %w", path, err) }
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, wrap(err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, wrap(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, wrap(ErrLocked)
		}
		return nil, wrap(err)
	}
	s := &Store{path: path, opt: o, log: o.Log.With(zap.String("labels", path)), f: f,
		keys: map[recordKey]struct{}{}, counts: map[string]int{}, lastSync: time.Now()}
	if err := s.load(); err != nil {
		f.Close()
		return nil, wrap(err)
	}
	return s, nil
}

func (s *Store) load() error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	rd := NewReader(io.NewSectionReader(s.f, 0, fi.Size()))
	for {
		rec, err := rd.Next()
		if err == nil {
			lk := rec.Labeler.Key()
			s.index(makeKey(lk, rec.PairKey()), lk)
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if !errors.Is(err, ErrTorn) {
			return err
		}
		// A crash cut the last write short: that record was never acknowledged, and
		// the run that resumes labels its pair again.
		s.dropped = fi.Size() - rd.Offset()
		s.log.Warn("dropping a partial last record left by an interrupted run",
			zap.Int64("offset", rd.Offset()), zap.Int64("bytes", s.dropped))
		if err := s.f.Truncate(rd.Offset()); err != nil {
			return err
		}
		return s.f.Sync()
	}
}

func (s *Store) index(k recordKey, labelerKey string) {
	s.keys[k] = struct{}{}
	s.counts[labelerKey]++
	s.n++
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Dropped is the number of bytes of a partial last record that OpenStore removed.
func (s *Store) Dropped() int64 { return s.dropped }

// Len is the number of records.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Count is the number of records of the labeller with key labelerKey.
func (s *Store) Count(labelerKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[labelerKey]
}

// Has reports whether the labeller with key labelerKey has labelled pair.
func (s *Store) Has(labelerKey string, p Pair) bool {
	k := makeKey(labelerKey, p.Key())
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[k]
	return ok
}

// Append writes r as one line. A pair the same labeller already answered is refused
// with ErrDuplicate, so no pair is ever stored twice.
func (s *Store) Append(r *Record) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("label.Store.Append: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("label.Store.Append: %w", err)
	}
	b = append(b, '\n')
	lk := r.Labeler.Key()
	k := makeKey(lk, r.PairKey())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.f == nil:
		return fmt.Errorf("label.Store.Append: %w", ErrClosed)
	case s.err != nil:
		return fmt.Errorf("label.Store.Append: an earlier write failed: %w", s.err)
	}
	if _, ok := s.keys[k]; ok {
		return fmt.Errorf("label.Store.Append %s/%s: %w", r.A, r.B, ErrDuplicate)
	}
	if _, err := s.f.Write(b); err != nil {
		s.err = err
		return fmt.Errorf("label.Store.Append: %w", err)
	}
	s.index(k, lk)
	s.dirty = true
	if s.opt.SyncEvery < 0 {
		return nil
	}
	if now := time.Now(); s.opt.SyncEvery == 0 || now.Sub(s.lastSync) >= s.opt.SyncEvery {
		if err := s.f.Sync(); err != nil {
			s.err = err
			return fmt.Errorf("label.Store.Append: fsync: %w", err)
		}
		s.lastSync, s.dirty = now, false
	}
	return nil
}

// Close syncs and closes the file and releases its lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	var errs []error
	if s.dirty {
		errs = append(errs, s.f.Sync())
	}
	errs = append(errs, s.f.Close())
	s.f = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("label.Store.Close: %w", err)
	}
	return nil
}
