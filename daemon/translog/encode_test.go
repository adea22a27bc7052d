package translog

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/diagnostic_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
	rosbag "github.com/foxglove/go-rosbag"

	"robodistill/control/rosiface"
)

// goroslibBytes serializes m with goroslib's reflection encoder, without the length.
func goroslibBytes(t *testing.T, m any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := protocommon.MessageEncode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[4:]
}

// Every hand-written encoder gives goroslib's bytes for the same message.
func TestEncodeMatchesGoroslib(t *testing.T) {
	stamp := time.Unix(1740830400, 123456789)
	hdr := func(seq uint32, frame string) std_msgs.Header {
		return std_msgs.Header{Seq: seq, Stamp: stamp, FrameId: frame}
	}
	pix := frameOf(3, 5, 4)
	im := Image{Stamp: stamp, FrameID: "cam", Width: 5, Height: 4, Encoding: "rgb8", Step: 15, Data: pix}
	pose := Pose{Valid: true, Stamp: stamp, FrameID: "world", Pos: [3]float64{1, -2, 3.5}, Quat: [4]float64{0.5, 0.1, 0.2, 0.3}}
	joints := Joints{Stamp: stamp, FrameID: "base", Name: []string{"a", "bb"}, Position: []float64{1, 2}, Velocity: []float64{3, 4}, Effort: nil}
	cmd := Command{Valid: true, Stamp: stamp, FrameID: "hand", Vel: [3]float64{0.1, -0.2, 0.3}, Grip: -1}
	act := [4]float64{0.5, -1, 0, 1}
	cases := []struct {
		name string
		got  []byte
		want any
	}{
		{"image", encImage(nil, 7, &im), &sensor_msgs.Image{Header: hdr(7, "cam"), Height: 4, Width: 5, Encoding: "rgb8", Step: 15, Data: pix}},
		{"pose", encPose(nil, 8, &pose), rosiface.Pose(hdr(8, "world"), pose.Pos, pose.Quat)},
		{"zero stamp", encPose(nil, 0, &Pose{}), &geometry_msgs.PoseStamped{}},
		{"joints", encJoints(nil, 9, &joints), &sensor_msgs.JointState{Header: hdr(9, "base"), Name: joints.Name, Position: joints.Position, Velocity: joints.Velocity}},
		{"twist", encTwist(nil, 10, &cmd), rosiface.Twist(hdr(10, "hand"), cmd.Vel)},
		{"float32", appendF32(nil, 2.5), &std_msgs.Float32{Data: 2.5}},
		{"float64", appendF64(nil, -0.25), &std_msgs.Float64{Data: -0.25}},
		{"string", appendString(nil, `{"a":1}`), &std_msgs.String{Data: `{"a":1}`}},
		{"action", encAction(nil, &act), &std_msgs.Float64MultiArray{
			Layout: std_msgs.MultiArrayLayout{Dim: []std_msgs.MultiArrayDimension{{Label: "action", Size: 4, Stride: 4}}},
			Data:   act[:],
		}},
		{"safety", encSafety(nil, &Safety{Level: SafetyStopped, Reason: "estop", Estop: true}), &diagnostic_msgs.DiagnosticStatus{
			Level: 2, Name: "safety", Message: "estop",
			Values: []diagnostic_msgs.KeyValue{{Key: "state", Value: "stopped"}, {Key: "estop", Value: "true"}},
		}},
	}
	for _, c := range cases {
		if want := goroslibBytes(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, c.got, want)
		}
	}
	// A missing reward is NaN, which goroslib decodes as NaN.
	var f std_msgs.Float32
	if err := decodeROS(appendF32(nil, float32(math.NaN())), &f); err != nil || !math.IsNaN(float64(f.Data)) {
		t.Fatalf("NaN reward decodes as %v, %v", f.Data, err)
	}
}

// The connection records name the types and md5sums control/episode expects.
func TestMessageTypes(t *testing.T) {
	types, err := msgTypes()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		typString: "std_msgs/String", typImage: "sensor_msgs/Image", typPose: "geometry_msgs/PoseStamped",
		typJoints: "sensor_msgs/JointState", typTwist: "geometry_msgs/TwistStamped", typFloat64: "std_msgs/Float64",
		typFloat32: "std_msgs/Float32", typMultiArray: "std_msgs/Float64MultiArray", typDiagnostic: "diagnostic_msgs/DiagnosticStatus",
	}
	for i, name := range want {
		if types[i].name != name || len(types[i].md5) != 32 || types[i].def == "" {
			t.Errorf("type %d: %+v, want %s", i, types[i], name)
		}
	}
	// The well-known md5sums, as rosmsg md5 prints them.
	if types[typImage].md5 != "060021388200f6f0f447d0fcd9c64743" || types[typFloat32].md5 != "73fcbf46b49191e672908e50842a83d4" {
		t.Fatalf("md5sums %s %s", types[typImage].md5, types[typFloat32].md5)
	}
}

// The bag header record has rosbag's exact layout and length (4096 bytes of header and
// padding): rosbag reindex and go-rosbag rewrite it in place.
func TestBagHeaderMatchesRosbag(t *testing.T) {
	var buf bytes.Buffer
	w, err := rosbag.NewWriter(&buf, rosbag.WithCompression(rosbag.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := w.WriteBagHeader(rosbag.BagHeader{IndexPos: 123456, ConnCount: 7, ChunkCount: 9}); err != nil {
		t.Fatal(err)
	}
	if got := bagHeader(123456, 7, 9); !bytes.Equal(got, buf.Bytes()) || len(got) != bagHeaderLen {
		t.Fatalf("bag header of %d bytes differs from go-rosbag's %d", len(got), buf.Len())
	}
}
