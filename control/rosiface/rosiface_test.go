package rosiface

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
)

func TestTopics(t *testing.T) {
	for _, ns := range []string{"", "/", "robot1", "/robot1/"} {
		tp := DefaultTopics(ns)
		want := "/camera/image_raw"
		if ns != "" && ns != "/" {
			want = "/robot1/camera/image_raw"
		}
		if tp.Image != want {
			t.Errorf("ns %q: image topic %q, want %q", ns, tp.Image, want)
		}
	}
	if got := DefaultTopics("r").ObjectPose("object"); got != "/r/objects/object/pose" {
		t.Errorf("object pose topic %q", got)
	}
}

// The md5 sums are ROS's own for these standard types: a mismatch would make rostopic and
// rosbag refuse our messages.
func TestMD5MatchesROS(t *testing.T) {
	stamp := time.Unix(1, 0)
	for _, tc := range []struct {
		msg  any
		want string
	}{
		{Image(Header(0, stamp, "c"), nil, 0, 0), "060021388200f6f0f447d0fcd9c64743"},
		{CameraInfo(Header(0, stamp, "c"), 4, 4, 45), "c9a58c1b0b154e0e6da7578cb991d214"},
		{Pose(Header(0, stamp, "w"), [3]float64{}, [4]float64{1}), "d3812c3cbc69362b77dc0b19b345f8f5"},
		{Twist(Header(0, stamp, "w"), [3]float64{}), "98d34b0043a2093cf9d9345ab6eef12e"},
		{Float64(1), "fdb28210bfa9d7c91146260178d9a584"},
		{EpisodeStatus{}.Msg(), "4b7d974086d4060e7db4613a7e6c3ba4"},
	} {
		got, err := msgproc.MD5(reflect.ValueOf(tc.msg).Elem().Interface())
		if err != nil || got != tc.want {
			t.Errorf("%T: md5 %s (%v), want %s", tc.msg, got, err, tc.want)
		}
	}
}

func TestMotionRoundTrip(t *testing.T) {
	m := Motion{Scale: 0.016, Rate: 50}
	if s := m.MaxSpeed(); math.Abs(s-0.8) > 1e-12 {
		t.Fatalf("max speed %v", s)
	}
	vel, grip := m.Command([4]float64{0.5, -2, 0, 0.3})
	if math.Abs(vel[0]-0.4) > 1e-12 || vel[1] != -0.8 || grip != 0.3 {
		t.Fatalf("command %v %v", vel, grip)
	}
	a := m.Action(vel, grip)
	if math.Abs(a[0]-0.5) > 1e-12 || a[1] != -1 || a[3] != 0.3 {
		t.Fatalf("action %v", a)
	}
	if a := m.Action([3]float64{math.NaN(), math.Inf(1), 0}, math.NaN()); a != [4]float64{0, 1, 0, 0} {
		t.Fatalf("non-finite command gave %v", a)
	}
}

func TestEpisodeStatusRoundTrip(t *testing.T) {
	s := EpisodeStatus{Seed: 12, Step: 40, Reward: 3.5, Success: true}
	var b bytes.Buffer
	if err := protocommon.MessageEncode(&b, s.Msg()); err != nil {
		t.Fatal(err)
	}
	var m std_msgs.Float64MultiArray
	if err := protocommon.MessageDecode(bytes.NewReader(b.Bytes()), &m); err != nil {
		t.Fatal(err)
	}
	got, err := ParseEpisodeStatus(&m)
	if err != nil || got != s {
		t.Fatalf("round trip %+v %v", got, err)
	}
	m.Layout.Dim[2].Label = "bogus"
	if _, err := ParseEpisodeStatus(&m); err == nil {
		t.Fatal("relabelled status accepted")
	}
}

func FuzzParseEpisodeStatus(f *testing.F) {
	var b bytes.Buffer
	protocommon.MessageEncode(&b, EpisodeStatus{Seed: 1, Step: 2}.Msg())
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		var m std_msgs.Float64MultiArray
		if err := protocommon.MessageDecode(bytes.NewReader(data), &m); err != nil {
			return
		}
		if s, err := ParseEpisodeStatus(&m); err == nil && s.Step < 0 {
			t.Fatalf("negative step %+v", s)
		}
		ParseObservation(&m, 39)
	})
}
