package episode_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	rosbag "github.com/foxglove/go-rosbag"
	"github.com/pierrec/lz4/v4"

	"robodistill/control/episode"
	"robodistill/control/episode/episodetest"
)

// FuzzReadBag feeds arbitrary bytes to the bag reader and the step assembly: they must
// return an error or steps, never panic or allocate without bound.
func FuzzReadBag(f *testing.F) {
	for _, o := range []episodetest.Options{
		{Steps: 1, Size: 1},
		{Steps: 2, Size: 1, Bridge: true, Namespace: "r"},
	} {
		data, err := os.ReadFile(writeBag(f, o, 0))
		if err != nil {
			f.Fatal(err)
		}
		// Small seeds keep the fuzzer's minimization of new inputs quick (a full bag's
		// 4 KiB header padding made it spend minutes per input); TestBadBags covers
		// truncations and corruptions of full-size bags.
		f.Add(compactBag(f, data, false))
		f.Add(compactBag(f, data, true))
	}
	f.Add([]byte("#ROSBAG V2.0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := episode.ReadBag("fuzz.bag", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = b.Topics()
		eps, err := b.Episodes(episode.ReadOptions{})
		if err != nil {
			return
		}
		for _, e := range eps {
			for s, err := range e.Steps() {
				if err != nil {
					break
				}
				_ = s.Frame.RGB()
			}
		}
	})
}

// compactBag rewrites a bag without the header padding, the message definitions and the
// index, in one chunk (lz4-compressed with compress): the reader needs none of them.
func compactBag(t testing.TB, plain []byte, compress bool) []byte {
	t.Helper()
	r, err := rosbag.NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	it, err := r.Messages(rosbag.ScanLinear(true))
	if err != nil {
		t.Fatal(err)
	}
	var chunk bytes.Buffer
	seen := map[uint32]bool{}
	for it.More() {
		c, m, err := it.Next()
		if err != nil {
			break
		}
		if !seen[c.Conn] {
			seen[c.Conn] = true
			record(&chunk, fields("op", []byte{7}, "conn", u32(c.Conn), "topic", []byte(c.Topic)),
				fields("type", []byte(c.Data.Type), "md5sum", []byte(c.Data.MD5Sum)))
		}
		record(&chunk, fields("op", []byte{2}, "conn", u32(m.Conn), "time", u64(m.Time/1e9|(m.Time%1e9)<<32)), m.Data)
	}
	var out bytes.Buffer
	out.WriteString("#ROSBAG V2.0\n")
	record(&out, fields("op", []byte{3}, "index_pos", u64(0), "conn_count", u32(0), "chunk_count", u32(0)), nil)
	data, comp := chunk.Bytes(), "none"
	if compress {
		var z bytes.Buffer
		zw := lz4.NewWriter(&z)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		comp = "lz4"
		record(&out, fields("op", []byte{5}, "compression", []byte(comp), "size", u32(uint32(len(data)))), z.Bytes())
		return out.Bytes()
	}
	record(&out, fields("op", []byte{5}, "compression", []byte(comp), "size", u32(uint32(len(data)))), data)
	return out.Bytes()
}

func record(w *bytes.Buffer, header, data []byte) {
	w.Write(u32(uint32(len(header))))
	w.Write(header)
	w.Write(u32(uint32(len(data))))
	w.Write(data)
}

func fields(kv ...any) []byte {
	var b bytes.Buffer
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i].(string), kv[i+1].([]byte)
		b.Write(u32(uint32(len(k) + 1 + len(v))))
		b.WriteString(k + "=")
		b.Write(v)
	}
	return b.Bytes()
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// The compact seeds are bags the reader accepts, with the same steps.
func TestCompactSeeds(t *testing.T) {
	o := episodetest.Options{Steps: 3, Size: 2, Bridge: true}
	plain, err := os.ReadFile(writeBag(t, o, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, lz := range []bool{false, true} {
		data := compactBag(t, plain, lz)
		b, err := episode.ReadBag("seed", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		eps, err := b.Episodes(episode.ReadOptions{})
		if err != nil || len(eps) != 1 || eps[0].Len() != 3 || b.Indexed() {
			t.Fatalf("lz4 %v: %v", lz, err)
		}
		for s, err := range eps[0].Steps() {
			if err != nil {
				t.Fatal(err)
			}
			checkStep(t, o, 0, s, false, true)
		}
	}
}
