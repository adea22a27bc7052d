package collect

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
)

// Debian's ROS tools read a collected episode: `rosbag info` lists its topics and
// counts, `rosbag play` publishes it to a rosmaster on loopback, and what `rosbag record`
// captures from that playback (the bridge's topics only, lz4-compressed by roslz4) reads
// back as the same episode.
func TestRosbagTools(t *testing.T) {
	for _, tool := range []string{"rosbag", "rosmaster", "rostopic"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("Debian's %s is not installed (scripts/bootstrap installs ros-core and python3-rosbag)", tool)
		}
	}
	cfg := small(filepath.Join(t.TempDir(), "c"))
	cfg.Episodes, cfg.MaxSteps, cfg.Size, cfg.Policy = 1, 30, 32, "scripted"
	run(t, cfg)
	bagPath := filepath.Join(cfg.Out, episode.EpisodeFile(0))
	b, err := episode.OpenBag(bagPath)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	eps, err := b.Episodes(episode.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig := eps[0]

	// rosbag info: exit 0, every topic with its count.
	info, err := exec.Command("rosbag", "info", bagPath).CombinedOutput()
	if err != nil {
		t.Fatalf("rosbag info: %v\n%s", err, info)
	}
	for _, tp := range b.Topics() {
		unit := "msgs"
		if tp.Count == 1 {
			unit = "msg"
		}
		re := regexp.MustCompile(regexp.QuoteMeta(tp.Topic) + `\s+` + fmt.Sprint(tp.Count) + `\s+` + unit + `\s+:\s+` + regexp.QuoteMeta(tp.Type))
		if !re.Match(info) {
			t.Errorf("rosbag info does not list %s with %d messages of %s:\n%s", tp.Topic, tp.Count, tp.Type, info)
		}
	}
	yaml, err := exec.Command("rosbag", "info", "--yaml", bagPath).CombinedOutput()
	if err != nil || !bytes.Contains(yaml, []byte(fmt.Sprintf("messages: %d", b.MessageCount()))) || !bytes.Contains(yaml, []byte("indexed: True")) {
		t.Fatalf("rosbag info --yaml: %v\n%s", err, yaml)
	}

	// rosmaster on a free loopback port, rosbag record, rosbag play.
	home := t.TempDir()
	port := freePort(t)
	env := append(os.Environ(), "ROS_MASTER_URI=http://127.0.0.1:"+port, "ROS_IP=127.0.0.1",
		"ROS_HOME="+home, "ROS_LOG_DIR="+filepath.Join(home, "log"))
	// start runs a tool in its own process group, ended (by its id) when the test ends;
	// the returned channel closes when it exits.
	start := func(name string, args ...string) (*exec.Cmd, chan struct{}) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		})
		return cmd, done
	}
	start("rosmaster", "--core", "-p", port)
	waitFor(t, "rosmaster", 20*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	tp := rosiface.DefaultTopics("")
	recPath := filepath.Join(home, "recorded.bag")
	topics := []string{tp.Image, tp.CameraInfo, tp.EEPose, tp.JointStates, tp.ObjectPose("object"), tp.Goal, tp.Status, tp.CmdVel, tp.Gripper}
	rec, recDone := start("rosbag", append([]string{"record", "--lz4", "-O", recPath, "__name:=episode_test_record"}, topics...)...)
	waitFor(t, "rosbag record to subscribe", 30*time.Second, func() bool {
		cmd := exec.Command("rostopic", "info", tp.Image)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return bytes.Contains(out, []byte("episode_test_record"))
	})
	// A quarter of real time: 50 ms between frames keeps the arrival order of a loaded
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	play := exec.CommandContext(ctx, "rosbag", "play", "-q", "-d", "2", "-r", "0.25", bagPath)
	play.Env = env
	if out, err := play.CombinedOutput(); err != nil {
		t.Fatalf("rosbag play: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	syscall.Kill(-rec.Process.Pid, syscall.SIGINT)
	select {
	case <-recDone:
	case <-time.After(20 * time.Second):
		t.Fatal("rosbag record did not stop on SIGINT")
	}

	if info, err := exec.Command("rosbag", "info", recPath).CombinedOutput(); err != nil || !regexp.MustCompile(`compression:\s+lz4`).Match(info) {
		t.Fatalf("rosbag info of the recorded bag: %v\n%s", err, info)
	}
	// The recorded bag reads as the same episode.
	rb, err := episode.OpenBag(recPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	reps, err := rb.Episodes(episode.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Meta != nil || reps[0].Len() != orig.Len() {
		t.Fatalf("recorded: %d episodes, %d steps (want %d), meta %v; topics %+v", len(reps), reps[0].Len(), orig.Len(), reps[0].Meta, rb.Topics())
	}
	for k := 0; k < orig.Len(); k++ {
		want, err := orig.Step(k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := reps[0].Step(k)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != want.Hash || *got.Hand != *want.Hand || *got.Status != *want.Status || got.Obs != nil ||
			!got.Stamp.Equal(want.Stamp) || got.Joints.Position[0] != want.Joints.Position[0] || *got.Goal != *want.Goal {
			t.Fatalf("step %d differs after rosbag play and record:\n%+v %+v %+v %v %v\n%+v %+v %+v %v %v", k, got.Hash, got.Hand, got.Status, got.Stamp, got.Goal, want.Hash, want.Hand, want.Status, want.Stamp, want.Goal)
		}
		if (got.Command == nil) != (want.Command == nil) {
			t.Fatalf("step %d: command %+v, want %+v", k, got.Command, want.Command)
		}
		if want.Command != nil {
			for i := range want.Command.Action {
				if math.Abs(got.Command.Action[i]-want.Command.Action[i]) > 1e-12 {
					t.Fatalf("step %d: action %v, want %v", k, got.Command.Action, want.Command.Action)
				}
			}
		}
	}
	if !strings.Contains(fmt.Sprint(rb.Topics()), "/camera/image_raw sensor_msgs/Image 31") {
		t.Fatalf("recorded topics %v", rb.Topics())
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
