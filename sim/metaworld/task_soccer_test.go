package metaworld

import (
	"math"
	"testing"
)

// wssSideCaging is the caging reward soccer-v3 and sweep-into-v3 define, written out from
// MetaWorld's formula for the current pads, TCP and object position.
func wssSideCaging(e *Env, obj Vec3, radius, grip, xzThresh float64) float64 {
	lp, rp, tcp := e.LeftPad(), e.RightPad(), e.TCP()
	dl := lp[1] - obj[1] // left pad to object, y
	dr := obj[1] - rp[1] // object to right pad, y
	ml := math.Abs(math.Abs(obj[1]-e.InitLeftPad[1]) - 0.05)
	mr := math.Abs(math.Abs(obj[1]-e.InitRightPad[1]) - 0.05)
	cy := wssHamacher(wssLongTail(dr, radius, 0.05, mr), wssLongTail(dl, radius, 0.05, ml))
	gy := wssHamacher(wssLongTail(dr, radius, grip, mr), wssLongTail(dl, radius, grip, ml))
	xzDist := math.Hypot(tcp[0]-obj[0], tcp[2]-obj[2])
	xzMargin := math.Hypot(e.ObjInit[0]-e.InitTCP[0], e.ObjInit[2]-e.InitTCP[2]) - xzThresh
	c := wssHamacher(cy, wssLongTail(xzDist, 0, xzThresh, xzMargin))
	g := 0.0
	if c > 0.95 {
		g = gy
	}
	return (c + g) / 2
}

func TestSoccerReward(t *testing.T) {
	e := newEnv(t, soccerTask.Name, Options{})
	o, err := e.Reset(3)
	if err != nil {
		t.Fatal(err)
	}
	T := e.Target
	if T[2] != 0 || o.Goal() != T || e.ObjInit[2] != 0.03 {
		t.Fatalf("target %v goal obs %v ball init %v", T, o.Goal(), e.ObjInit)
	}
	if d := math.Hypot(e.ObjInit[0]-T[0], e.ObjInit[1]-T[1]); d < 0.15 {
		t.Fatalf("ball starts %.3f from the goal, MetaWorld keeps >= 0.15", d)
	}
	// The ball's quaternion (scipy order x, y, z, w) is the identity after the reset.
	if o[7] != 0 || o[8] != 0 || o[9] != 0 || o[10] != 1 {
		t.Errorf("ball quaternion %v, want [0 0 0 1]", o[7:11])
	}
	const radius, grip, xz = 0.013, 0.013 + 0.01, 0.005
	scaled := func(v Vec3) float64 { return v.Mul(Vec3{3, 1, 1}).Norm() }
	place := func(p Vec3) {
		t.Helper()
		if err := e.SetObjXYZ(p); err != nil {
			t.Fatal(err)
		}
	}

	// Ball resting in the goal mouth, 0.026 above the target (which has z = 0): distance
	// 0.026 <= 0.07 is a success, and the scaled distance 0.026 < 0.07 sets the reward to 10.
	place(Vec3{T[0], T[1], 0.026})
	r, info := e.Evaluate(Action{0, 0, 0, 1})
	if !info.Success || r != 10 {
		t.Errorf("ball in goal: success %v reward %v, want true and 10", info.Success, r)
	}
	near(t, "in goal obj_to_target", info.ObjToTarget, 0.026)
	near(t, "in goal in_place", info.InPlaceReward, 1)

	// 5 cm right of and 12 cm short of the target: distance sqrt(0.05^2+0.12^2+0.026^2) =
	// sqrt(0.017576) > 0.07, no success. Scaled (x*3) distance sqrt(0.15^2+0.12^2+0.026^2) =
	// sqrt(0.037576); the margin is the ball's scaled distance from its start; short of the
	// goal line (target y - 0.1), so no penalty. reward = 3*grasp + 6.5*in_place.
	p := Vec3{T[0] + 0.05, T[1] - 0.12, 0.026}
	place(p)
	r, info = e.Evaluate(Action{})
	ip := wssLongTail(math.Sqrt(0.037576), 0, 0.07, scaled(p.Sub(e.ObjInit)))
	g := wssSideCaging(e, p, radius, grip, xz)
	if info.Success {
		t.Errorf("ball short of goal counted as success (%+v)", info)
	}
	near(t, "short obj_to_target", info.ObjToTarget, math.Sqrt(0.017576))
	near(t, "short in_place", info.InPlaceReward, ip)
	near(t, "short grasp_reward", info.GraspReward, g)
	near(t, "short reward", r, 3*g+6.5*ip)

	// Just past the goal line (9.5 cm short of the target, line at 10 cm) but 11 cm wide of
	// it: in_place loses 2*(0.005/(1-(target y-0.1))), clipped to [0, 1]. Scaled distance
	// sqrt(0.33^2+0.095^2+0.026^2).
	p = Vec3{T[0] + 0.11, T[1] - 0.095, 0.026}
	place(p)
	r, info = e.Evaluate(Action{})
	ip = wssLongTail(math.Sqrt(0.33*0.33+0.095*0.095+0.026*0.026), 0, 0.07, scaled(p.Sub(e.ObjInit)))
	ip = math.Max(0, math.Min(1, ip-2*(0.005/(1-(T[1]-0.1)))))
	if ip <= 0 {
		t.Fatalf("wide case: expected in_place %v is clipped; pick a state that tests the penalty", ip)
	}
	g = wssSideCaging(e, p, radius, grip, xz)
	if info.Success {
		t.Errorf("ball wide of goal counted as success (%+v)", info)
	}
	near(t, "wide in_place", info.InPlaceReward, ip)
	near(t, "wide reward", r, 3*g+6.5*ip)

	// Ball between the open fingers at the TCP: caged in y (each pad 1.3 to 5 cm away) and
	// in x-z, so the gripping term counts. Far from the goal: no success.
	p = e.TCP()
	place(p)
	r, info = e.Evaluate(Action{})
	g = wssSideCaging(e, p, radius, grip, xz)
	if g < 0.5 {
		t.Errorf("ball at the TCP: grasp reward %v, want the caged branch (>= 0.5)", g)
	}
	ip = wssLongTail(scaled(p.Sub(T)), 0, 0.07, scaled(p.Sub(e.ObjInit)))
	if info.Success {
		t.Errorf("ball in the hand counted as success (%+v)", info)
	}
	near(t, "caged grasp_reward", info.GraspReward, g)
	near(t, "caged reward", r, 3*g+6.5*ip)
	if info.NearObject != 1 {
		t.Errorf("ball at the TCP: near_object %v, want 1", info.NearObject)
	}
}

func TestSoccerPolicy(t *testing.T) {
	var o Obs
	set := func(hand, ball, goal Vec3) {
		copy(o[0:3], hand[:])
		copy(o[4:7], ball[:])
		copy(o[36:39], goal[:])
	}
	goal := Vec3{0, 0.85, 0}
	// Ball in line with the goal: get 3 cm behind it (-y) at z 0.03, p = 25.
	set(Vec3{0, 0.6, 0.2}, Vec3{0, 0.65, 0.026}, goal)
	want := Action{0, 25 * (0.62 - 0.6), 25 * (0.03 - 0.2), 1}
	if got := soccerPolicy(&o); !wssActNear(got, want) {
		t.Errorf("straight: %v, want %v", got, want)
	}
	// Ball more than 5 cm left of the goal (-x): push point 3 cm to its left; at the push
	// point, drive at the ball's centre raised by 3 cm.
	set(Vec3{-0.13, 0.65, 0.03}, Vec3{-0.1, 0.65, 0.026}, goal)
	want = Action{25 * 0.03, 0, 25 * (0.056 - 0.03), 1}
	if got := soccerPolicy(&o); !wssActNear(got, want) {
		t.Errorf("left at push point: %v, want %v", got, want)
	}
	// Ball right of the goal, hand right above it (x-y within 2 cm): desired z becomes 0.1
	// and the push point is 3 cm to the ball's right.
	set(Vec3{0.11, 0.65, 0.2}, Vec3{0.1, 0.65, 0.026}, goal)
	want = Action{25 * (0.13 - 0.11), 0, 25 * (0.1 - 0.2), 1}
	if got := soccerPolicy(&o); !wssActNear(got, want) {
		t.Errorf("right above ball: %v, want %v", got, want)
	}
}
