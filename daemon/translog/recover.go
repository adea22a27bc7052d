package translog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Errors Recover wraps.
var (
	ErrNotBag      = errors.New("not a ROS bag v2.0")
	ErrUnsupported = errors.New("unsupported bag")
)

// RecoverResult says what Recover found and did.
type RecoverResult struct {
	// Indexed is set when the bag already had its index: nothing was changed.
	Indexed bool
	// Chunks and Messages are what the recovered bag holds.
	Chunks, Messages int
	// Truncated is the number of bytes cut from the end: a chunk torn by the crash, or
	// an index section that was being written.
	Truncated int64
}

// Limits of Recover's parsing (a damaged file claims any length).
const (
	maxRecordHeader = 1 << 20
	maxChunkSize    = 1 << 30
)

// Recover turns an unfinished bag (a writer killed before it wrote the index) into a
// finished one in place, as `rosbag reindex` does: it keeps every complete chunk, cuts
// what follows the last one (a chunk torn by the crash), rebuilds the index section and
// points the bag header at it, and fsyncs. A bag that already has its index is left
// alone. Only uncompressed chunks are read (this package's and control/episode's); for
// others use `rosbag reindex`.
func Recover(path string) (RecoverResult, error) {
	res, err := recoverBag(path)
	if err != nil {
		return res, fmt.Errorf("translog.Recover %s: %w", path, err)
	}
	return res, nil
}

func recoverBag(path string) (RecoverResult, error) {
	var res RecoverResult
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	r := &scanner{r: f, size: st.Size()}
	magic := make([]byte, len(bagMagic))
	if _, err := f.ReadAt(magic, 0); err != nil || !bytes.Equal(magic, bagMagic) {
		return res, fmt.Errorf("%w: the file does not start with %q", ErrNotBag, bytes.TrimSpace(bagMagic))
	}
	pos := int64(len(bagMagic))
	h, _, next, err := r.record(pos)
	if err != nil {
		return res, fmt.Errorf("%w: bag header: %v", ErrNotBag, err)
	}
	if h.op != opBagHeader || len(h.fields["index_pos"]) != 8 {
		return res, fmt.Errorf("%w: the first record is not a bag header", ErrNotBag)
	}
	if idx := binary.LittleEndian.Uint64(h.fields["index_pos"]); idx != 0 {
		if idx > uint64(r.size) {
			return res, fmt.Errorf("%w: the bag header points at byte %d beyond the end (%d bytes): the file was cut after it was finished", ErrUnsupported, idx, r.size)
		}
		res.Indexed = true
		return res, nil
	}
	w := &bagWriter{f: f, byName: map[string]uint32{}}
	var last *chunkScan // the last good chunk, when its index data must be rewritten
	good := next
	for pos = next; pos < r.size; {
		h, dataOff, next, err := r.record(pos)
		if err != nil || h.op != opChunk {
			break // torn by the crash, or the start of a partial index section
		}
		c, err := r.chunk(h, dataOff, next, w)
		if err != nil {
			break
		}
		// The chunk's index data records follow it; they are rewritten when any of
		// them is missing or torn.
		end, ok := next, true
		for range c.used {
			ih, _, inext, err := r.record(end)
			if err != nil || ih.op != opIndexData {
				ok = false
				break
			}
			end = inext
		}
		c.info.pos = pos
		w.infos = append(w.infos, c.info)
		res.Chunks++
		res.Messages += c.messages
		if !ok {
			good, last = next, c
			break
		}
		good, pos = end, end
	}
	res.Truncated = r.size - good
	if err := f.Truncate(good); err != nil {
		return res, err
	}
	w.size = good
	if last != nil {
		var b []byte
		for _, id := range last.used {
			b = appendIndexData(b, id, last.idx[id])
		}
		if _, err := f.WriteAt(b, w.size); err != nil {
			return res, err
		}
		w.size += int64(len(b))
	}
	if err := w.writeIndex(); err != nil {
		return res, err
	}
	return res, nil
}

// scanner reads records with every length checked against the file's size.
type scanner struct {
	r    io.ReaderAt
	size int64
	buf  []byte
}

type recHeader struct {
	op     byte
	fields map[string][]byte
}

// record frames the record at pos.
func (s *scanner) record(pos int64) (h recHeader, dataOff, next int64, err error) {
	var n [4]byte
	if pos+8 > s.size {
		return h, 0, 0, io.ErrUnexpectedEOF
	}
	if _, err := s.r.ReadAt(n[:], pos); err != nil {
		return h, 0, 0, err
	}
	hlen := int64(binary.LittleEndian.Uint32(n[:]))
	if hlen > maxRecordHeader || pos+4+hlen+4 > s.size {
		return h, 0, 0, io.ErrUnexpectedEOF
	}
	hb := make([]byte, hlen+4)
	if _, err := s.r.ReadAt(hb, pos+4); err != nil {
		return h, 0, 0, err
	}
	dlen := int64(binary.LittleEndian.Uint32(hb[hlen:]))
	dataOff = pos + 8 + hlen
	if dataOff+dlen > s.size {
		return h, 0, 0, io.ErrUnexpectedEOF
	}
	if h, err = parseFields(hb[:hlen]); err != nil {
		return h, 0, 0, err
	}
	return h, dataOff, dataOff + dlen, nil
}

func parseFields(b []byte) (recHeader, error) {
	h := recHeader{fields: map[string][]byte{}}
	for p := 0; p < len(b); {
		if len(b)-p < 4 {
			return h, errors.New("header field length cut short")
		}
		n := int(binary.LittleEndian.Uint32(b[p:]))
		p += 4
		if n < 0 || n > len(b)-p {
			return h, fmt.Errorf("header field of %d bytes overruns the header", n)
		}
		f := b[p : p+n]
		p += n
		eq := bytes.IndexByte(f, '=')
		if eq < 0 {
			return h, errors.New("header field without '='")
		}
		h.fields[string(f[:eq])] = f[eq+1:]
	}
	op := h.fields["op"]
	if len(op) != 1 {
		return h, errors.New("record without a one-byte op")
	}
	h.op = op[0]
	return h, nil
}

func (h recHeader) u32(k string) (uint32, bool) {
	v := h.fields[k]
	if len(v) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v), true
}

// chunkScan is what one chunk holds.
type chunkScan struct {
	info     chunkInfo
	used     []uint32
	idx      map[uint32][]indexEntry
	messages int
}

// chunk reads the records of an uncompressed chunk, adding its connections to w.
func (s *scanner) chunk(h recHeader, dataOff, end int64, w *bagWriter) (*chunkScan, error) {
	if comp := string(h.fields["compression"]); comp != "none" {
		return nil, fmt.Errorf("%w: chunk compression %q (only none; use rosbag reindex)", ErrUnsupported, comp)
	}
	if size, ok := h.u32("size"); !ok || int64(size) != end-dataOff || int64(size) > maxChunkSize {
		return nil, errors.New("chunk size does not match its data")
	}
	c := &chunkScan{idx: map[uint32][]indexEntry{}}
	added := len(w.conns)
	undo := func(err error) (*chunkScan, error) {
		for _, cn := range w.conns[added:] {
			delete(w.byName, cn.topic)
		}
		w.conns = w.conns[:added]
		return nil, err
	}
	for pos := dataOff; pos < end; {
		rh, rdata, next, err := s.record(pos)
		if err != nil {
			return undo(err)
		}
		if next > end {
			return undo(errors.New("record overruns its chunk"))
		}
		switch rh.op {
		case opConnection:
			if err := s.connection(rh, rdata, pos, next, w); err != nil {
				return undo(err)
			}
		case opMessage:
			id, ok := rh.u32("conn")
			t := rh.fields["time"]
			if !ok || len(t) != 8 || int(id) >= len(w.conns) {
				return undo(errors.New("message record without a known connection or a time"))
			}
			ns := int64(binary.LittleEndian.Uint32(t))*1e9 + int64(binary.LittleEndian.Uint32(t[4:]))
			if c.messages == 0 {
				c.info.start, c.info.end = ns, ns
			}
			c.info.start, c.info.end = min(c.info.start, ns), max(c.info.end, ns)
			if _, seen := c.idx[id]; !seen {
				c.used = append(c.used, id)
			}
			c.idx[id] = append(c.idx[id], indexEntry{t: ns, off: uint32(pos - dataOff)})
			c.messages++
		default:
			return undo(fmt.Errorf("record op 0x%02x inside a chunk", rh.op))
		}
		pos = next
	}
	sort.Slice(c.used, func(i, j int) bool { return c.used[i] < c.used[j] })
	for _, id := range c.used {
		c.info.counts = append(c.info.counts, connCount{conn: id, count: uint32(len(c.idx[id]))})
	}
	return c, nil
}

// connection checks a connection record and keeps it for the index. Connection ids
// must come in order (0, 1, …), as this package and go-rosbag write them.
func (s *scanner) connection(h recHeader, dataOff, pos, next int64, w *bagWriter) error {
	id, ok := h.u32("conn")
	topic := string(h.fields["topic"])
	if !ok || topic == "" {
		return errors.New("connection record without id or topic")
	}
	rec := make([]byte, next-pos)
	if _, err := s.r.ReadAt(rec, pos); err != nil {
		return err
	}
	data, err := parseConnData(rec[dataOff-pos:])
	if err != nil {
		return err
	}
	if string(data.fields["type"]) == "" || string(data.fields["topic"]) == "" {
		return errors.New("connection record without type")
	}
	if int(id) < len(w.conns) {
		if !bytes.Equal(w.conns[id].rec, rec) {
			return fmt.Errorf("connection %d defined twice differently", id)
		}
		return nil
	}
	if int(id) != len(w.conns) {
		return fmt.Errorf("connection %d out of order (expected %d)", id, len(w.conns))
	}
	if _, dup := w.byName[topic]; dup {
		return fmt.Errorf("topic %s has two connections", topic)
	}
	w.conns = append(w.conns, conn{topic: topic, rec: rec})
	w.byName[topic] = id
	return nil
}

// parseConnData parses a connection record's data (header-format fields, no op).
func parseConnData(b []byte) (recHeader, error) {
	h, err := parseFields(append(appendFieldOp(nil, opConnection), b...))
	return h, err
}

// recoverDir recovers the unfinished bags of a log folder and returns the next free
// sequence number. A recovered bag is renamed to .bag; one with no message is removed;
// one that cannot be recovered is left as it is, with a warning.
func recoverDir(dir string, log *zap.Logger) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	next := 0
	for _, e := range ents {
		name := e.Name()
		if n, ok := bagSeq(name); ok && n >= next {
			next = n + 1
		}
		if !strings.HasSuffix(name, activeSuffix) {
			continue
		}
		path := filepath.Join(dir, name)
		final := strings.TrimSuffix(path, activeSuffix) + bagSuffix
		res, err := Recover(path)
		switch {
		case err != nil:
			log.Warn("cannot recover an unfinished bag; it is left as it is", zap.String("file", name), zap.Error(err))
			continue
		case res.Messages == 0 && !res.Indexed:
			log.Info("removed an unfinished bag without messages", zap.String("file", name))
			if err := os.Remove(path); err != nil {
				return 0, err
			}
			continue
		}
		if err := os.Rename(path, final); err != nil {
			return 0, err
		}
		log.Info("recovered an unfinished bag", zap.String("file", filepath.Base(final)),
			zap.Int("messages", res.Messages), zap.Int("chunks", res.Chunks), zap.Int64("truncated_bytes", res.Truncated))
	}
	return next, syncDir(dir)
}

// bagSeq parses the sequence number of a log bag's name.
func bagSeq(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, namePrefix)
	if !ok || !(strings.HasSuffix(s, bagSuffix) || strings.HasSuffix(s, activeSuffix)) {
		return 0, false
	}
	digits, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 0
}
