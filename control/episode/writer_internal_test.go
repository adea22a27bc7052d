package episode

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msg"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
)

// The index data entries of a written bag carry ROS times equal to their messages' (see
// fixIndexTimes): Debian's rosbag play paces playback by them.
func TestIndexTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.bag")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1, 0)
	for i := 0; i < 3000; i++ { // several chunks
		at := start.Add(time.Duration(i) * 12500 * time.Microsecond)
		if err := w.Write("/a", at, &std_msgs.String{Data: string(make([]byte, 300))}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := w.Write("/b", at.Add(time.Millisecond), &std_msgs.Float64{Data: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(path)
	b := &Bag{r: bytes.NewReader(data), size: int64(len(data)), cachePos: -1}
	var chunk []byte
	entries, chunks := 0, 0
	for pos := int64(len(bagMagic)); pos < b.size; {
		rec, err := b.recordAt(pos)
		if err != nil {
			t.Fatal(err)
		}
		body := data[rec.dataOff : rec.dataOff+rec.dataLen]
		switch rec.header.op {
		case opChunk:
			chunk = body
			chunks++
		case opIndexData:
			for i := 0; i+12 <= len(body); i += 12 {
				secs, nsecs := binary.LittleEndian.Uint32(body[i:]), binary.LittleEndian.Uint32(body[i+4:])
				off := int(binary.LittleEndian.Uint32(body[i+8:]))
				h, _, _, _, err := parseRecord(chunk, off)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := h.time("time")
				if got := int64(secs)*1e9 + int64(nsecs); got != want || nsecs >= 1e9 {
					t.Fatalf("index entry at chunk offset %d: %d.%09d, message at %d ns", off, secs, nsecs, want)
				}
				entries++
			}
		}
		pos = rec.next
	}
	if chunks < 2 || entries != 4000 {
		t.Fatalf("%d chunks, %d index entries", chunks, entries)
	}
}

// typeTestMsg is described by no other test, so TestTypeOfConcurrent sees it uncached.
type typeTestMsg struct {
	msg.Package `ros:"robodistill_test"`
	Data        int32
}

// Goroutines describing a type for the first time at once get one description: writers
// compare types by pointer (two collect workers once failed with "message type
// geometry_msgs/PoseStamped, but the topic carries geometry_msgs/PoseStamped"). Each round
// forgets the type and releases the goroutines together.
func TestTypeOfConcurrent(t *testing.T) {
	const n, rounds = 8, 200
	rt := reflect.TypeOf(&typeTestMsg{})
	got := make([]*msgType, n)
	for r := range rounds {
		msgTypes.Delete(rt)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				mt, err := typeOf(&typeTestMsg{})
				if err != nil {
					t.Error(err)
				}
				got[i] = mt
			}()
		}
		close(start)
		wg.Wait()
		for i, mt := range got {
			if mt != got[0] {
				t.Fatalf("round %d: goroutine %d got description %p, goroutine 0 %p", r, i, mt, got[0])
			}
		}
	}
}
