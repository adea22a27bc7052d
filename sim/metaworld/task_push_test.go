package metaworld

import (
	"math"
	"testing"
)

func TestPushReward(t *testing.T) {
	e := newEnv(t, pushTask.Name, Options{})
	if _, err := e.Reset(3); err != nil {
		t.Fatal(err)
	}
	objZ := e.ObjInit[2]
	if e.Target[2] != objZ {
		t.Fatalf("goal height %v, want the puck's resting height %v", e.Target[2], objZ)
	}

	// Puck exactly on the goal: obj_to_target 0, in_place 1, success, reward overridden to 10.
	if err := e.SetObjXYZ(e.Target); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	r, info := e.Evaluate(Action{})
	if !info.Success {
		t.Error("puck on the goal: not a success")
	}
	near(t, "reward on goal", r, 10)
	near(t, "obj_to_target on goal", info.ObjToTarget, 0)
	near(t, "in_place on goal", info.InPlaceReward, 1)

	// 4.9 cm from the goal along x: still within TARGET_RADIUS 0.05.
	if err := e.SetObjXYZ(e.Target.Add(Vec3{0.049, 0, 0})); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	if r, info := e.Evaluate(Action{}); !info.Success || r != 10 {
		t.Errorf("puck 4.9 cm from goal: success %v reward %v, want true 10", info.Success, r)
	}
	// 5.1 cm: not a success.
	if err := e.SetObjXYZ(e.Target.Add(Vec3{0, 0.051, 0})); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	if _, info := e.Evaluate(Action{}); info.Success {
		t.Error("puck 5.1 cm from goal counted as success")
	}

	// Puck resting 15 cm beyond the hand in y, taken as the episode's initial puck position,
	// goal 20 cm further on; the hand is still where the reset left it and the gripper
	// effort is 0.
	p := Vec3{e.InitTCP[0], e.HandPos()[1] + 0.15, objZ}
	e.ObjInit, e.Target = p, p.Add(Vec3{0, 0.2, 0})
	if err := e.SetObjXYZ(p); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	// The recorded initial TCP lags the settled hand by one integration step; take the
	// current one so that this state is exactly "nothing has moved since the reset".
	e.InitTCP = e.TCP()
	for _, pad := range []Vec3{e.LeftPad(), e.RightPad()} {
		if math.Abs(pad[1]-p[1]) <= 0.05 {
			t.Fatalf("precondition: pad at y %v within 5 cm of the puck", pad[1])
		}
	}
	r, info = e.Evaluate(Action{0, 0, 0, 0})
	// in_place: long_tail tolerance with bounds (0, 0.05) and margin 0.2 at x = 0.2:
	// d = (0.2-0.05)/0.2 = 0.75, scale² = 1/0.1-1 = 9, value 1/(9·0.75²+1) = 1/6.0625.
	near(t, "in_place", info.InPlaceReward, 1/6.0625)
	near(t, "obj_to_target", info.ObjToTarget, 0.2)
	// Caging: each pad is more than 5 cm from the puck in y, and puck = obj_init, so each
	// pad's x equals margin+0.05 -> d = 1 -> 0.1; caging_y = hamacher(0.1, 0.1) =
	// 0.01/0.19 = 1/19. The TCP is where it was at reset and puck = obj_init, so caging_xz
	// also sits exactly at its margin: 0.1. caging = hamacher(1/19, 0.1) = (1/190)/(28/190)
	// = 1/28. Gripper effort 0 -> gripping 0 -> caging_and_gripping 0; high density
	// averages with caging: grasp reward 1/56. The TCP is far from the puck, so the reward
	// is 2·(1/56) = 1/28.
	near(t, "grasp_reward", info.GraspReward, 1.0/56)
	near(t, "reward", r, 1.0/28)
	if info.Success || info.NearObject != 0 || info.GraspSuccess != 0 {
		t.Errorf("far state: success %v near %v grasp %v, want false 0 0", info.Success, info.NearObject, info.GraspSuccess)
	}
}

func TestPushPolicy(t *testing.T) {
	var o Obs
	copy(o[0:3], []float64{0, 0.6, 0.2})     // hand
	copy(o[4:7], []float64{0.1, 0.65, 0.02}) // puck
	copy(o[36:39], []float64{0, 0.85, 0.02}) // goal
	// Far in x-y: aim 20 cm above the puck (offset -0.005 in x), gain 10, gripper 0.
	a := pushPolicy(&o)
	want := Action{10 * (0.095 - 0), 10 * (0.65 - 0.6), 10 * (0.22 - 0.2), 0}
	for i := range a {
		near(t, "push action far", a[i], want[i])
	}
	// Above the puck and low: head for the goal with effort 0.6.
	copy(o[0:3], []float64{0.095, 0.65, 0.05})
	a = pushPolicy(&o)
	want = Action{10 * (0 - 0.095), 10 * (0.85 - 0.65), 10 * (0.02 - 0.05), 0.6}
	for i := range a {
		near(t, "push action at puck", a[i], want[i])
	}
}
