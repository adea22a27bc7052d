package safety_test

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"robodistill/control/safety"
)

// bytes feeds a fuzz input out; past its end it reads zeros.
type bytes []byte

func (b *bytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

// value returns mostly numbers in [-2, 2), sometimes NaN, ±Inf, huge or any float64.
func (b *bytes) value() float64 {
	switch tag := b.byte(); {
	case tag < 200:
		return float64(int16(uint16(b.byte())<<8|uint16(b.byte()))) / 16384
	case tag < 210:
		return math.NaN()
	case tag < 220:
		return math.Inf(1)
	case tag < 230:
		return math.Inf(-1)
	case tag < 240:
		return math.Copysign(math.MaxFloat64, float64(tag%2)-0.5)
	default:
		var raw [8]byte
		for i := range raw {
			raw[i] = b.byte()
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(raw[:]))
	}
}

// FuzzFilter drives a filter through any sequence of inputs, Stop and Reset calls and
// checks the invariants of every output against the previous one.
func FuzzFilter(f *testing.F) {
	f.Add([]byte{0, 20, 0, 100, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 20, 0, 64, 0, 0, 205, 0, 215, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 255, 200})
	f.Add([]byte{0x80, 20, 0, 127, 255, 0, 127, 255, 0, 128, 0, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0, 64, 0, 0,
		0x80, 20, 0, 127, 255, 0, 127, 255, 0, 128, 0, 0, 0, 0, 0, 60, 0, 0, 64, 0, 0, 64, 0, 0})
	f.Add([]byte{0x0a, 255, 60, 0x10, 255, 0x08, 5, 0x04, 200, 101})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes(data)
		cfg := testConfig()
		if len(data) > 0 && data[0]&0x80 != 0 { // asymmetric ranges, a gripper range without 0
			cfg.ActionLow = [4]float64{-0.5, -1, -0.25, 0.25}
			cfg.ActionHigh = [4]float64{0.75, 0, 1, 0.875}
			cfg.MaxDelta = [4]float64{0.125, 1, 0.3, 0.1}
		}
		flt, err := safety.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		last := safety.Output{Command: [4]float64{0, 0, 0, min(max(0, cfg.ActionLow[3]), cfg.ActionHigh[3])}, State: safety.Hold}
		now := t0
		for cycle := 0; len(in) > 0; cycle++ {
			ctl := in.byte()
			now = now.Add(time.Duration(in.byte()) * 4 * time.Millisecond)
			x := safety.Input{Now: now, CameraStamp: now, StateStamp: now, Estop: ctl&1 != 0}
			if ctl&2 != 0 {
				x.CameraStamp = now.Add(time.Duration(int8(in.byte())) * 2 * time.Millisecond)
			}
			if ctl&4 != 0 {
				x.StateStamp = now.Add(time.Duration(int8(in.byte())) * 2 * time.Millisecond)
			}
			for i := range x.Action {
				x.Action[i] = in.value()
			}
			mid := [3]float64{0, 0.625, 0.375}
			half := [3]float64{0.5, 0.375, 0.375}
			for i := range x.EEPos {
				x.EEPos[i] = mid[i] + half[i]*in.value() // inside for |value| ≤ 1
			}
			if ctl&8 != 0 {
				err := flt.Reset()
				switch {
				case last.State == safety.EStop && err != safety.ErrEstop:
					t.Fatalf("cycle %d: Reset in EStop = %v, want ErrEstop", cycle, err)
				case last.State != safety.EStop && err != nil:
					t.Fatalf("cycle %d: Reset in %v = %v", cycle, last.State, err)
				case last.State == safety.Stop:
					last.State = safety.Hold
				}
			}
			if ctl&16 != 0 {
				out := flt.Stop()
				if out.Prev != last.State || out.Changed != (out.State != last.State) {
					t.Fatalf("cycle %d: Stop() = %+v after %v", cycle, out, last.State)
				}
				if want := max(last.State, safety.Stop); out.State != want {
					t.Fatalf("cycle %d: Stop() state %v after %v, want %v", cycle, out.State, last.State, want)
				}
				checkHeld(t, cycle, out, last)
				last = out
			}
			out := flt.Filter(x)
			checkOutput(t, cycle, cfg, x, out, last)
			last = out
		}
	})
}

func checkOutput(t *testing.T, cycle int, cfg safety.Config, in safety.Input, out, last safety.Output) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("cycle %d: in %+v\nlast %+v\nout  %+v\n"+format, append([]any{cycle, in, last, out}, args...)...)
	}
	for i, v := range out.Command {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < cfg.ActionLow[i] || v > cfg.ActionHigh[i] {
			fail("command[%d] = %v outside [%v, %v]", i, v, cfg.ActionLow[i], cfg.ActionHigh[i])
		}
	}
	if out.Prev != last.State || out.Changed != (out.State != out.Prev) {
		fail("prev/changed wrong")
	}
	if in.Estop && out.State != safety.EStop {
		fail("estop engaged but state %v", out.State)
	}
	if (last.State == safety.Stop || last.State == safety.EStop) && out.State < safety.Stop {
		fail("left a latched %v without Reset", last.State)
	}
	switch out.State {
	case safety.Hold, safety.Stop, safety.EStop:
		checkHeld(t, cycle, out, last)
		return
	}
	// OK or Clipped: the inputs were usable.
	for _, s := range []struct {
		stamp time.Time
		max   time.Duration
	}{{in.CameraStamp, cfg.CameraMaxAge}, {in.StateStamp, cfg.StateMaxAge}} {
		if age := in.Now.Sub(s.stamp); age > s.max || age < -s.max {
			fail("moving on an input %v old", age)
		}
	}
	for _, v := range append(in.Action[:], in.EEPos[:]...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			fail("moving on a non-finite input")
		}
	}
	if out.State == safety.OK && (out.Command != in.Action || out.Reason != safety.ReasonNone) {
		fail("OK must pass the action unchanged")
	}
	if out.State == safety.Clipped && (out.Command == in.Action ||
		out.Reason != safety.ReasonRange && out.Reason != safety.ReasonWorkspace && out.Reason != safety.ReasonRateLimit) {
		fail("Clipped without a change or with reason %v", out.Reason)
	}
	const tol = 1e-12
	for i, v := range out.Command {
		p := last.Command[i]
		braking := p >= 0 && v >= 0 && v <= p || p <= 0 && v <= 0 && v >= p
		if math.Abs(v-p) > cfg.MaxDelta[i]+tol && !(i < 3 && out.Reason == safety.ReasonWorkspace && braking) {
			fail("|Δcommand[%d]| = %v > max_delta %v", i, math.Abs(v-p), cfg.MaxDelta[i])
		}
		if i == 3 {
			continue
		}
		ee := in.EEPos[i]
		if ee < cfg.WorkspaceMin[i] && v < 0 || ee > cfg.WorkspaceMax[i] && v > 0 {
			fail("command[%d] = %v moves a hand outside the workspace further out", i, v)
		}
		if ee < cfg.WorkspaceMin[i] || ee > cfg.WorkspaceMax[i] {
			continue
		}
		if target := ee + v*cfg.Scale; target < cfg.WorkspaceMin[i]-tol || target > cfg.WorkspaceMax[i]+tol {
			fail("target[%d] = %v outside [%v, %v]", i, target, cfg.WorkspaceMin[i], cfg.WorkspaceMax[i])
		}
	}
}

// checkHeld: zero velocity, the gripper where the last command left it.
func checkHeld(t *testing.T, cycle int, out, last safety.Output) {
	t.Helper()
	if want := [4]float64{0, 0, 0, last.Command[3]}; out.Command != want {
		t.Fatalf("cycle %d: %v command %v, want %v", cycle, out.State, out.Command, want)
	}
}
