package collect

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/control/episode"
)

const helperEnv = "ROBODISTILL_COLLECT_HELPER_OUT"

func killConfig(out string) Config {
	cfg := small(out)
	cfg.Episodes, cfg.Workers, cfg.MaxSteps, cfg.Size = 8, 2, 40, 32
	return cfg
}

// TestHelperCollect is the process TestKill9 kills: it runs a collection when the
// environment names its folder.
func TestHelperCollect(t *testing.T) {
	out := os.Getenv(helperEnv)
	if out == "" {
		t.Skip("helper process for TestKill9")
	}
	if _, err := Run(context.Background(), killConfig(out)); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	os.Exit(0)
}

// Killing collect with SIGKILL at random moments leaves every completed episode
// readable, loses and duplicates none, and the run that finally completes gives the same
// files as an uninterrupted one.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills subprocesses")
	}
	base := t.TempDir()
	ref := killConfig(filepath.Join(base, "ref"))
	rs := run(t, ref)
	// How long recording the whole collection takes here (the machine may be loaded).
	recording := time.Duration(float64(rs.Frames) / rs.FramesPerSec * float64(time.Second))
	refEntries := map[int]episode.Entry{}
	rc, err := episode.OpenCollection(ref.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rc.Entries() {
		refEntries[e.Episode] = e
	}
	rc.Close()

	out := filepath.Join(base, "killed")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill schedule seed %d", seed)
	helper := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCollect$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+out)
		return cmd
	}
	perEpisode := recording / time.Duration(ref.Episodes)
	complete, kills := 0, 0
	for attempt := 0; attempt < 20 && kills < 8 && complete < ref.Episodes; attempt++ {
		cmd := helper()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		// Kill during start-up one time in four; otherwise once the run is recording (a
		// fresh temporary bag exists or a new episode landed), within the time five
		// episodes take (two at a time), so kills fall while bags are written, renamed or
		// indexed.
		var delay time.Duration
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.Int64N(int64(800 * time.Millisecond)))
		} else {
			delay = waitRecording(out, complete, exited) + time.Duration(rng.Int64N(int64(5*perEpisode)+1))
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Fatalf("helper failed: %v\n%s", waitErr, stderr.String())
			}
		case <-time.After(delay):
			cmd.Process.Kill() // SIGKILL
			<-exited
			kills++
		}
		// Whatever state the kill left: every indexed or renamed episode reads in full
		// and equals the uninterrupted run's.
		if _, err := os.Stat(filepath.Join(out, episode.SpecFile)); err != nil {
			continue // killed before the folder existed
		}
		c, err := episode.OpenCollection(out)
		if err != nil {
			t.Fatalf("after kill %d (%v): %v", kills, delay, err)
		}
		got := c.Entries()
		if len(got) < complete {
			t.Fatalf("after kill %d: %d episodes, had %d", kills, len(got), complete)
		}
		complete = len(got)
		for _, e := range got {
			if !slicesEqualFrames(e, refEntries[e.Episode]) || e.Bytes != refEntries[e.Episode].Bytes {
				t.Fatalf("after kill %d: episode %d differs from the uninterrupted run", kills, e.Episode)
			}
			ep, err := c.Episode(e.Episode)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range ep.Steps() {
				if err != nil {
					t.Fatalf("after kill %d: %v", kills, err)
				}
			}
			ep.Close()
		}
		c.Close()
		t.Logf("kill %d after %v: %d episodes complete", kills, delay, complete)
	}
	// Finish the collection.
	cmd := helper()
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, outb)
	}
	sameBags(t, bagsOf(t, ref.Out), bagsOf(t, out))
	c, err := episode.OpenCollection(out)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.Entries()) != ref.Episodes || len(c.Stale()) != 0 {
		t.Fatalf("%d episodes, stale %v", len(c.Entries()), c.Stale())
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed", kills)
	}
}

// waitRecording polls until dir shows a temporary bag written since the call (an older
// one is a killed run's leftover) or more than done episode bags, for up to 30 s, and
// returns how long that took.
func waitRecording(dir string, done int, exited <-chan struct{}) time.Duration {
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		select {
		case <-exited:
			return time.Since(start)
		default:
		}
		tmp, _ := filepath.Glob(filepath.Join(dir, "episodes", ".*.tmp"))
		for _, f := range tmp {
			if st, err := os.Stat(f); err == nil && st.ModTime().After(start) {
				return time.Since(start)
			}
		}
		if bags, _ := filepath.Glob(filepath.Join(dir, "episodes", "episode-*.bag")); len(bags) > done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func slicesEqualFrames(a, b episode.Entry) bool {
	if len(a.Frames) != len(b.Frames) {
		return false
	}
	for i := range a.Frames {
		if a.Frames[i] != b.Frames[i] {
			return false
		}
	}
	return a.Return == b.Return && a.Seed == b.Seed && a.Success == b.Success
}
