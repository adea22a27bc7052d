package translog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// The ROS bag v2.0 records this package writes (http://wiki.ros.org/Bags/Format/2.0).
const (
	opMessage    = 0x02
	opBagHeader  = 0x03
	opIndexData  = 0x04
	opChunk      = 0x05
	opChunkInfo  = 0x06
	opConnection = 0x07
)

var bagMagic = []byte("#ROSBAG V2.0\n")

const (
	// bagHeaderLen is the bag header record's length: rosbag (C++, Python, go-rosbag)
	// pads its header and data to 4096 bytes, and rewrites the record in place when it
	// finishes or reindexes a bag, so the length must be exactly theirs.
	bagHeaderLen = 8 + 4096
	// chunkPrefix is the framing of a chunk record ahead of its data: header length, a
	// header of op, compression=none and size (41 bytes), data length.
	chunkPrefix = 4 + 41 + 4
	// msgHeaderLen is a message record's header: op, conn and time.
	msgHeaderLen = (4 + 3 + 1) + (4 + 5 + 4) + (4 + 5 + 8)
)

func appendField(b []byte, name string, value []byte) []byte {
	b = appendU32(b, uint32(len(name)+1+len(value)))
	b = append(b, name...)
	b = append(b, '=')
	return append(b, value...)
}

func appendFieldU32(b []byte, name string, v uint32) []byte {
	b = appendU32(b, uint32(len(name)+1+4))
	b = append(b, name...)
	b = append(b, '=')
	return appendU32(b, v)
}

func appendFieldU64(b []byte, name string, v uint64) []byte {
	b = appendU32(b, uint32(len(name)+1+8))
	b = append(b, name...)
	b = append(b, '=')
	return appendU64(b, v)
}

func appendFieldTime(b []byte, name string, ns int64) []byte {
	b = appendU32(b, uint32(len(name)+1+8))
	b = append(b, name...)
	b = append(b, '=')
	return appendNanos(b, ns)
}

func appendFieldOp(b []byte, op byte) []byte {
	return append(appendU32(b, 4), 'o', 'p', '=', op)
}

// appendRecord appends a record whose header is built by hdr and whose data is data.
func appendRecord(b []byte, hdr func([]byte) []byte, data []byte) []byte {
	at := len(b)
	b = hdr(appendU32(b, 0))
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	b = appendU32(b, uint32(len(data)))
	return append(b, data...)
}

// bagHeader builds the bag header record, bagHeaderLen bytes long.
func bagHeader(indexPos uint64, conns, chunks uint32) []byte {
	b := appendRecord(nil, func(b []byte) []byte {
		b = appendFieldOp(b, opBagHeader)
		b = appendFieldU64(b, "index_pos", indexPos)
		b = appendFieldU32(b, "conn_count", conns)
		return appendFieldU32(b, "chunk_count", chunks)
	}, nil)
	pad := bagHeaderLen - len(b) // data padding = 4096 − header length
	binary.LittleEndian.PutUint32(b[len(b)-4:], uint32(pad))
	for range pad {
		b = append(b, ' ')
	}
	return b
}

// connectionRecord builds a connection record.
func connectionRecord(id uint32, topic string, t msgType) []byte {
	var data []byte
	data = appendField(data, "topic", []byte(topic))
	data = appendField(data, "type", []byte(t.name))
	data = appendField(data, "md5sum", []byte(t.md5))
	data = appendField(data, "message_definition", []byte(t.def))
	return appendRecord(nil, func(b []byte) []byte {
		b = appendFieldOp(b, opConnection)
		b = appendFieldU32(b, "conn", id)
		return appendField(b, "topic", []byte(topic))
	}, data)
}

type indexEntry struct {
	t   int64  // bag time, ns
	off uint32 // the message record's offset in the chunk's data
}

type connCount struct{ conn, count uint32 }

type chunkInfo struct {
	pos        int64
	start, end int64 // bag times, ns
	counts     []connCount
}

// conn is one connection of a bag: its record is written into the chunk of its first
// message and again in the index section.
type conn struct {
	topic string
	rec   []byte
}

// bagWriter writes one bag: uncompressed chunks, each written with its index data
// records in one write and fsynced, then the index section and the bag header when
// finished. Until then the bag header's index_pos is 0: the bag is unindexed, and what
// was flushed reads with control/episode, `rosbag reindex` or Recover.
type bagWriter struct {
	f      *os.File
	path   string
	size   int64 // bytes in the file
	conns  []conn
	byName map[string]uint32

	chunk   []byte         // chunkPrefix reserved bytes, then the chunk's records
	idx     [][]indexEntry // per connection, this chunk's messages
	used    []uint32       // connections with messages in this chunk, in first-use order
	first   int64          // bag time range of this chunk's messages
	last    int64
	opened  time.Time // wall time of the chunk's first record (zero: empty chunk)
	infos   []chunkInfo
	flushes int // chunks written
}

// createBag creates path (which must not exist) and writes the unindexed bag header;
// buf's capacity becomes the chunk buffer.
func createBag(path string, buf []byte) (*bagWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	w := &bagWriter{f: f, path: path, byName: map[string]uint32{}, chunk: buf[:chunkPrefix]}
	head := append(slices.Clip(bagMagic), bagHeader(0, 0, 0)...)
	if _, err := f.WriteAt(head, 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.size = int64(len(head))
	return w, nil
}

// connID returns the connection of topic, defining it in the current chunk if new.
func (w *bagWriter) connID(topic string, t msgType) uint32 {
	if id, ok := w.byName[topic]; ok {
		return id
	}
	id := uint32(len(w.conns))
	rec := connectionRecord(id, topic, t)
	w.conns = append(w.conns, conn{topic: topic, rec: rec})
	w.byName[topic] = id
	w.idx = append(w.idx, nil)
	w.chunk = append(w.chunk, rec...)
	return id
}

// beginMsg appends a message record's header and a placeholder data length, and
// returns the placeholder's position for endMsg.
func (w *bagWriter) beginMsg(id uint32, ns int64) int {
	if w.opened.IsZero() {
		w.opened = time.Now()
	}
	if len(w.used) == 0 {
		w.first, w.last = ns, ns
	}
	if len(w.idx[id]) == 0 {
		w.used = append(w.used, id)
	}
	w.idx[id] = append(w.idx[id], indexEntry{t: ns, off: uint32(len(w.chunk) - chunkPrefix)})
	w.first, w.last = min(w.first, ns), max(w.last, ns)
	b := appendU32(w.chunk, msgHeaderLen)
	b = appendFieldOp(b, opMessage)
	b = appendFieldU32(b, "conn", id)
	b = appendFieldTime(b, "time", ns)
	at := len(b)
	w.chunk = appendU32(b, 0)
	return at
}

// endMsg fills in the data length of the message begun at at.
func (w *bagWriter) endMsg(at int) {
	binary.LittleEndian.PutUint32(w.chunk[at:], uint32(len(w.chunk)-at-4))
}

// empty reports whether the current chunk holds no records.
func (w *bagWriter) empty() bool { return len(w.chunk) == chunkPrefix }

// flush writes the current chunk and its index data records in one write and fsyncs.
func (w *bagWriter) flush() error {
	if w.empty() {
		return nil
	}
	b := w.chunk[:0]
	b = appendU32(b, 41)
	b = appendFieldOp(b, opChunk)
	b = appendField(b, "compression", []byte("none"))
	b = appendFieldU32(b, "size", uint32(len(w.chunk)-chunkPrefix))
	b = appendU32(b, uint32(len(w.chunk)-chunkPrefix))
	if len(b) != chunkPrefix {
		panic("translog: chunk prefix length")
	}
	slices.Sort(w.used)
	info := chunkInfo{pos: w.size, start: w.first, end: w.last, counts: make([]connCount, 0, len(w.used))}
	for _, id := range w.used {
		w.chunk = appendIndexData(w.chunk, id, w.idx[id])
		info.counts = append(info.counts, connCount{conn: id, count: uint32(len(w.idx[id]))})
	}
	if _, err := w.f.WriteAt(w.chunk, w.size); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.size += int64(len(w.chunk))
	w.infos = append(w.infos, info)
	w.flushes++
	w.reset()
	return nil
}

func (w *bagWriter) reset() {
	w.chunk = w.chunk[:chunkPrefix]
	for _, id := range w.used {
		w.idx[id] = w.idx[id][:0]
	}
	w.used = w.used[:0]
	w.first, w.last = 0, 0
	w.opened = time.Time{}
}

// appendIndexData appends the index data record of one connection in one chunk.
func appendIndexData(b []byte, id uint32, entries []indexEntry) []byte {
	at := len(b)
	b = appendU32(b, 0)
	b = appendFieldOp(b, opIndexData)
	b = appendFieldU32(b, "ver", 1)
	b = appendFieldU32(b, "conn", id)
	b = appendFieldU32(b, "count", uint32(len(entries)))
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	b = appendU32(b, uint32(12*len(entries)))
	for _, e := range entries {
		b = appendNanos(b, e.t)
		b = appendU32(b, e.off)
	}
	return b
}

// writeIndex writes the index section (every connection record, then a chunk info
// record per chunk) at the end of the file, points the bag header at it and fsyncs.
func (w *bagWriter) writeIndex() error {
	var b []byte
	for _, c := range w.conns {
		b = append(b, c.rec...)
	}
	for _, ci := range w.infos {
		var data []byte
		for _, c := range ci.counts {
			data = appendU32(appendU32(data, c.conn), c.count)
		}
		b = appendRecord(b, func(b []byte) []byte {
			b = appendFieldOp(b, opChunkInfo)
			b = appendFieldU32(b, "ver", 1)
			b = appendFieldU64(b, "chunk_pos", uint64(ci.pos))
			b = appendFieldTime(b, "start_time", ci.start)
			b = appendFieldTime(b, "end_time", ci.end)
			return appendFieldU32(b, "count", uint32(len(ci.counts)))
		}, data)
	}
	indexPos := w.size
	if _, err := w.f.WriteAt(b, indexPos); err != nil {
		return err
	}
	w.size += int64(len(b))
	// The index must be durable before the header points at it.
	if err := w.f.Sync(); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(bagHeader(uint64(indexPos), uint32(len(w.conns)), uint32(len(w.infos))), int64(len(bagMagic))); err != nil {
		return err
	}
	return w.f.Sync()
}

// finish writes the last chunk and the index, and closes the file.
func (w *bagWriter) finish() error {
	err := w.flush()
	if err == nil {
		err = w.writeIndex()
	}
	return errors.Join(err, w.close())
}

// close closes the file without finishing the bag (it stays recoverable).
func (w *bagWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// syncDir makes a folder's entries (a created or renamed file) durable.
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
