// Package episodetest makes synthetic recorded episodes for tests: every value is a
// function of (episode, step), written with the real episode.Writer and episode.Store, so
// tests of the reader and of later stages (pair sampling, labels) get collections without
// running the simulator, and can check what they read against Values.
package episodetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
)

// Options shape the synthetic episodes.
type Options struct {
	Episodes int    // collection size (Collection)
	Steps    int    // recorded steps per episode (frames, including the reset frame)
	Size     int    // frame width and height
	Seed     uint64 // episode n has seed Seed+n
	// Bridge writes what `rosbag record` captures from the sim bridge: no metadata and no
	// observation topic, each state's messages just after its image in bag time, and the
	// command chosen in a state 5 ms after it.
	Bridge bool
	// ImageLate (with Bridge) delivers each image 2 ms after its state messages, as a
	// loaded recorder may receive the larger message.
	ImageLate bool
	// NoStatus leaves out the episode status topic (as a robot's log would).
	NoStatus bool
	// Namespace of the topics ("" for the root).
	Namespace string
}

// Rate, Period and ActionScale of the synthetic episodes (MetaWorld's 80 Hz).
const (
	Rate        = 80
	Period      = time.Second / Rate
	ActionScale = 0.01
)

// Joint names as the simulator reports them.
var Joints = []string{"right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6", "r_close", "l_close"}

// Values are what step k of episode n holds.
type Values struct {
	RGB      []byte
	Hand     [3]float64
	HandQuat [4]float64 // w, x, y, z
	JointPos []float64
	JointVel []float64
	Object   [3]float64
	Object2  [3]float64
	Goal     [3]float64
	Obs      []float64
	Status   rosiface.EpisodeStatus
	// Action is the action taken in this step (which leads to step k+1); the last step's
	// is never sent.
	Action [4]float64
}

// Start is the bag time of episode n's first step.
func Start(n int) time.Time { return time.Unix(1+10*int64(n), 0).UTC() }

// StepValues computes step k of episode n.
func StepValues(o Options, n, k int) Values {
	v := Values{RGB: make([]byte, 3*o.Size*o.Size)}
	for i := range v.RGB {
		v.RGB[i] = byte(i*7 + k*31 + n*101)
	}
	f := float64(k)
	v.Hand = [3]float64{0.1*float64(n) + 0.001*f, 0.6 - 0.002*f, 0.2 + 0.0005*f}
	v.HandQuat = [4]float64{math.Cos(f / 100), 0, math.Sin(f / 100), 0}
	for i := range Joints {
		v.JointPos = append(v.JointPos, 0.01*f+float64(i))
		v.JointVel = append(v.JointVel, 0.1*float64(i)-0.003*f)
	}
	v.Object = [3]float64{0.05 * float64(n), 0.7, 0.02 + 0.0001*f}
	v.Object2 = [3]float64{-0.1, 0.8 + 0.001*f, 0.05}
	v.Goal = [3]float64{0.1, 0.9, 0.1 + 0.01*float64(n)}
	for i := 0; i < 39; i++ {
		v.Obs = append(v.Obs, float64(n*1000+k*39+i)/1000)
	}
	v.Status = rosiface.EpisodeStatus{Seed: o.Seed + uint64(n), Step: k, Reward: 0.5 * f,
		Success: k >= 1 && k >= o.Steps-2, Truncated: k == o.Steps-1}
	v.Action = [4]float64{math.Sin(f), math.Cos(f) * 2, 0.5, float64(k%2*2 - 1)}
	return v
}

// Meta is the metadata of episode n.
func Meta(o Options, n int) episode.Meta {
	return episode.Meta{Source: "sim", Task: "fake", Goal: "make the numbers go up", Episode: n,
		Seed: o.Seed + uint64(n), Policy: "synthetic", Camera: "corner", Width: o.Size, Height: o.Size,
		Rate: Rate, ActionScale: ActionScale, MaxSteps: o.Steps - 1, Namespace: rosiface.DefaultTopics(o.Namespace).Namespace}
}

// WriteEpisode writes episode n to w (and does not close it).
func WriteEpisode(w *episode.Writer, o Options, n int) error {
	t := rosiface.DefaultTopics(o.Namespace)
	motion := rosiface.Motion{Scale: ActionScale, Rate: Rate}
	t0 := Start(n)
	if !o.Bridge {
		if err := w.WriteMeta(t0, Meta(o, n)); err != nil {
			return err
		}
	}
	for k := 0; k < o.Steps; k++ {
		v := StepValues(o, n, k)
		stamp := t0.Add(time.Duration(k) * Period)
		h := func(frame string) rosiface.HeaderT { return rosiface.Header(uint32(k), stamp, frame) }
		state := []struct {
			topic string
			msg   any
		}{
			{t.CameraInfo, rosiface.CameraInfo(h("corner"), o.Size, o.Size, 45)},
			{t.EEPose, rosiface.Pose(h("world"), v.Hand, v.HandQuat)},
			{t.JointStates, &sensor_msgs.JointState{Header: h(""), Name: Joints, Position: v.JointPos, Velocity: v.JointVel}},
			{t.ObjectPose("object"), rosiface.Pose(h("world"), v.Object, [4]float64{1, 0, 0, 0})},
			{t.ObjectPose("object2"), rosiface.Pose(h("world"), v.Object2, [4]float64{1, 0, 0, 0})},
			{t.Goal, rosiface.Pose(h("world"), v.Goal, [4]float64{1, 0, 0, 0})},
		}
		if !o.Bridge {
			state = append(state, struct {
				topic string
				msg   any
			}{t.Observation, rosiface.ObservationMsg(v.Obs)})
		}
		if !o.NoStatus {
			state = append(state, struct {
				topic string
				msg   any
			}{t.Status, v.Status.Msg()})
		}
		imageAt := stamp
		if o.Bridge && o.ImageLate {
			imageAt = stamp.Add(2 * time.Millisecond)
		} else if err := w.Write(t.Image, imageAt, rosiface.Image(h("corner"), v.RGB, o.Size, o.Size)); err != nil {
			return err
		}
		for i, m := range state {
			at := stamp
			if o.Bridge {
				at = stamp.Add(time.Duration(i+1) * 100 * time.Microsecond) // arrival order
			}
			if err := w.Write(m.topic, at, m.msg); err != nil {
				return err
			}
		}
		if o.Bridge && o.ImageLate {
			if err := w.Write(t.Image, imageAt, rosiface.Image(h("corner"), v.RGB, o.Size, o.Size)); err != nil {
				return err
			}
		}
		// The action taken in this step: `robodistill collect` writes it half a period
		// later, stamped with the time of the state it leads to; a controller on the
		// bridge sends it 5 ms later, stamped when sent.
		if k == o.Steps-1 {
			continue
		}
		cmdAt, cmdStamp := stamp.Add(Period/2), stamp.Add(Period)
		if o.Bridge {
			cmdAt = stamp.Add(5 * time.Millisecond)
			cmdStamp = cmdAt
		}
		vel, grip := motion.Command(v.Action)
		if err := w.Write(t.CmdVel, cmdAt, rosiface.Twist(rosiface.Header(uint32(k+1), cmdStamp, "world"), vel)); err != nil {
			return err
		}
		if err := w.Write(t.Gripper, cmdAt, rosiface.Float64(grip)); err != nil {
			return err
		}
	}
	return nil
}

// Collection writes o.Episodes episodes into the collection folder dir through a Store
// and returns their index entries.
func Collection(tb testing.TB, dir string, o Options) []episode.Entry {
	tb.Helper()
	s, err := episode.OpenStore(dir, Spec(o), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	for n := 0; n < o.Episodes; n++ {
		if s.Has(n) {
			continue
		}
		p, err := s.Begin(n)
		if err != nil {
			tb.Fatal(err)
		}
		if err := WriteEpisode(p.Writer, o, n); err != nil {
			tb.Fatal(err)
		}
		if _, err := p.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	return s.Entries()
}

// Spec is the collection identity Collection uses.
func Spec(o Options) episode.Spec {
	return episode.Spec{Source: "sim", Params: map[string]string{
		"task": "fake", "steps": fmt.Sprint(o.Steps), "size": fmt.Sprint(o.Size), "seed": fmt.Sprint(o.Seed),
	}}
}
