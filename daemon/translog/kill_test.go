package translog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"robodistill/control/episode"
)

const helperEnv = "ROBODISTILL_TRANSLOG_HELPER_DIR"

// killFirstEpisode is the length of the helper's first episode (1.5 s at 50 Hz).
const killFirstEpisode = 75

func lookRosbag() (string, error) { return exec.LookPath("rosbag") }

// TestHelperLog is the process TestKill9 kills: with the environment naming a folder, it
// logs 64×64 transitions at 50 Hz with the default configuration (FlushEvery 1 s) until
// killed, printing "R i" after Record accepted transition i ("D i" if it dropped it).
func TestHelperLog(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	l, err := New(Config{Dir: dir, Namespace: "/robot"}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	src := newSource(64, 64)
	tick := time.NewTicker(period)
	l.StartEpisode(episode.Meta{Task: "first"})
	for i := 0; ; i++ {
		if i == killFirstEpisode {
			l.EndEpisode()
			l.StartEpisode(episode.Meta{Task: "second"})
		}
		if l.Record(src.at(i)) {
			fmt.Printf("R %d\n", i)
		} else {
			fmt.Printf("D %d\n", i)
		}
		<-tick.C
	}
}

// syncBuffer is a bytes.Buffer safe for the exec copier and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Killing a logging daemon with SIGKILL loses at most about the last second of
// transitions: the finished episode reads in full, and the unfinished bag holds every
// transition but the last ≤ ~1 s, as read by Debian's `rosbag reindex` + `rosbag info`
// and by control/episode (directly when its tail is intact, and after Recover, which New
// runs on start).
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a subprocess for 3 s")
	}
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLog$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the helper's first transition", 30*time.Second, func() bool { return strings.Contains(stdout.String(), "R 0\n") })
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("helper: %v (want killed)\n%s", err, stderr.String())
	}
	// What the helper reported: the transitions Record accepted, in order.
	var accepted []int
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		var kind string
		var i int
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &kind, &i); err != nil {
			continue // a line cut by the kill, or go test's own output
		}
		if kind == "R" {
			accepted = append(accepted, i)
		}
	}
	if len(accepted) < killFirstEpisode+25 {
		t.Fatalf("the helper recorded %d transitions in 3 s", len(accepted))
	}

	// Before any recovery: the first episode is finished, the second unfinished.
	finished := bags(t, dir)
	active, _ := filepath.Glob(filepath.Join(dir, "*"+activeSuffix))
	if len(finished) != 1 || len(active) != 1 {
		t.Fatalf("after the kill: bags %v, unfinished %v", finished, active)
	}
	if b, ep := readEpisode(t, finished[0]); !b.Indexed() || ep.Len() != killFirstEpisode || ep.Meta.Task != "first" {
		t.Fatalf("first episode: indexed %v, %d steps", b.Indexed(), ep.Len())
	}
	unfinished, err := os.ReadFile(active[0])
	if err != nil {
		t.Fatal(err)
	}

	// control/episode reads the unfinished bag as it is unless the kill tore a chunk.
	direct := -1
	if b, err := episode.OpenBag(active[0]); err == nil {
		eps, err := b.Episodes(episode.ReadOptions{})
		if err != nil || len(eps) != 1 {
			t.Fatalf("unfinished bag: %v", err)
		}
		direct = eps[0].Len()
		b.Close()
	} else if !errors.Is(err, episode.ErrTruncated) {
		t.Fatalf("unfinished bag: %v", err)
	} else {
		t.Logf("the kill tore a chunk: %v", err)
	}

	// Debian's rosbag: reindex a copy, then info.
	tp := newTopicNames("/robot")
	reindexed := -1
	if rosbag, err := lookRosbag(); err == nil {
		cp := filepath.Join(t.TempDir(), "copy.bag")
		if err := os.WriteFile(cp, unfinished, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(rosbag, "info", cp).CombinedOutput(); err == nil || !bytes.Contains(out, []byte("unindexed")) {
			t.Logf("rosbag info before reindex: %v\n%s", err, out)
		}
		if out, err := exec.Command(rosbag, "reindex", cp).CombinedOutput(); err != nil {
			t.Fatalf("rosbag reindex: %v\n%s", err, out)
		}
		out, err := exec.Command(rosbag, "info", "--yaml", cp).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("indexed: True")) {
			t.Fatalf("rosbag info --yaml after reindex: %v\n%s", err, out)
		}
		reindexed = yamlTopicCount(t, out, tp.Image)
	} else {
		t.Logf("Debian's rosbag is not installed: %v", err)
	}

	// Recover (a copy), then control/episode.
	cp := filepath.Join(t.TempDir(), "recovered.bag")
	if err := os.WriteFile(cp, unfinished, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Recover(cp)
	if err != nil {
		t.Fatal(err)
	}
	b, ep := readEpisode(t, cp)
	recovered := ep.Len()
	if !b.Indexed() || ep.Meta.Task != "second" || recovered == 0 {
		t.Fatalf("recovered: indexed %v, %d steps, meta %+v", b.Indexed(), recovered, ep.Meta)
	}
	if (direct >= 0 && direct != recovered) || (reindexed >= 0 && reindexed != recovered) {
		t.Fatalf("steps: %d read directly, %d after rosbag reindex, %d after Recover", direct, reindexed, recovered)
	}

	// New recovers the folder; every surviving transition is there, in order, with no
	// gap, and only the last ≤ 1 s (+ slack for a loaded machine) is missing.
	l, err := New(Config{Dir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	var got []int
	for _, f := range bags(t, dir) {
		_, ep := readEpisode(t, f)
		for s, err := range ep.Steps() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, int(s.Hand.Pos[0]))
		}
	}
	if len(got) != killFirstEpisode+recovered {
		t.Fatalf("%d steps after New's recovery, want %d", len(got), killFirstEpisode+recovered)
	}
	for k, i := range got {
		if k >= len(accepted) || accepted[k] != i {
			t.Fatalf("step %d is transition %d; the helper accepted %v…", k, i, accepted[:min(k+1, len(accepted))])
		}
	}
	lost := len(accepted) - len(got)
	limit := int(1.5 * float64(time.Second/period))
	t.Logf("helper accepted %d transitions; %d survived; unfinished bag: %d steps read directly, %d after rosbag reindex, %d after Recover (%+v); %d lost (%.2f s)",
		len(accepted), len(got), direct, reindexed, recovered, res, lost, float64(lost)*period.Seconds())
	if lost < 0 || lost > limit {
		t.Fatalf("%d transitions lost, more than %d (1.5 s)", lost, limit)
	}
}

// yamlTopicCount finds a topic's message count in `rosbag info --yaml` output.
func yamlTopicCount(t *testing.T, out []byte, topic string) int {
	t.Helper()
	re := regexp.MustCompile(`topic: ` + regexp.QuoteMeta(topic) + `\s+type: \S+\s+messages: (\d+)`)
	m := re.FindSubmatch(out)
	if m == nil {
		t.Fatalf("rosbag info --yaml lists no %s:\n%s", topic, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
