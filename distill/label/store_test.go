package label

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testRecord(i int) Record {
	f := func(s string, n int) string { return fmt.Sprintf("%s%062d", s, n) }
	r := Record{
		V: RecordVersion, A: f("aa", i), B: f("bb", i),
		AEpisode: "fill-000", AStep: i, BEpisode: "fill-001", BStep: 2 * i,
		Task: "fill", Goal: "Fill the bar.",
		Labeler: LabelerInfo{Kind: "teacher", Spec: "mistake:0.2", Params: map[string]float64{"mistake": 0.2}, Seed: 7},
		Answer:  []Answer{First, Second, Tie, Abstain}[i%4], Confidence: 0.8,
		Truth: &Truth{A: float64(i), B: 1.5, ASuccess: i > 3},
		Time:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
	if i%3 == 1 {
		yes := i%2 == 1
		r.Labeler = LabelerInfo{Kind: "vlm", Spec: "vlm", Model: "fake-vlm", Endpoint: "http://127.0.0.1", PromptVersion: "pairwise-v1/two-stage",
			PromptDigest: "0123456789ab", Params: map[string]float64{"orders": 2, "samples": 1, "temperature": 0}, OnDisagree: "tie"}
		r.Votes = &Votes{First: 1, Second: 1}
		r.Consistent = &yes
		r.Orders = []OrderResult{
			{Shown: OrderAB, Verdict: ChoiceFirst, Answers: []Sample{{Raw: `{"answer": "first"}`, Analysis: "Image 1: full.", Parsed: ChoiceFirst}}},
			{Shown: OrderBA, Verdict: ChoiceSecond, Answers: []Sample{{Raw: "Image 1\n\"quoted\"", Parsed: ChoiceFirst, Retried: true, Cached: true}}},
		}
		r.Usage = &Usage{Requests: 3, Cached: 1, PromptTokens: 600, CompletionTokens: 20, CostUSD: 0.0012}
	}
	return r
}

func TestStoreGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r := testRecord(i)
		if err := s.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	golden := filepath.Join("testdata", "labels.golden.jsonl")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("label file differs from %s (rerun with -update if the change is intended):\n%s", golden, got)
	}
	recs, err := ReadFile(golden)
	if err != nil || len(recs) != 5 {
		t.Fatalf("ReadFile: %d records, %v", len(recs), err)
	}
	if recs[1].Orders[1].Answers[0].Raw != "Image 1\n\"quoted\"" || recs[1].Orders[1].Shown != OrderBA || *recs[1].Consistent != true {
		t.Errorf("round trip: %+v", recs[1])
	}
}

func TestStoreResumeAndDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "labels.jsonl")
	s, err := OpenStore(path, StoreOptions{SyncEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r0, r2 := testRecord(0), testRecord(2)
	for _, r := range []*Record{&r0, &r2} {
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	dup := testRecord(0)
	dup.A, dup.B = dup.B, dup.A // the same question in the other order
	if err := s.Append(&dup); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate append: %v", err)
	}
	if _, err := OpenStore(path, StoreOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	s.Close()
	if err := s.Append(&r0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	s, err = OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lk := r0.Labeler.Key()
	if s.Len() != 2 || s.Count(lk) != 2 || !s.Has(lk, Pair{A: Segment{{Hash: r0.B}}, B: Segment{{Hash: r0.A}}}) {
		t.Fatalf("reopened: len %d count %d", s.Len(), s.Count(lk))
	}
	if s.Has("other labeller", Pair{A: Segment{{Hash: r0.A}}, B: Segment{{Hash: r0.B}}}) {
		t.Fatal("Has is not per labeller")
	}
	bad := testRecord(5)
	bad.Answer = "maybe"
	if err := s.Append(&bad); err == nil || !strings.Contains(err.Error(), `answer: "maybe" is not first, second, tie or abstain`) {
		t.Fatalf("invalid record: %v", err)
	}
}

// TestStoreTornTail simulates a crash at every byte of the last records: OpenStore must
// keep exactly the complete records, drop the partial one, and append after them.
func TestStoreTornTail(t *testing.T) {
	dir := t.TempDir()
	var full bytes.Buffer
	var ends []int
	for i := 0; i < 4; i++ {
		r := testRecord(i)
		path := filepath.Join(dir, "full.jsonl")
		s, err := OpenStore(path, StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(&r); err != nil {
			t.Fatal(err)
		}
		s.Close()
		b, _ := os.ReadFile(path)
		full.Reset()
		full.Write(b)
		ends = append(ends, len(b))
	}
	data := full.Bytes()
	for cut := ends[1]; cut <= len(data); cut++ {
		path := filepath.Join(dir, fmt.Sprintf("cut%d.jsonl", cut))
		os.WriteFile(path, data[:cut], 0o644)
		s, err := OpenStore(path, StoreOptions{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		complete := 0
		for _, e := range ends {
			if e <= cut {
				complete++
			}
		}
		if s.Len() != complete || s.Dropped() != int64(cut-ends[complete-1]) {
			t.Fatalf("cut at %d: %d records, dropped %d; want %d, %d", cut, s.Len(), s.Dropped(), complete, cut-ends[complete-1])
		}
		r := testRecord(complete)
		if err := s.Append(&r); err != nil {
			t.Fatalf("cut at %d: append: %v", cut, err)
		}
		s.Close()
		recs, err := ReadFile(path)
		if err != nil || len(recs) != complete+1 {
			t.Fatalf("cut at %d: after resume %d records, %v", cut, len(recs), err)
		}
		os.Remove(path)
	}
}

func TestStoreCorruptLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	r := testRecord(0)
	s, _ := OpenStore(path, StoreOptions{})
	s.Append(&r)
	s.Close()
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(append([]byte("{\"v\":1}\n"), b...), b...), 0o644)
	_, err := OpenStore(path, StoreOptions{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Line != 1 || !strings.Contains(err.Error(), "line 1 (byte 0): a, b: a frame hash is missing") {
		t.Fatalf("corrupt first line: %v", err)
	}
	os.WriteFile(path, append(append([]byte{}, b...), b...), 0o644)
	if _, err := ReadFile(path); err != nil {
		t.Fatalf("duplicate lines are readable (the store refuses to write them): %v", err)
	}
}

// FuzzReader: the reader never panics, never returns an invalid record, and its offset
// never passes the input.
func FuzzReader(f *testing.F) {
	golden, _ := os.ReadFile(filepath.Join("testdata", "labels.golden.jsonl"))
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"v":1,"a":"x","b":"y","labeler":{"kind":"teacher"},"answer":"tie","confidence":1}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		for i := 0; i < 1000; i++ {
			rec, err := rd.Next()
			if rd.Offset() > int64(len(data)) {
				t.Fatalf("offset %d past %d bytes", rd.Offset(), len(data))
			}
			if err != nil {
				var ce *CorruptError
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTorn) && !errors.As(err, &ce) {
					t.Fatalf("unexpected error %T %v", err, err)
				}
				return
			}
			if err := rec.Validate(); err != nil {
				t.Fatalf("returned an invalid record: %v", err)
			}
		}
	})
}
