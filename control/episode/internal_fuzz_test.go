package episode

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIndexLines: the index parser takes any bytes.
func FuzzIndexLines(f *testing.F) {
	f.Add([]byte(`{"episode":0,"file":"episodes/episode-000000.bag","bytes":5,"seed":1,"steps":1,"success":false,"return":0,"first_success":-1,"frames":[{"h":"f410d300eb73a356a0696370582e2254a7c7873721642fc26cb7dba00ef821b7","o":5138}]}` + "\n{\"episode\":1,"))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, good, bad := indexLines(data)
		if good > len(data) || len(bad) > bytes.Count(data, []byte("\n")) {
			t.Fatalf("good %d of %d, %d bad", good, len(data), len(bad))
		}
		for _, e := range entries {
			if !e.plausible() {
				t.Fatalf("implausible entry accepted: %+v", e)
			}
		}
	})
}

// FuzzFrameRef: a frame reference from a damaged index points anywhere in a bag.
func FuzzFrameRef(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "episode.bag.golden"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(int64(5138), int64(0))
	f.Add(int64(40), int64(4117))
	f.Add(int64(-1), int64(-7))
	f.Fuzz(func(t *testing.T, rec, chunk int64) {
		b := &Bag{name: "x", r: bytes.NewReader(data), size: int64(len(data)), cachePos: -1}
		_, _ = b.FrameAt(FrameRef{Rec: rec, Chunk: chunk})
	})
}
