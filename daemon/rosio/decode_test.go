package rosio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/sensor_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
)

var t0 = time.Unix(1700000000, 0)

func poseMsg(frame string, pos [3]float64, wxyz [4]float64) *geometry_msgs.PoseStamped {
	return &geometry_msgs.PoseStamped{
		Header: std_msgs.Header{Seq: 7, Stamp: t0, FrameId: frame},
		Pose: geometry_msgs.Pose{
			Position:    geometry_msgs.Point{X: pos[0], Y: pos[1], Z: pos[2]},
			Orientation: geometry_msgs.Quaternion{W: wxyz[0], X: wxyz[1], Y: wxyz[2], Z: wxyz[3]},
		},
	}
}

func TestDecodePose(t *testing.T) {
	h := math.Sqrt(0.5)
	recv := t0.Add(time.Millisecond)
	for _, tc := range []struct {
		name  string
		msg   *geometry_msgs.PoseStamped
		frame string
		err   string
	}{
		{"valid", poseMsg("world", [3]float64{1, 2, 3}, [4]float64{h, 0, 0, h}), "world", ""},
		{"empty frame accepted", poseMsg("", [3]float64{1, 2, 3}, [4]float64{1, 0, 0, 0}), "world", ""},
		{"any frame when unconfigured", poseMsg("camera", [3]float64{1, 2, 3}, [4]float64{1, 0, 0, 0}), "", ""},
		{"zero quaternion means no orientation", poseMsg("world", [3]float64{1, 2, 3}, [4]float64{}), "world", ""},
		{"other frame", poseMsg("camera", [3]float64{1, 2, 3}, [4]float64{1, 0, 0, 0}), "world", `frame_id "camera", want "world"`},
		{"NaN position", poseMsg("world", [3]float64{1, math.NaN(), 3}, [4]float64{1, 0, 0, 0}), "world", "position.y is NaN"},
		{"infinite orientation", poseMsg("world", [3]float64{1, 2, 3}, [4]float64{1, 0, 0, math.Inf(-1)}), "world", "orientation.z is -Inf"},
		{"non-unit quaternion", poseMsg("world", [3]float64{1, 2, 3}, [4]float64{2, 0, 0, 0}), "world", "has norm 2, want a unit quaternion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := Pose{Pos: [3]float64{9, 9, 9}}
			dst := prev
			err := DecodePose(tc.msg, tc.frame, recv, &dst)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if dst != prev {
					t.Fatalf("dst changed on error: %+v", dst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, q := tc.msg.Pose.Position, tc.msg.Pose.Orientation
			want := Pose{Pos: [3]float64{p.X, p.Y, p.Z}, Quat: [4]float64{q.W, q.X, q.Y, q.Z},
				Stamp: Stamp{Received: recv, Header: t0, Seq: 7}}
			if dst != want {
				t.Fatalf("got %+v, want %+v", dst, want)
			}
		})
	}
}

func jointMsg(names []string, pos, vel []float64) *sensor_msgs.JointState {
	return &sensor_msgs.JointState{Header: std_msgs.Header{Seq: 3, Stamp: t0}, Name: names, Position: pos, Velocity: vel}
}

func TestDecodeJointState(t *testing.T) {
	want := []string{"a", "b"}
	for _, tc := range []struct {
		name     string
		msg      *sensor_msgs.JointState
		pos, vel []float64
		hasVel   bool
		err      string
	}{
		{"in order", jointMsg([]string{"a", "b"}, []float64{1, 2}, []float64{3, 4}), []float64{1, 2}, []float64{3, 4}, true, ""},
		{"reordered with extras", jointMsg([]string{"x", "b", "a"}, []float64{0, 2, 1}, []float64{0, 4, 3}), []float64{1, 2}, []float64{3, 4}, true, ""},
		{"no velocities", jointMsg([]string{"b", "a"}, []float64{2, 1}, nil), []float64{1, 2}, []float64{0, 0}, false, ""},
		{"NaN in an ignored joint", jointMsg([]string{"a", "b", "x"}, []float64{1, 2, math.NaN()}, nil), []float64{1, 2}, []float64{0, 0}, false, ""},
		{"missing joint", jointMsg([]string{"a"}, []float64{1}, nil), nil, nil, false, `joint "b" missing`},
		{"duplicate joint", jointMsg([]string{"a", "b", "a"}, []float64{1, 2, 3}, nil), nil, nil, false, `joint "a" appears twice`},
		{"short positions", jointMsg([]string{"a", "b"}, []float64{1}, nil), nil, nil, false, "2 names but 1 positions"},
		{"short velocities", jointMsg([]string{"a", "b"}, []float64{1, 2}, []float64{1}), nil, nil, false, "2 names but 1 velocities"},
		{"NaN position", jointMsg([]string{"a", "b"}, []float64{1, math.NaN()}, nil), nil, nil, false, `joint "b" position is NaN`},
		{"infinite velocity", jointMsg([]string{"a", "b"}, []float64{1, 2}, []float64{math.Inf(1), 0}), nil, nil, false, `joint "a" velocity is +Inf`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := NewJoints(want)
			dst.Position[0], dst.Position[1] = 7, 7
			err := DecodeJointState(tc.msg, t0, &dst)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if dst.Position[0] != 7 || dst.Position[1] != 7 || dst.Stamp.Valid() {
					t.Fatalf("dst changed on error: %+v", dst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if dst.Position[i] != tc.pos[i] || dst.Velocity[i] != tc.vel[i] {
					t.Fatalf("joint %s: position %v velocity %v, want %v %v", want[i], dst.Position[i], dst.Velocity[i], tc.pos[i], tc.vel[i])
				}
			}
			if dst.HasVelocity != tc.hasVel || dst.Stamp != (Stamp{Received: t0, Header: t0, Seq: 3}) {
				t.Fatalf("HasVelocity %v stamp %+v", dst.HasVelocity, dst.Stamp)
			}
		})
	}
}

func imageMsg(enc string, w, h, step uint32, data []byte) *sensor_msgs.Image {
	return &sensor_msgs.Image{Header: std_msgs.Header{Seq: 1, Stamp: t0, FrameId: "cam"}, Encoding: enc, Width: w, Height: h, Step: step, Data: data}
}

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestDecodeImage(t *testing.T) {
	padded := seqBytes(3 * 8) // 2×3 rgb8 with 2 bytes of padding per row
	for _, tc := range []struct {
		name string
		msg  *sensor_msgs.Image
		want []byte
		err  string
	}{
		{"rgb8 packed", imageMsg("rgb8", 2, 3, 6, seqBytes(18)), seqBytes(18), ""},
		{"bgr8 padded rows are packed", imageMsg("bgr8", 2, 3, 8, padded), append(append(append([]byte{}, padded[0:6]...), padded[8:14]...), padded[16:22]...), ""},
		{"mono8", imageMsg("mono8", 4, 2, 4, seqBytes(8)), seqBytes(8), ""},
		{"unknown encoding", imageMsg("rgba8", 2, 3, 8, seqBytes(24)), nil, `encoding "rgba8"`},
		{"zero width", imageMsg("rgb8", 0, 3, 6, seqBytes(18)), nil, "size 0x3 is empty"},
		{"too large", imageMsg("mono8", MaxImageSide+1, 1, MaxImageSide+1, nil), nil, "above 16384 per side"},
		{"step too small", imageMsg("rgb8", 2, 3, 5, seqBytes(15)), nil, "step 5 is less than width 2 × 3 channels"},
		{"short data", imageMsg("rgb8", 2, 3, 6, seqBytes(17)), nil, "17 data bytes, want step 6 × height 3 = 18"},
		{"long data", imageMsg("rgb8", 2, 3, 6, seqBytes(19)), nil, "19 data bytes"},
		{"step times height too large", imageMsg("mono8", 1, 1<<14, 1<<14, nil), nil, "above 134217728 bytes"},
		{"huge step", imageMsg("mono8", 1, 2, math.MaxUint32, nil), nil, "above 134217728 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := Frame{Encoding: "mono8", Width: 1, Height: 1, Step: 1, Data: []byte{42}}
			dst := prev
			err := DecodeImage(tc.msg, t0, &dst)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrImage) {
					t.Fatalf("error %v, want ErrImage containing %q", err, tc.err)
				}
				if dst.Width != 1 || len(dst.Data) != 1 || dst.Data[0] != 42 {
					t.Fatalf("dst changed on error: %+v", dst)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ch := 3
			if tc.msg.Encoding == "mono8" {
				ch = 1
			}
			if dst.Encoding != tc.msg.Encoding || dst.Width != int(tc.msg.Width) || dst.Height != int(tc.msg.Height) ||
				dst.Step != ch*dst.Width || !bytes.Equal(dst.Data, tc.want) || dst.Stamp.Seq != 1 {
				t.Fatalf("got %+v, want data %v", dst, tc.want)
			}
			if v := dst.View(); v.Step != dst.Step || len(v.Data) != v.Step*v.Height {
				t.Fatalf("view %+v", v)
			}
		})
	}
}

// A frame of the same size decodes into the previous frame's buffer.
func TestDecodeImageReusesBuffer(t *testing.T) {
	var f Frame
	msg := imageMsg("rgb8", 16, 16, 48, seqBytes(48*16))
	if err := DecodeImage(msg, t0, &f); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := DecodeImage(msg, t0, &f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode of a same-sized frame", n)
	}
}

func FuzzDecodeImage(f *testing.F) {
	f.Add("rgb8", uint32(2), uint32(3), uint32(8), seqBytes(24))
	f.Add("mono8", uint32(4), uint32(2), uint32(4), seqBytes(8))
	f.Add("bgr8", uint32(1<<31), uint32(2), uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, enc string, w, h, step uint32, data []byte) {
		msg := imageMsg(enc, w, h, step, data)
		var dst Frame
		if err := DecodeImage(msg, t0, &dst); err != nil {
			if !errors.Is(err, ErrImage) {
				t.Fatalf("error %v does not wrap ErrImage", err)
			}
			return
		}
		if len(dst.Data) != dst.Step*dst.Height || dst.Step < dst.Width {
			t.Fatalf("inconsistent frame %dx%d step %d with %d bytes", dst.Width, dst.Height, dst.Step, len(dst.Data))
		}
		for y := 0; y < dst.Height; y++ {
			if !bytes.Equal(dst.Data[y*dst.Step:(y+1)*dst.Step], data[y*int(step):y*int(step)+dst.Step]) {
				t.Fatalf("row %d differs from the message", y)
			}
		}
	})
}

// FuzzDecodeImageWire feeds raw bytes through goroslib's decoder (what arrives on a
// connection) into DecodeImage.
func FuzzDecodeImageWire(f *testing.F) {
	var buf bytes.Buffer
	if err := protocommon.MessageEncode(&buf, imageMsg("rgb8", 2, 3, 6, seqBytes(18))); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sensor_msgs.Image
		if protocommon.MessageDecode(bytes.NewReader(b), &m) != nil {
			return
		}
		var dst Frame
		_ = DecodeImage(&m, t0, &dst)
	})
}

func FuzzDecodePose(f *testing.F) {
	f.Add("world", 1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.0)
	f.Add("", math.NaN(), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
	f.Fuzz(func(t *testing.T, frame string, x, y, z, qw, qx, qy, qz float64) {
		msg := poseMsg(frame, [3]float64{x, y, z}, [4]float64{qw, qx, qy, qz})
		var dst Pose
		if err := DecodePose(msg, "world", t0, &dst); err != nil {
			if dst != (Pose{}) {
				t.Fatal("dst changed on error")
			}
			return
		}
		for _, v := range append(dst.Pos[:], dst.Quat[:]...) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted non-finite pose %+v", dst)
			}
		}
		if n := math.Sqrt(qw*qw + qx*qx + qy*qy + qz*qz); n != 0 && math.Abs(n-1) > quatTolerance {
			t.Fatalf("accepted quaternion of norm %v", n)
		}
	})
}

// floats reads little-endian float64s from b (a fuzzer's bytes).
func floats(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

func FuzzDecodeJointState(f *testing.F) {
	enc := func(v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	f.Add("r_close,l_close", enc(0.01, -0.01), enc(0, 0))
	f.Add("x,l_close,r_close,r_close", enc(1, 2, 3, 4), []byte{})
	f.Add("l_close,r_close", enc(math.NaN(), 1), enc(1))
	f.Fuzz(func(t *testing.T, names string, pos, vel []byte) {
		msg := jointMsg(strings.Split(names, ","), floats(pos), floats(vel))
		dst := NewJoints([]string{"r_close", "l_close"})
		if err := DecodeJointState(msg, t0, &dst); err != nil {
			return
		}
		for k, want := range dst.Names {
			n := 0
			for i, name := range msg.Name {
				if name == want {
					n++
					if dst.Position[k] != msg.Position[i] {
						t.Fatalf("%s: position %v, message has %v", want, dst.Position[k], msg.Position[i])
					}
				}
			}
			if n != 1 || math.IsNaN(dst.Position[k]) || math.IsInf(dst.Position[k], 0) {
				t.Fatalf("%s accepted %d times with position %v", want, n, dst.Position[k])
			}
		}
	})
}
