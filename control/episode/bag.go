package episode

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// Errors a reader reports; the returned errors wrap them with the file, the byte offset
// and what was found.
var (
	ErrNotBag    = errors.New("not a ROS bag v2.0")
	ErrTruncated = errors.New("truncated")
	ErrCorrupt   = errors.New("corrupt")
)

// Limits that keep a damaged or hostile file from making the reader allocate without
// bound: every length is also checked against the bytes that remain.
const (
	maxRecordHeader = 1 << 20 // a record header (the connection header is record data)
	maxChunkSize    = 1 << 30 // a chunk's uncompressed size
	keepInMemory    = 4 << 10 // messages up to this size are kept after the scan
)

var bagMagic = []byte("#ROSBAG V2.0\n")

// Record op codes (http://wiki.ros.org/Bags/Format/2.0).
const (
	opMessage    = 0x02
	opBagHeader  = 0x03
	opIndexData  = 0x04
	opChunk      = 0x05
	opChunkInfo  = 0x06
	opConnection = 0x07
)

// Conn is a connection record: a topic and its message type.
type Conn struct {
	ID         uint32
	Topic      string
	Type       string
	MD5        string
	Definition string
	CallerID   string
	Latching   bool
}

// TopicInfo summarises one topic of a bag.
type TopicInfo struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// bagMsg locates one message. For a message in an uncompressed chunk (or outside any
// chunk) rec is the absolute file offset of its record; in a compressed chunk, chunk is
// the chunk record's offset and rec the record's offset in the uncompressed chunk data.
type bagMsg struct {
	conn  uint32
	time  int64 // ns since the epoch (bag time: receive or write time)
	chunk int64
	rec   int64
	data  int64 // offset of the message bytes, in the same space as rec
	n     int
	kept  []byte // the message bytes when small
}

// Bag is an open ROS bag v2.0 file, scanned once on open: its connections and every
// message's position and time (messages up to 4 KiB are kept in memory, larger ones such
// as images are read when asked for). It is safe for concurrent use.
type Bag struct {
	name    string
	r       io.ReaderAt
	size    int64
	closer  io.Closer
	indexed bool
	conns   map[uint32]*Conn
	msgs    []bagMsg // in time order (stable: file order among equal times)

	mu         sync.Mutex
	cachePos   int64
	cacheChunk []byte
}

// OpenBag opens and scans a bag file.
func OpenBag(path string) (*Bag, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("episode.OpenBag: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("episode.OpenBag: %w", err)
	}
	b, err := ReadBag(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closer = f
	return b, nil
}

// ReadBag scans a bag held by r (size bytes); name appears in errors.
func ReadBag(name string, r io.ReaderAt, size int64) (*Bag, error) {
	b := &Bag{name: name, r: r, size: size, conns: map[uint32]*Conn{}, cachePos: -1}
	if err := b.scan(); err != nil {
		return nil, fmt.Errorf("episode: bag %s: %w", name, err)
	}
	return b, nil
}

// Close closes the file of a bag opened with OpenBag.
func (b *Bag) Close() error {
	if b.closer == nil {
		return nil
	}
	err := b.closer.Close()
	b.closer = nil
	return err
}

// Name is the bag's file name.
func (b *Bag) Name() string { return b.name }

// Indexed reports whether the bag header points at an index section, as `rosbag info`
// and `rosbag play` need (a bag whose recorder was killed has none until `rosbag reindex`).
func (b *Bag) Indexed() bool { return b.indexed }

// Size is the file's size in bytes.
func (b *Bag) Size() int64 { return b.size }

// Topics lists the bag's topics with their types and message counts, sorted by topic.
func (b *Bag) Topics() []TopicInfo {
	count := map[uint32]int{}
	for i := range b.msgs {
		count[b.msgs[i].conn]++
	}
	byTopic := map[string]*TopicInfo{}
	for id, c := range b.conns {
		t := byTopic[c.Topic]
		if t == nil {
			t = &TopicInfo{Topic: c.Topic, Type: c.Type}
			byTopic[c.Topic] = t
		}
		t.Count += count[id]
	}
	out := make([]TopicInfo, 0, len(byTopic))
	for _, t := range byTopic {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// MessageCount is the number of messages in the bag.
func (b *Bag) MessageCount() int { return len(b.msgs) }

func (b *Bag) scan() error {
	if b.size < int64(len(bagMagic)) {
		return fmt.Errorf("%w: %d bytes, shorter than the magic line", ErrNotBag, b.size)
	}
	magic := make([]byte, len(bagMagic))
	if _, err := b.r.ReadAt(magic, 0); err != nil {
		return fmt.Errorf("read magic: %w", err)
	}
	if !bytes.Equal(magic, bagMagic) {
		return fmt.Errorf("%w: file starts with %q", ErrNotBag, bytes.TrimRight(magic, "\n"))
	}
	pos := int64(len(bagMagic))
	first := true
	var lz *lz4.Reader
	var chunkBuf bytes.Buffer
	for pos < b.size {
		rec, err := b.recordAt(pos)
		if err != nil {
			return err
		}
		h := rec.header
		if first {
			if h.op != opBagHeader {
				return fmt.Errorf("%w: first record at byte %d is op 0x%02x, not the bag header", ErrCorrupt, pos, h.op)
			}
			first = false
			idx, ok := h.u64("index_pos")
			if !ok {
				return fmt.Errorf("%w: bag header at byte %d has no index_pos", ErrCorrupt, pos)
			}
			if idx != 0 {
				if idx > uint64(b.size) {
					return fmt.Errorf("%w: the bag header says the index starts at byte %d but the file has %d bytes", ErrTruncated, idx, b.size)
				}
				b.indexed = true
			}
			pos = rec.next
			continue
		}
		switch h.op {
		case opChunk:
			comp, _ := h.str("compression")
			usize, ok := h.u32("size")
			if !ok {
				return fmt.Errorf("%w: chunk at byte %d has no size", ErrCorrupt, pos)
			}
			if usize > maxChunkSize {
				return fmt.Errorf("%w: chunk at byte %d claims %d uncompressed bytes", ErrCorrupt, pos, usize)
			}
			raw := make([]byte, rec.dataLen)
			if _, err := b.r.ReadAt(raw, rec.dataOff); err != nil {
				return fmt.Errorf("read chunk at byte %d: %w", pos, err)
			}
			switch comp {
			case "none":
				if int64(usize) != rec.dataLen {
					return fmt.Errorf("%w: uncompressed chunk at byte %d holds %d bytes but claims %d", ErrCorrupt, pos, rec.dataLen, usize)
				}
				if err := b.scanChunk(raw, 0, rec.dataOff); err != nil {
					return fmt.Errorf("chunk at byte %d: %w", pos, err)
				}
			case "lz4", "bz2":
				if lz == nil {
					lz = lz4.NewReader(nil)
				}
				data, err := decompress(comp, raw, int(usize), lz, &chunkBuf)
				if err != nil {
					return fmt.Errorf("%w: chunk at byte %d: %v", ErrCorrupt, pos, err)
				}
				if err := b.scanChunk(data, pos, 0); err != nil {
					return fmt.Errorf("chunk at byte %d (%s): %w", pos, comp, err)
				}
			default:
				return fmt.Errorf("%w: chunk at byte %d has unsupported compression %q (none, lz4, bz2)", ErrCorrupt, pos, comp)
			}
		case opConnection:
			data := make([]byte, rec.dataLen)
			if _, err := b.r.ReadAt(data, rec.dataOff); err != nil {
				return fmt.Errorf("read connection at byte %d: %w", pos, err)
			}
			if err := b.addConn(h, data, pos); err != nil {
				return err
			}
		case opMessage:
			if err := b.addMsg(h, 0, pos, rec.dataOff, rec.dataLen, nil); err != nil {
				return err
			}
		case opIndexData, opChunkInfo:
			// The index repeats what the scan finds; the reader does not depend on it.
		case opBagHeader:
			return fmt.Errorf("%w: a second bag header at byte %d", ErrCorrupt, pos)
		default:
			return fmt.Errorf("%w: record at byte %d has unknown op 0x%02x", ErrCorrupt, pos, h.op)
		}
		pos = rec.next
	}
	if first {
		return fmt.Errorf("%w: no bag header after the magic line", ErrTruncated)
	}
	for i := range b.msgs {
		if _, ok := b.conns[b.msgs[i].conn]; !ok {
			return fmt.Errorf("%w: a message refers to connection %d, which the bag does not define", ErrCorrupt, b.msgs[i].conn)
		}
	}
	sort.SliceStable(b.msgs, func(i, j int) bool { return b.msgs[i].time < b.msgs[j].time })
	return nil
}

// scanChunk walks the records of one chunk's uncompressed data. For an uncompressed chunk
// base is the data's file offset and chunk 0; for a compressed one chunk is the chunk
// record's offset and positions are relative to the data.
func (b *Bag) scanChunk(data []byte, chunk, base int64) error {
	p := 0
	for p < len(data) {
		h, dataOff, dataLen, next, err := parseRecord(data, p)
		if err != nil {
			return fmt.Errorf("record at chunk offset %d: %w", p, err)
		}
		switch h.op {
		case opConnection:
			if err := b.addConn(h, data[dataOff:dataOff+dataLen], base+int64(p)); err != nil {
				return err
			}
		case opMessage:
			var kept []byte
			if dataLen <= keepInMemory {
				kept = bytes.Clone(data[dataOff : dataOff+dataLen])
				if kept == nil {
					kept = []byte{}
				}
			}
			if err := b.addMsg(h, chunk, base+int64(p), base+int64(dataOff), int64(dataLen), kept); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: op 0x%02x inside a chunk", ErrCorrupt, h.op)
		}
		p = next
	}
	return nil
}

func (b *Bag) addConn(h recordHeader, data []byte, pos int64) error {
	id, ok := h.u32("conn")
	if !ok {
		return fmt.Errorf("%w: connection record at byte %d has no conn id", ErrCorrupt, pos)
	}
	topic, _ := h.str("topic")
	fields, err := parseHeader(data)
	if err != nil {
		return fmt.Errorf("%w: connection %d at byte %d: %v", ErrCorrupt, id, pos, err)
	}
	c := &Conn{ID: id, Topic: topic}
	c.Type, _ = fields.str("type")
	c.MD5, _ = fields.str("md5sum")
	c.Definition, _ = fields.str("message_definition")
	c.CallerID, _ = fields.str("callerid")
	l, _ := fields.str("latching")
	c.Latching = l == "1"
	if c.Topic == "" || c.Type == "" {
		return fmt.Errorf("%w: connection %d at byte %d has no topic or type", ErrCorrupt, id, pos)
	}
	if old, ok := b.conns[id]; ok {
		if old.Topic != c.Topic || old.Type != c.Type || old.MD5 != c.MD5 {
			return fmt.Errorf("%w: connection %d is defined twice, as %s (%s) and %s (%s)", ErrCorrupt, id, old.Topic, old.Type, c.Topic, c.Type)
		}
		return nil
	}
	b.conns[id] = c
	return nil
}

func (b *Bag) addMsg(h recordHeader, chunk, rec, data, n int64, kept []byte) error {
	id, ok := h.u32("conn")
	if !ok {
		return fmt.Errorf("%w: message record at %d has no conn id", ErrCorrupt, rec)
	}
	t, ok := h.time("time")
	if !ok {
		return fmt.Errorf("%w: message record at %d has no time", ErrCorrupt, rec)
	}
	b.msgs = append(b.msgs, bagMsg{conn: id, time: t, chunk: chunk, rec: rec, data: data, n: int(n), kept: kept})
	return nil
}

// bytesOf returns a message's serialized bytes.
func (b *Bag) bytesOf(m *bagMsg) ([]byte, error) {
	if m.kept != nil {
		return m.kept, nil
	}
	if m.chunk == 0 {
		buf := make([]byte, m.n)
		if _, err := b.r.ReadAt(buf, m.data); err != nil {
			return nil, fmt.Errorf("episode: bag %s: read message at byte %d: %w", b.name, m.data, err)
		}
		return buf, nil
	}
	chunk, err := b.chunkData(m.chunk)
	if err != nil {
		return nil, err
	}
	if m.data < 0 || m.data+int64(m.n) > int64(len(chunk)) {
		return nil, fmt.Errorf("episode: bag %s: %w: message outside its chunk", b.name, ErrCorrupt)
	}
	return bytes.Clone(chunk[m.data : m.data+int64(m.n)]), nil
}

// chunkData returns the uncompressed data of the compressed chunk at pos (one cached).
func (b *Bag) chunkData(pos int64) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cachePos == pos {
		return b.cacheChunk, nil
	}
	rec, err := b.recordAt(pos)
	if err != nil {
		return nil, fmt.Errorf("episode: bag %s: %w", b.name, err)
	}
	if rec.header.op != opChunk {
		return nil, fmt.Errorf("episode: bag %s: %w: no chunk at byte %d", b.name, ErrCorrupt, pos)
	}
	comp, _ := rec.header.str("compression")
	usize, _ := rec.header.u32("size")
	if usize > maxChunkSize {
		return nil, fmt.Errorf("episode: bag %s: %w: chunk at byte %d claims %d bytes", b.name, ErrCorrupt, pos, usize)
	}
	raw := make([]byte, rec.dataLen)
	if _, err := b.r.ReadAt(raw, rec.dataOff); err != nil {
		return nil, fmt.Errorf("episode: bag %s: read chunk at byte %d: %w", b.name, pos, err)
	}
	var out []byte
	if comp == "none" {
		out = raw
	} else {
		var buf bytes.Buffer
		if out, err = decompress(comp, raw, int(usize), lz4.NewReader(nil), &buf); err != nil {
			return nil, fmt.Errorf("episode: bag %s: %w: chunk at byte %d: %v", b.name, ErrCorrupt, pos, err)
		}
		out = bytes.Clone(out)
	}
	b.cachePos, b.cacheChunk = pos, out
	return out, nil
}

// decompress inflates a chunk, allocating no more than the output actually needs.
func decompress(comp string, raw []byte, size int, lz *lz4.Reader, buf *bytes.Buffer) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s decoder failed: %v", comp, r)
		}
	}()
	var r io.Reader
	switch comp {
	case "lz4":
		lz.Reset(bytes.NewReader(raw))
		r = lz
	case "bz2":
		r = bzip2.NewReader(bytes.NewReader(raw))
	default:
		return nil, fmt.Errorf("unsupported compression %q", comp)
	}
	buf.Reset()
	if _, err := io.Copy(buf, io.LimitReader(r, int64(size)+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", comp, err)
	}
	if buf.Len() != size {
		return nil, fmt.Errorf("%s data inflates to %d bytes, the chunk claims %d", comp, buf.Len(), size)
	}
	return buf.Bytes(), nil
}

// record is one top-level record's framing.
type record struct {
	header  recordHeader
	dataOff int64
	dataLen int64
	next    int64
}

// recordAt reads the framing of the record at pos, checking every length against the
// file's size.
func (b *Bag) recordAt(pos int64) (record, error) {
	var lenBuf [4]byte
	if pos < 0 {
		return record{}, fmt.Errorf("%w: record position %d", ErrCorrupt, pos)
	}
	if pos+4 > b.size {
		return record{}, fmt.Errorf("%w at byte %d: %d bytes left, a record needs at least 8", ErrTruncated, pos, b.size-pos)
	}
	if _, err := b.r.ReadAt(lenBuf[:], pos); err != nil {
		return record{}, fmt.Errorf("read record at byte %d: %w", pos, err)
	}
	hlen := int64(binary.LittleEndian.Uint32(lenBuf[:]))
	if hlen > maxRecordHeader {
		return record{}, fmt.Errorf("%w: record at byte %d claims a %d-byte header", ErrCorrupt, pos, hlen)
	}
	if pos+4+hlen+4 > b.size {
		return record{}, fmt.Errorf("%w at byte %d: the record's header needs %d bytes, %d remain", ErrTruncated, pos, hlen+8, b.size-pos)
	}
	hb := make([]byte, hlen+4)
	if _, err := b.r.ReadAt(hb, pos+4); err != nil {
		return record{}, fmt.Errorf("read record at byte %d: %w", pos, err)
	}
	dlen := int64(binary.LittleEndian.Uint32(hb[hlen:]))
	dataOff := pos + 8 + hlen
	if dataOff+dlen > b.size {
		return record{}, fmt.Errorf("%w at byte %d: the record needs %d bytes, %d remain", ErrTruncated, pos, 8+hlen+dlen, b.size-pos)
	}
	h, err := parseHeader(hb[:hlen])
	if err != nil {
		return record{}, fmt.Errorf("%w: record at byte %d: %v", ErrCorrupt, pos, err)
	}
	if h.op == 0 {
		return record{}, fmt.Errorf("%w: record at byte %d has no op field", ErrCorrupt, pos)
	}
	return record{header: h, dataOff: dataOff, dataLen: dlen, next: dataOff + dlen}, nil
}

// parseRecord frames the record at p in an in-memory buffer.
func parseRecord(buf []byte, p int) (h recordHeader, dataOff, dataLen, next int, err error) {
	if len(buf)-p < 4 {
		return h, 0, 0, 0, fmt.Errorf("%w: %d bytes left, a record needs at least 8", ErrCorrupt, len(buf)-p)
	}
	hlen := int(binary.LittleEndian.Uint32(buf[p:]))
	if hlen > len(buf)-p-8 || hlen < 0 {
		return h, 0, 0, 0, fmt.Errorf("%w: header of %d bytes overruns the chunk", ErrCorrupt, hlen)
	}
	dlen := int(binary.LittleEndian.Uint32(buf[p+4+hlen:]))
	dataOff = p + 8 + hlen
	if dlen > len(buf)-dataOff || dlen < 0 {
		return h, 0, 0, 0, fmt.Errorf("%w: data of %d bytes overruns the chunk", ErrCorrupt, dlen)
	}
	if h, err = parseHeader(buf[p+4 : p+4+hlen]); err != nil {
		return h, 0, 0, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if h.op == 0 {
		return h, 0, 0, 0, fmt.Errorf("%w: record has no op field", ErrCorrupt)
	}
	return h, dataOff, dlen, dataOff + dlen, nil
}

// recordHeader is a parsed record header: "key=value" fields, each preceded by its length.
type recordHeader struct {
	op     byte
	fields map[string][]byte
}

func parseHeader(b []byte) (recordHeader, error) {
	h := recordHeader{fields: map[string][]byte{}}
	for p := 0; p < len(b); {
		if len(b)-p < 4 {
			return h, fmt.Errorf("header field length cut short")
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
			return h, fmt.Errorf("header field %q has no '='", truncate(f))
		}
		h.fields[string(f[:eq])] = f[eq+1:]
	}
	if op, ok := h.fields["op"]; ok {
		if len(op) != 1 {
			return h, fmt.Errorf("op field of %d bytes", len(op))
		}
		h.op = op[0]
	}
	return h, nil
}

func truncate(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func (h recordHeader) str(k string) (string, bool) {
	v, ok := h.fields[k]
	return string(v), ok
}

func (h recordHeader) u32(k string) (uint32, bool) {
	v, ok := h.fields[k]
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v), true
}

func (h recordHeader) u64(k string) (uint64, bool) {
	v, ok := h.fields[k]
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(v), true
}

// time decodes a ROS time field (seconds, nanoseconds as uint32s) to ns since the epoch.
func (h recordHeader) time(k string) (int64, bool) {
	v, ok := h.fields[k]
	if !ok || len(v) != 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint32(v))*1e9 + int64(binary.LittleEndian.Uint32(v[4:])), true
}
