package episode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Entry is one line of a collection's index (index.jsonl): a completed episode, what the
// simulator said about it, and where each of its frames is.
type Entry struct {
	Episode int    `json:"episode"`
	File    string `json:"file"`  // relative to the collection folder
	Bytes   int64  `json:"bytes"` // the bag's size
	Seed    uint64 `json:"seed"`
	// Steps is the number of recorded steps (frames, including the reset frame).
	Steps int `json:"steps"`
	// Success, Return and FirstSuccess come from the episode status topic: success in
	// any frame, the sum of MetaWorld's rewards over the simulator steps, and the first
	// step in which the task was solved (-1: never).
	Success      bool    `json:"success"`
	Return       float64 `json:"return"`
	FirstSuccess int     `json:"first_success"`
	// Frames holds every step's frame hash and position, in step order.
	Frames []FrameRef `json:"frames"`
}

// FrameRef locates a step's image message in its bag: Rec is the file offset of its
// message record, or, when the message sits in a compressed chunk, Chunk is the chunk
// record's offset and Rec the record's offset in the chunk's uncompressed data.
type FrameRef struct {
	Hash  Hash  `json:"h"`
	Rec   int64 `json:"o"`
	Chunk int64 `json:"c,omitempty"`
}

// Summarize reads every step of e (decoding every message, so it also proves the episode
// readable) and returns its index entry; File and Bytes are left for the caller.
func Summarize(e *Episode) (Entry, error) {
	en := Entry{Episode: e.Number, Steps: e.Len(), FirstSuccess: -1, Frames: make([]FrameRef, 0, e.Len())}
	if e.Meta != nil {
		en.Seed = e.Meta.Seed
	}
	seeded := e.Meta != nil
	for s, err := range e.Steps() {
		if err != nil {
			return en, err
		}
		m := &e.bag.msgs[e.steps[s.Index].image]
		en.Frames = append(en.Frames, FrameRef{Hash: s.Hash, Rec: m.rec, Chunk: m.chunk})
		if st := s.Status; st != nil {
			if !seeded {
				en.Seed, seeded = st.Seed, true
			}
			if s.Index > 0 {
				en.Return += st.Reward
			}
			if st.Success && !en.Success {
				en.Success, en.FirstSuccess = true, s.Index
			}
		}
	}
	return en, nil
}

// EpisodeFile is the bag file name of episode n in a collection.
func EpisodeFile(n int) string { return filepath.Join("episodes", fmt.Sprintf("episode-%06d.bag", n)) }

// episodeNumber parses a name made by EpisodeFile.
func episodeNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(filepath.Base(name), "episode-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".bag")
	if !ok || len(s) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// indexBag opens the collection bag rel under dir and summarises it. The bag must hold
// exactly one episode whose number is the file's.
func indexBag(dir, rel string) (Entry, error) {
	n, ok := episodeNumber(rel)
	if !ok {
		return Entry{}, fmt.Errorf("%s is not named like %s", rel, EpisodeFile(0))
	}
	b, err := OpenBag(filepath.Join(dir, rel))
	if err != nil {
		return Entry{}, err
	}
	defer b.Close()
	if !b.Indexed() {
		return Entry{}, fmt.Errorf("episode: bag %s: %w: the bag header does not point at an index", b.name, ErrTruncated)
	}
	eps, err := b.Episodes(ReadOptions{})
	if err != nil {
		return Entry{}, err
	}
	if len(eps) != 1 {
		return Entry{}, fmt.Errorf("episode: bag %s holds %d episodes, a collection's bag holds one", b.name, len(eps))
	}
	if eps[0].Meta != nil && eps[0].Meta.Episode != n {
		return Entry{}, fmt.Errorf("episode: bag %s: its metadata says episode %d", b.name, eps[0].Meta.Episode)
	}
	eps[0].Number = n
	en, err := Summarize(eps[0])
	if err != nil {
		return Entry{}, err
	}
	en.File, en.Bytes = rel, b.Size()
	return en, nil
}

// indexLines parses index.jsonl. A last line without its newline (a write cut short) is
// dropped; good is the length of the intact prefix. A line that does not parse is
// reported in bad by its number and skipped.
func indexLines(data []byte) (entries []Entry, good int, bad []int) {
	line := 0
	for len(data[good:]) > 0 {
		rest := data[good:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // torn last line
		}
		line++
		text := bytes.TrimSpace(rest[:nl])
		good += nl + 1
		if len(text) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(text, &e); err != nil || !e.plausible() {
			bad = append(bad, line)
			continue
		}
		entries = append(entries, e)
	}
	return entries, good, bad
}

// plausible checks what a line can be checked for without its bag.
func (e *Entry) plausible() bool {
	n, ok := episodeNumber(e.File)
	return ok && n == e.Episode && e.File == EpisodeFile(n) && e.Steps == len(e.Frames) && e.Bytes > 0
}

// compareEntries explains how a bag's entry differs from the index's.
func compareEntries(index, bag Entry) error {
	var diffs []string
	add := func(field string, a, b any) {
		diffs = append(diffs, fmt.Sprintf("%s %v in the index, %v in the bag", field, a, b))
	}
	if index.Episode != bag.Episode {
		add("episode", index.Episode, bag.Episode)
	}
	if index.Bytes != bag.Bytes {
		add("size", index.Bytes, bag.Bytes)
	}
	if index.Seed != bag.Seed {
		add("seed", index.Seed, bag.Seed)
	}
	if index.Steps != bag.Steps {
		add("steps", index.Steps, bag.Steps)
	}
	if index.Success != bag.Success {
		add("success", index.Success, bag.Success)
	}
	if index.Return != bag.Return {
		add("return", index.Return, bag.Return)
	}
	if index.FirstSuccess != bag.FirstSuccess {
		add("first_success", index.FirstSuccess, bag.FirstSuccess)
	}
	for i := range min(len(index.Frames), len(bag.Frames)) {
		if index.Frames[i] != bag.Frames[i] {
			add(fmt.Sprintf("frame %d", i), index.Frames[i], bag.Frames[i])
			break
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", index.File, strings.Join(diffs, "; "))
}

// bagFiles lists the episode bags under dir/episodes (relative names, sorted).
func bagFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "episodes"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, ok := episodeNumber(e.Name()); ok && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join("episodes", e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Episode < es[j].Episode })
}
