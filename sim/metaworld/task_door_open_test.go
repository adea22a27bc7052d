package metaworld

import (
	"math"
	"testing"
)

func TestDoorOpenReward(t *testing.T) {
	e := newEnv(t, doorOpenTask.Name, Options{})
	o, err := e.Reset(1)
	if err != nil {
		t.Fatal(err)
	}
	door := e.ObjInit
	// goal = door + (-0.3, -0.45, 0)
	near(t, "goal x", e.Target[0], door[0]-0.3)
	near(t, "goal y", e.Target[1], door[1]-0.45)
	// The closed handle is well to the right of the goal: not a success.
	if d := math.Abs(o[4] - e.Target[0]); d < 0.3 {
		t.Fatalf("closed handle only %v from the goal in x", d)
	}

	// Closed door, gripper effort -1 (grab reward (−1+1)/2 = 0, so the hamacher term is 0):
	// reward = 8·opened; theta = 0 is not < -π/90, so opened = 0.8·tolerance(2π/3, (0, 0.5),
	// margin π/3): d = (2π/3-0.5)/(π/3) = 2 - 1.5/π, long tail 1/(9d²+1).
	d := 2 - 1.5/math.Pi
	openedClosed := 0.8 / (9*d*d + 1)
	r, info := e.Evaluate(Action{0, 0, 0, -1})
	near(t, "opened closed", info.InPlaceReward, openedClosed)
	near(t, "reward closed", r, 8*openedClosed)
	if info.Success || info.GraspSuccess != 0 || info.GraspReward != 0 {
		t.Errorf("closed door: success %v grasp %v/%v, want false 0 0", info.Success, info.GraspSuccess, info.GraspReward)
	}

	// Same state with effort 1: grab reward 1 and hamacher(ready, 1) = ready, so
	// reward = 2·ready + 8·opened. ready from _reward_pos with the hand where the reset left it:
	hand, handle := o.Hand(), o.Obj1()
	dx, dy := hand[0]-(handle[0]-0.05), hand[1]-handle[1]
	radius := math.Hypot(dx, dy)
	floor := 0.0
	if radius > 0.12 {
		floor = 0.04*math.Log(radius-0.12) + 0.4
	}
	above := 1.0
	if hand[2] < floor {
		// bounds (0, 0.01), margin floor/2
		dd := (floor - hand[2] - 0.01) / (floor / 2)
		above = 1 / (9*dd*dd + 1)
	}
	// distance of the hand from handle + (-0.05, 0, 0) + (0.05, 0.03, -0.01), bounds (0, 0.06),
	// margin 0.5
	px, py, pz := hand[0]-handle[0], hand[1]-handle[1]-0.03, hand[2]-handle[2]+0.01
	di := (math.Sqrt(px*px+py*py+pz*pz) - 0.06) / 0.5
	inPlace := 1 / (9*di*di + 1)
	if di < 0 {
		inPlace = 1
	}
	ready := above * inPlace / (above + inPlace - above*inPlace)
	r, info = e.Evaluate(Action{0, 0, 0, 1})
	near(t, "ready closed", info.NearObject, ready)
	near(t, "reward closed, gripping", r, 2*ready+8*openedClosed)
	if info.GraspSuccess != 1 || info.GraspReward != 1 {
		t.Errorf("effort 1: grasp %v/%v, want 1 1", info.GraspSuccess, info.GraspReward)
	}

	// Door swung 1 rad: the handle has moved left but is still ~0.23 m from the goal in x.
	// opened = 0.2 (theta < -π/90) + 0.8/(9d²+1), d = (2π/3 - 1 - 0.5)/(π/3) = 2 - 4.5/π.
	if err := e.SetJoint("doorjoint", -1); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	d = 2 - 4.5/math.Pi
	opened1 := 0.2 + 0.8/(9*d*d+1)
	r, info = e.Evaluate(Action{0, 0, 0, -1})
	if info.Success {
		t.Errorf("door at 1 rad (handle x %v, goal x %v) counted as success", e.Obs()[4], e.Target[0])
	}
	near(t, "opened 1 rad", info.InPlaceReward, opened1)
	near(t, "reward 1 rad", r, 8*opened1)

	// Door swung 90°: the handle is within 8 cm of the goal in x, a success with reward 10;
	// opened = 0.2 + 0.8/(9d²+1), d = (π/6 - 0.5)/(π/3) = 0.5 - 1.5/π.
	if err := e.SetJoint("doorjoint", -math.Pi/2); err != nil {
		t.Fatal(err)
	}
	refresh(t, e)
	d = 0.5 - 1.5/math.Pi
	r, info = e.Evaluate(Action{0, 0, 0, -1})
	if !info.Success {
		t.Errorf("door at 90° (handle x %v, goal x %v): not a success", e.Obs()[4], e.Target[0])
	}
	near(t, "reward 90°", r, 10)
	near(t, "opened 90°", info.InPlaceReward, 0.2+0.8/(9*d*d+1))
}

func TestDoorOpenPolicy(t *testing.T) {
	var o Obs
	copy(o[0:3], []float64{0, 0.6, 0.2})      // hand
	copy(o[4:7], []float64{0.25, 0.66, 0.15}) // handle
	// The policy works from the handle shifted 5 cm left: (0.20, 0.66, 0.15). Far in x-y:
	// aim at that + (0.06, 0.02, 0.2), gain 25, gripper closed.
	a := doorOpenPolicy(&o)
	want := Action{25 * 0.26, 25 * (0.68 - 0.6), 25 * (0.35 - 0.2), 1}
	for i := range a {
		near(t, "door action far", a[i], want[i])
	}
	// Close in x-y but high: drop to the front edge.
	copy(o[0:3], []float64{0.25, 0.68, 0.3})
	a = doorOpenPolicy(&o)
	want = Action{25 * (0.26 - 0.25), 0, 25 * (0.15 - 0.3), 1}
	for i := range a {
		near(t, "door action drop", a[i], want[i])
	}
	// Down at the handle: push toward the shifted handle point.
	copy(o[0:3], []float64{0.26, 0.68, 0.16})
	a = doorOpenPolicy(&o)
	want = Action{25 * (0.20 - 0.26), 25 * (0.66 - 0.68), 25 * (0.15 - 0.16), 1}
	for i := range a {
		near(t, "door action push", a[i], want[i])
	}
	if o[4] != 0.25 {
		t.Error("policy modified the observation")
	}
}
