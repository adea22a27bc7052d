package metaworld

import (
	"math"
	"testing"
)

func TestSweepIntoReward(t *testing.T) {
	e := newEnv(t, sweepIntoTask.Name, Options{})
	o, err := e.Reset(2)
	if err != nil {
		t.Fatal(err)
	}
	// The target is MetaWorld's fixed goal, the hole; the cube keeps the height it settled
	// at on the table top (z 0.05) during the hand reset: 0.05 + 0.02 half size.
	if e.Target != (Vec3{0, 0.84, 0.02}) || o.Goal() != e.Target {
		t.Fatalf("target %v goal obs %v", e.Target, o.Goal())
	}
	if math.Abs(e.ObjInit[2]-0.07) > 1e-3 {
		t.Errorf("cube starts at z %v, want about 0.07", e.ObjInit[2])
	}
	if d := math.Hypot(e.ObjInit[0], e.ObjInit[1]-0.84); d < 0.15 {
		t.Fatalf("cube starts %.3f from the hole, MetaWorld keeps >= 0.15", d)
	}
	const radius, grip, xz = 0.02, 0.02 + 0.005, 0.01
	place := func(p Vec3) {
		t.Helper()
		if err := e.SetObjXYZ(p); err != nil {
			t.Fatal(err)
		}
	}
	// The target is taken at the cube's own height, so only x-y counts.
	inPlace := func(p Vec3) float64 {
		target := Vec3{0, 0.84, p[2]}
		return wssLongTail(p.Dist(target), 0, 0.05, e.ObjInit.Dist(target))
	}

	// 3 cm off the hole centre in x and y: sqrt(0.03^2+0.03^2) = 0.0424 <= 0.05, a success,
	// and < 0.05 sets the reward to 10.
	place(Vec3{0.03, 0.81, 0.07})
	r, info := e.Evaluate(Action{})
	if !info.Success || r != 10 {
		t.Errorf("cube at the hole: success %v reward %v, want true and 10", info.Success, r)
	}
	near(t, "at hole obj_to_target", info.ObjToTarget, math.Sqrt(0.0018))
	near(t, "at hole in_place", info.InPlaceReward, 1)

	// 6 cm short of the hole centre: 0.06 > 0.05, no success.
	// reward = 2*grasp + 6*hamacher(grasp, in_place).
	p := Vec3{0, 0.78, 0.07}
	place(p)
	r, info = e.Evaluate(Action{})
	g, ip := wssSideCaging(e, p, radius, grip, xz), inPlace(p)
	if info.Success {
		t.Errorf("cube 6 cm short counted as success (%+v)", info)
	}
	near(t, "short obj_to_target", info.ObjToTarget, 0.06)
	near(t, "short in_place", info.InPlaceReward, ip)
	near(t, "short grasp_reward", info.GraspReward, g)
	near(t, "short reward", r, 2*g+6*wssHamacher(g, ip))

	// Cube between the open fingers at the TCP: the caged branch of the grasp reward.
	p = e.TCP()
	place(p)
	r, info = e.Evaluate(Action{})
	g, ip = wssSideCaging(e, p, radius, grip, xz), inPlace(p)
	if g < 0.5 {
		t.Errorf("cube at the TCP: grasp reward %v, want the caged branch (>= 0.5)", g)
	}
	if info.Success {
		t.Errorf("cube in the hand counted as success (%+v)", info)
	}
	near(t, "caged grasp_reward", info.GraspReward, g)
	near(t, "caged reward", r, 2*g+6*wssHamacher(g, ip))
}

func TestSweepIntoPolicy(t *testing.T) {
	var o Obs
	set := func(hand Vec3) {
		copy(o[0:3], hand[:])
		copy(o[4:7], []float64{0.05, 0.65, 0.07}) // cube; aim point (0.045, 0.65, 0.08)
		copy(o[36:39], []float64{0, 0.84, 0.02})
	}
	// Far in x-y: 30 cm above the aim point, gripper open.
	set(Vec3{0, 0.6, 0.2})
	want := Action{25 * 0.045, 25 * 0.05, 25 * (0.38 - 0.2), -1}
	if got := sweepIntoPolicy(&o); !wssActNear(got, want) {
		t.Errorf("far: %v, want %v", got, want)
	}
	// Above the cube, 13 cm up: descend to the aim point, effort 0.7 (within 15 cm).
	set(Vec3{0.045, 0.65, 0.2})
	want = Action{0, 0, 25 * (0.08 - 0.2), 0.7}
	if got := sweepIntoPolicy(&o); !wssActNear(got, want) {
		t.Errorf("above: %v, want %v", got, want)
	}
	// Down at the cube: head for the goal.
	set(Vec3{0.045, 0.65, 0.1})
	want = Action{25 * -0.045, 25 * 0.19, 25 * (0.02 - 0.1), 0.7}
	if got := sweepIntoPolicy(&o); !wssActNear(got, want) {
		t.Errorf("at cube: %v, want %v", got, want)
	}
}
