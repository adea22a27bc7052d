package episode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	rosbag "github.com/foxglove/go-rosbag"
)

// ChunkSize is the uncompressed chunk size of written bags (rosbag record's default).
const ChunkSize = 768 << 10

// Writer writes one bag: uncompressed chunks (Debian's rosbag reads lz4 only with roslz4,
// and frames barely compress), one connection per topic, messages in the order written.
// Close writes the index and fixes the bag header, which is why the output must seek.
type Writer struct {
	f      File
	bw     *rosbag.Writer
	topics map[string]*topicConn
	buf    bytes.Buffer
	msg    rosbag.Message
	count  int
	closed bool
}

type topicConn struct {
	id uint32
	t  *msgType
}

// File is what a Writer writes to: an *os.File opened for reading and writing.
type File interface {
	io.WriteSeeker
	io.ReaderAt
	io.WriterAt
}

// NewWriter starts a bag on f.
func NewWriter(f File) (*Writer, error) {
	bw, err := rosbag.NewWriter(f, rosbag.WithCompression(rosbag.CompressionNone), rosbag.WithChunksize(ChunkSize))
	if err != nil {
		return nil, fmt.Errorf("episode.NewWriter: %w", err)
	}
	return &Writer{f: f, bw: bw, topics: map[string]*topicConn{}}, nil
}

// WriteMeta writes the metadata message on MetaTopic; write it first, at the time of the
// episode's first step.
func (w *Writer) WriteMeta(t time.Time, m Meta) error {
	m.Format, m.Version = Format, Version
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("episode.WriteMeta: %w", err)
	}
	return w.Write(MetaTopic, t, &std_msgs.String{Data: string(b)})
}

// Write appends msg (a pointer to a goroslib message struct) on topic at bag time t. A
// topic keeps the type of its first message.
func (w *Writer) Write(topic string, t time.Time, msg any) error {
	if w.closed {
		return fmt.Errorf("episode.Write %s: writer closed", topic)
	}
	if t.Before(time.Unix(0, 0)) {
		return fmt.Errorf("episode.Write %s: time %v is before 1970, which ROS time cannot hold", topic, t)
	}
	mt, err := typeOf(msg)
	if err != nil {
		return fmt.Errorf("episode.Write %s: %w", topic, err)
	}
	c, ok := w.topics[topic]
	if !ok {
		c = &topicConn{id: uint32(len(w.topics)), t: mt}
		if err := w.bw.WriteConnection(&rosbag.Connection{
			Conn:  c.id,
			Topic: topic,
			Data: rosbag.ConnectionHeader{
				Topic: topic, Type: mt.name, MD5Sum: mt.md5, MessageDefinition: []byte(mt.definition),
			},
		}); err != nil {
			return fmt.Errorf("episode.Write %s: %w", topic, err)
		}
		w.topics[topic] = c
	} else if c.t != mt {
		return fmt.Errorf("episode.Write %s: message type %s, but the topic carries %s", topic, mt.name, c.t.name)
	}
	data, err := encodeMsg(&w.buf, msg)
	if err != nil {
		return fmt.Errorf("episode.Write %s: %w", topic, err)
	}
	w.msg = rosbag.Message{Conn: c.id, Time: uint64(t.UnixNano()), Data: data}
	if err := w.bw.WriteMessage(&w.msg); err != nil {
		return fmt.Errorf("episode.Write %s: %w", topic, err)
	}
	w.count++
	return nil
}

// Messages is the number of messages written.
func (w *Writer) Messages() int { return w.count }

// Close writes the last chunk and the index and points the bag header at the index. It
// does not close or sync the underlying file.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.bw.Close(); err != nil {
		return fmt.Errorf("episode.Writer.Close: %w", err)
	}
	end, err := w.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("episode.Writer.Close: %w", err)
	}
	if err := fixIndexTimes(w.f, end); err != nil {
		return fmt.Errorf("episode.Writer.Close: %w", err)
	}
	return nil
}

// fixIndexTimes rewrites the times in the index data records that go-rosbag v0.0.6 writes
// as plain nanoseconds (its writeIndexData) instead of ROS times (uint32 seconds, uint32
// nanoseconds), which its own reader and the bag format expect. Debian's C++ `rosbag play`
// orders and paces playback by those entries: a bag starting at 1 s showed a
// 962500000-second duration and stalled. TestIndexTimes checks the written entries
// against the message records, so an upgrade that fixes go-rosbag fails loudly here.
func fixIndexTimes(f File, size int64) error {
	b := &Bag{name: "written bag", r: f, size: size, cachePos: -1}
	for pos := int64(len(bagMagic)); pos < size; {
		rec, err := b.recordAt(pos)
		if err != nil {
			return err
		}
		if rec.header.op == opIndexData {
			data := make([]byte, rec.dataLen)
			if _, err := f.ReadAt(data, rec.dataOff); err != nil {
				return err
			}
			for i := 0; i+12 <= len(data); i += 12 {
				ns := binary.LittleEndian.Uint64(data[i:])
				binary.LittleEndian.PutUint32(data[i:], uint32(ns/1e9))
				binary.LittleEndian.PutUint32(data[i+4:], uint32(ns%1e9))
			}
			if _, err := f.WriteAt(data, rec.dataOff); err != nil {
				return err
			}
		}
		pos = rec.next
	}
	return nil
}
