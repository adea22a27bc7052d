package metaworld

import (
	"math"
	"testing"
)

// wssLongTail is dm_control's tolerance with the long_tail sigmoid and value 0.1 at the
// margin, written out: 1 inside [lo, hi], else 1/((d*3)^2+1) with d the distance to the
// nearer bound over margin (3 = sqrt(1/0.1-1)); a zero margin makes it a step.
func wssLongTail(x, lo, hi, margin float64) float64 {
	if lo <= x && x <= hi {
		return 1
	}
	if margin == 0 {
		return 0
	}
	d := (lo - x) / margin
	if x > hi {
		d = (x - hi) / margin
	}
	return 1 / ((d*3)*(d*3) + 1)
}

// wssHamacher is the Hamacher product a*b/(a+b-a*b).
func wssHamacher(a, b float64) float64 {
	if a+b-a*b == 0 {
		return 0
	}
	return a * b / (a + b - a*b)
}

func TestWindowOpenReward(t *testing.T) {
	e := newEnv(t, windowOpenTask.Name, Options{})
	o, err := e.Reset(5)
	if err != nil {
		t.Fatal(err)
	}
	// Reset: window at the random position, target 20 cm along +x, handle site at
	// (-0.04, -0.095, 0) from the closed sliding pane.
	if e.Target != e.ObjInit.Add(Vec3{0.2, 0, 0}) || o.Goal() != e.Target {
		t.Fatalf("target %v goal obs %v for window at %v", e.Target, o.Goal(), e.ObjInit)
	}
	handle := e.ObjInit.Add(Vec3{-0.04, -0.095, 0})
	for i := 0; i < 3; i++ {
		near(t, "handle obs", o[4+i], handle[i])
	}
	for i := 7; i < 18; i++ {
		if o[i] != 0 {
			t.Errorf("obs[%d] = %v, want 0 (window-open has no quaternion)", i, o[i])
		}
	}
	tcp := e.TCP()
	// reach: tolerance(|handle - tcp|, (0, 0.02), margin |(|handle_init - init_tcp|) - 0.02|)
	reachAt := func(h Vec3) float64 {
		return wssLongTail(h.Dist(tcp), 0, 0.02, math.Abs(handle.Dist(e.InitTCP)-0.02))
	}

	// Fully open (slide 0.2): handle x = window x - 0.04 + 0.2, target x = window x + 0.2,
	// so |obj_x - target_x| = 0.04 <= 0.05: in place (1) and success;
	// reward = 10 * hamacher(reach, 1) = 10 * reach.
	if err := e.SetJoint("window_slide", 0.2); err != nil {
		t.Fatal(err)
	}
	r, info := e.Evaluate(Action{})
	open := handle.Add(Vec3{0.2, 0, 0})
	reach := reachAt(open)
	if !info.Success {
		t.Errorf("fully open window: not a success (%+v)", info)
	}
	near(t, "open obj_to_target", info.ObjToTarget, 0.04)
	near(t, "open in_place", info.InPlaceReward, 1)
	near(t, "open grasp_reward (reach)", info.GraspReward, reach)
	near(t, "open reward", r, 10*reach)
	if info.GraspSuccess != 1 || info.NearObject != 0 {
		t.Errorf("open: grasp_success %v near_object %v, want 1 and 0 (hand far)", info.GraspSuccess, info.NearObject)
	}

	// Half open (slide 0.1): |obj_x - target_x| = |-0.04 + 0.1 - 0.2| = 0.14 > 0.05: no
	// success; in_place = long tail with d = (0.14-0.05)/|0.2-0.05| = 0.6:
	// 1/((0.6*3)^2+1) = 1/4.24.
	if err := e.SetJoint("window_slide", 0.1); err != nil {
		t.Fatal(err)
	}
	r, info = e.Evaluate(Action{})
	reach = reachAt(handle.Add(Vec3{0.1, 0, 0}))
	if info.Success {
		t.Errorf("half-open window counted as success (%+v)", info)
	}
	near(t, "half obj_to_target", info.ObjToTarget, 0.14)
	near(t, "half in_place", info.InPlaceReward, 1/4.24)
	near(t, "half reward", r, 10*wssHamacher(reach, 1/4.24))
}

func TestWindowOpenPolicy(t *testing.T) {
	var o Obs
	set := func(hand, handle Vec3) {
		copy(o[0:3], hand[:])
		copy(o[4:7], handle[:])
	}
	handle := Vec3{0.1, 0.7, 0.16} // aim point: handle + (-0.03, -0.03, -0.08) = (0.07, 0.67, 0.08)
	// Far in x-y: go 30 cm above the aim point; p = 25.
	set(Vec3{0, 0.4, 0.2}, handle)
	want := Action{25 * 0.07, 25 * 0.27, 25 * (0.38 - 0.2), 1}
	if got := windowOpenPolicy(&o); !wssActNear(got, want) {
		t.Errorf("far: %v, want %v", got, want)
	}
	// Above the aim point: descend onto it.
	set(Vec3{0.07, 0.67, 0.3}, handle)
	want = Action{0, 0, 25 * (0.08 - 0.3), 1}
	if got := windowOpenPolicy(&o); !wssActNear(got, want) {
		t.Errorf("above: %v, want %v", got, want)
	}
	// At the aim point: push 10 cm along +x.
	set(Vec3{0.07, 0.67, 0.09}, handle)
	want = Action{25 * 0.1, 0, 25 * (0.08 - 0.09), 1}
	if got := windowOpenPolicy(&o); !wssActNear(got, want) {
		t.Errorf("at handle: %v, want %v", got, want)
	}
}

func wssActNear(a, b Action) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}
