package bridge

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
	"robodistill/control/rosnode/rosnodetest"
	"robodistill/sim/metaworld"
)

// `rosbag record` of the live bridge's topics, while a peer drives the hand, gives a bag
// that the offline reader accepts as an episode: frames with hashes, the simulator's
// status and observation, and the commands as actions.
func TestRosbagRecordIsAnEpisode(t *testing.T) {
	m := rosnodetest.New(t)
	requireROSMsgs(t)
	task := mustTask(t, "reach")
	b := startBridge(t, m, Config{Task: task, Env: metaworld.Options{Rate: 50, MaxSteps: 100000}, Camera: "corner", Size: 32, Seed: 9})
	tp := b.Topics()

	n := peer(t, m, "driver")
	vel, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: n, Topic: tp.CmdVel, Msg: &geometry_msgs.TwistStamped{}})
	if err != nil {
		t.Fatal(err)
	}
	defer vel.Close()
	grip, err := goroslib.NewPublisher(goroslib.PublisherConf{Node: n, Topic: tp.Gripper, Msg: &std_msgs.Float64{}})
	if err != nil {
		t.Fatal(err)
	}
	defer grip.Close()
	stop := make(chan struct{})
	driving := make(chan struct{})
	go func() {
		defer close(driving)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				vel.Write(rosiface.Twist(rosiface.Header(0, time.Now(), "world"), [3]float64{0.1, 0, 0}))
				grip.Write(&std_msgs.Float64{Data: 0.5})
			}
		}
	}()
	defer func() { close(stop); <-driving }()

	out := filepath.Join(t.TempDir(), "bridge.bag")
	topics := []string{tp.Image, tp.CameraInfo, tp.EEPose, tp.JointStates, tp.Goal, tp.Status, tp.Observation, tp.CmdVel, tp.Gripper, tp.ObjectPose("object")}
	args := append([]string{"record", "--duration=3", "-O", out}, topics...)
	if o, err := tool(t, m, 30*time.Second, "rosbag", args...); err != nil {
		t.Fatalf("rosbag record: %v: %s", err, o)
	}

	bag, err := episode.OpenBag(out)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := bag.Episodes(episode.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 {
		t.Fatalf("%d episodes in the recording, want 1", len(eps))
	}
	ep := eps[0]
	if ep.Len() < 50 {
		t.Fatalf("only %d steps in 3 s at 50 Hz", ep.Len())
	}
	lastStep, moving, withAction, repeated := -1, 0, 0, 0
	var firstX, lastX float64
	for s, err := range ep.Steps() {
		if err != nil {
			t.Fatal(err)
		}
		if s.Frame.Width != 32 || s.Hash == (episode.Hash{}) || s.Status == nil || len(s.Obs) != metaworld.ObsDim || s.Hand == nil {
			t.Fatalf("step %d incomplete: %dx%d hash %v status %v obs %d hand %v", s.Index, s.Frame.Width, s.Frame.Height, s.Hash, s.Status, len(s.Obs), s.Hand)
		}
		// Under load rosbag (Python) can miss a small message; the frame then joins the
		// nearest status, so a step may repeat, but never go back.
		switch {
		case s.Status.Step < lastStep:
			t.Fatalf("status steps go back: %d after %d", s.Status.Step, lastStep)
		case s.Status.Step == lastStep:
			repeated++
		}
		lastStep = s.Status.Step
		if s.Index == 0 {
			firstX = s.Hand.Pos[0]
		}
		lastX = s.Hand.Pos[0]
		if s.Command != nil {
			withAction++
			if s.Command.Action[0] > 0.05 {
				moving++
			}
		}
	}
	t.Logf("recorded %d steps (%d repeating the previous status); %d with a command (%d moving +x); hand x %.3f -> %.3f", ep.Len(), repeated, withAction, moving, firstX, lastX)
	if repeated > ep.Len()/10 {
		t.Fatalf("%d of %d frames joined the previous frame's status", repeated, ep.Len())
	}
	if moving < ep.Len()/2 || lastX-firstX < 0.1 {
		t.Fatalf("commands not recorded as actions (%d of %d moving) or hand did not move (%.3f m)", moving, ep.Len(), lastX-firstX)
	}
}
