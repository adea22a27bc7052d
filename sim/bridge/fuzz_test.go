package bridge

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/geometry_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_srvs"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
	"go.uber.org/zap"

	"robodistill/control/rosiface"
)

func encode(t testing.TB, m any) []byte {
	var b bytes.Buffer
	if err := protocommon.MessageEncode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// callbackBridge has just what the subscriber callbacks use.
func callbackBridge() *Bridge {
	return &Bridge{in: newInputs(), hot: zap.NewNop(), topics: rosiface.DefaultTopics("")}
}

// FuzzTwist: raw bytes -> goroslib's decoder -> the bridge's callback. Nothing crashes;
// a message that fails validation is counted and leaves the command slot untouched; an
// accepted one stores finite values.
func FuzzTwist(f *testing.F) {
	f.Add(encode(f, rosiface.Twist(rosiface.Header(1, time.Unix(1, 0), "world"), [3]float64{0.1, -0.2, 0.3})))
	f.Add(encode(f, rosiface.Twist(rosiface.Header(1, time.Unix(1, 0), ""), [3]float64{math.NaN(), 0, math.Inf(1)})))
	f.Add(encode(f, rosiface.Twist(rosiface.Header(1, time.Unix(1, 0), "camera"), [3]float64{})))
	f.Add([]byte{4, 0, 0, 0, 1, 2})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, decErr := DecodeTwist(data) // must not panic
		var m geometry_msgs.TwistStamped
		if err := protocommon.MessageDecode(bytes.NewReader(data), &m); err != nil {
			if decErr == nil {
				t.Fatal("DecodeTwist accepted bytes goroslib cannot decode")
			}
			return
		}
		b := callbackBridge()
		before := b.in.snapshot()
		b.onTwist(&m)
		after := b.in.snapshot()
		if _, err := ParseTwist(&m); err != nil {
			if b.malVel.Load() != 1 || after != before {
				t.Fatalf("malformed %+v: counted %d, slot %+v", m.Twist, b.malVel.Load(), after)
			}
			return
		}
		if after.velSeq != before.velSeq+1 {
			t.Fatal("valid command not stored")
		}
		for _, v := range after.vel {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("stored non-finite velocity %v", after.vel)
			}
		}
	})
}

func FuzzGripper(f *testing.F) {
	f.Add(encode(f, &std_msgs.Float64{Data: 0.5}))
	f.Add(encode(f, &std_msgs.Float64{Data: math.NaN()}))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	f.Add([]byte{3, 0, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeGripper(data)
		var m std_msgs.Float64
		if err := protocommon.MessageDecode(bytes.NewReader(data), &m); err != nil {
			return
		}
		b := callbackBridge()
		b.onGripper(&m)
		s := b.in.snapshot()
		if math.IsNaN(m.Data) || math.IsInf(m.Data, 0) {
			if b.malGrip.Load() != 1 || s.gripSeq != 0 {
				t.Fatalf("non-finite effort %v stored", m.Data)
			}
		} else if s.gripSeq != 1 || s.grip != m.Data {
			t.Fatalf("effort %v not stored: %+v", m.Data, s)
		}
	})
}

// FuzzTrigger: sim/reset's request has no fields; anything else must be an error, not a
// crash.
func FuzzTrigger(f *testing.F) {
	f.Add(encode(f, &std_srvs.TriggerReq{}))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := DecodeTrigger(data)
		if err == nil && !bytes.Equal(data[:4], []byte{0, 0, 0, 0}) {
			t.Fatalf("non-empty trigger request %x accepted", data)
		}
	})
}
