package metaworld

import (
	"math"
	"testing"
)

func TestDrawerOpenReward(t *testing.T) {
	e := newEnv(t, drawerOpenTask.Name, Options{})
	o, err := e.Reset(2)
	if err != nil {
		t.Fatal(err)
	}
	x := e.ObjInit[0]
	// Drawer body at (x, 0.9, 0); goal = drawer + (0, -0.16-0.2, 0.09) = (x, 0.54, 0.09).
	near(t, "goal y", e.Target[1], 0.54)
	near(t, "goal z", e.Target[2], 0.09)
	near(t, "goal x", e.Target[0], x)
	// Closed drawer: drawer_link sits at drawer + (0, -0.01, 0.084+0.006); the observed
	// handle is 16 cm in front of it: (x, 0.73, 0.09).
	h := o.Obj1()
	near(t, "closed handle x", h[0], x)
	near(t, "closed handle y", h[1], 0.73)
	near(t, "closed handle z", h[2], 0.09)
	if q := o[7:11]; q[0] != 1 || q[1] != 0 || q[2] != 0 || q[3] != 0 {
		t.Errorf("drawer quaternion %v, want identity (w, x, y, z)", q)
	}

	r, info := e.Evaluate(Action{0, 0, 0, -1})
	// handle_error = 0.73 - 0.54 = 0.19; opening: bounds (0, 0.02), margin 0.2,
	// d = (0.19-0.02)/0.2 = 0.85, long tail 1/(9·0.85²+1) = 1/7.5025.
	near(t, "obj_to_target closed", info.ObjToTarget, 0.19)
	near(t, "opening closed", info.InPlaceReward, 1/7.5025)
	// caging: error (handle - hand)·(3, 3, 1) against the initial error
	// (handle_init - init_tcp)·(3, 3, 1), handle_init = goal + (0, 0.2, 0) = (x, 0.74, 0.09);
	// bounds (0, 0.01), long tail with that initial error as margin.
	hand := o.Hand()
	gx, gy, gz := 3*(x-hand[0]), 3*(0.73-hand[1]), 0.09-hand[2]
	ix, iy, iz := 3*(x-e.InitTCP[0]), 3*(0.74-e.InitTCP[1]), 0.09-e.InitTCP[2]
	dc := (math.Sqrt(gx*gx+gy*gy+gz*gz) - 0.01) / math.Sqrt(ix*ix+iy*iy+iz*iz)
	caging := 1 / (9*dc*dc + 1)
	near(t, "caging closed", info.GraspReward, caging)
	near(t, "reward closed", r, 5*(caging+1/7.5025))
	if info.Success || info.NearObject != 0 || info.GraspSuccess != 1 {
		t.Errorf("closed drawer: success %v near %v grasp %v, want false 0 1 (gripper open)", info.Success, info.NearObject, info.GraspSuccess)
	}

	// Drawer pulled 16.5 cm (just past its soft limit): handle_error = 0.19-0.165 = 0.025
	// <= 0.03, a success; opening d = 0.005/0.2 = 0.025 -> 1/(9·0.025²+1) = 1/1.005625.
	if err := e.SetJoint("goal_slidey", -0.165); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	r, info = e.Evaluate(Action{0, 0, 0, -1})
	if !info.Success {
		t.Error("drawer open 16.5 cm: not a success")
	}
	near(t, "obj_to_target open", info.ObjToTarget, 0.025)
	near(t, "opening open", info.InPlaceReward, 1/1.005625)
	near(t, "reward open", r, 5*(info.GraspReward+1/1.005625))

	// Pulled 15.5 cm: handle_error 0.035 > 0.03, not yet a success.
	if err := e.SetJoint("goal_slidey", -0.155); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	if _, info := e.Evaluate(Action{}); info.Success {
		t.Errorf("drawer open 15.5 cm (handle error %v) counted as success", info.ObjToTarget)
	}
}

func TestDrawerOpenPolicy(t *testing.T) {
	var o Obs
	copy(o[0:3], []float64{0, 0.6, 0.2})      // hand
	copy(o[4:7], []float64{0.05, 0.73, 0.09}) // handle
	// Far in x-y: aim 30 cm above the handle point 2 cm low, gain 4, gripper open.
	a := drawerOpenPolicy(&o)
	want := Action{4 * 0.05, 4 * 0.13, 4 * (0.37 - 0.2), -1}
	for i := range a {
		near(t, "drawer action far", a[i], want[i])
	}
	// Over the handle but high: drop onto it.
	copy(o[0:3], []float64{0.05, 0.75, 0.2})
	a = drawerOpenPolicy(&o)
	want = Action{0, 4 * (0.73 - 0.75), 4 * (0.07 - 0.2), -1}
	for i := range a {
		near(t, "drawer action drop", a[i], want[i])
	}
	// At the handle: pull toward 6 cm in front of it with gain 50.
	copy(o[0:3], []float64{0.05, 0.74, 0.08})
	a = drawerOpenPolicy(&o)
	want = Action{0, 50 * (0.67 - 0.74), 50 * (0.07 - 0.08), -1}
	for i := range a {
		near(t, "drawer action pull", a[i], want[i])
	}
}
