package metaworld

import (
	"math"
	"testing"

	"robodistill/sim/mujoco"
)

// runButtonPressTopdown runs the scripted policy from seed until the first success (or the
// end of the episode). obsHand, when set, replaces the hand position the policy sees.
// It returns the first successful step (-1 if none), the smallest obj_to_target and the
// lowest button joint position seen.
func runButtonPressTopdown(t *testing.T, e *Env, seed uint64, obsHand func(*Env) Vec3) (int, float64, float64) {
	t.Helper()
	qadr := e.Model().JointQposAdr(e.Model().MustID(mujoco.ObjJoint, "btnbox_joint"))
	o, err := e.Reset(seed)
	if err != nil {
		t.Fatal(err)
	}
	best, minQ := math.Inf(1), math.Inf(1)
	for i := 0; i < e.MaxSteps(); i++ {
		seen := o
		if obsHand != nil {
			h := obsHand(e)
			copy(seen[0:3], h[:])
		}
		var info Info
		if o, _, info, _, err = e.Step(e.Task().Scripted(&seen)); err != nil {
			t.Fatal(err)
		}
		best = math.Min(best, info.ObjToTarget)
		minQ = math.Min(minQ, e.Data().Qpos()[qadr])
		if info.Success {
			return i, best, minQ
		}
	}
	return -1, best, minQ
}

// TestButtonPressTopdownTCPStall documents the cause of an earlier port's stall 0.4 mm
// short of success: the policy must see the hand body's position (MetaWorld's
// get_endeff_pos), which sits 4.5 cm above the finger tips. Fed the tool centre point
// instead, the policy stops pushing once the finger tips reach the button top and the
// button settles 8.6 mm past its joint limit with obj_to_target ≈ 0.0243 > 0.024. With the
// hand body the target stays out of reach, the mocap is driven down to hand_low z and the
// weld pushes the button through its soft limit (-0.06) until its collar rests on the box
// (about -0.087, obj_to_target ≈ 0.006).
func TestButtonPressTopdownTCPStall(t *testing.T) {
	e := newEnv(t, "button-press-topdown", Options{Rate: Rate80})
	step, best, _ := runButtonPressTopdown(t, e, 0, (*Env).TCP)
	if step >= 0 || best <= 0.024 || best > 0.0245 {
		t.Errorf("policy fed the TCP: first success %d, obj_to_target %.5f; want no success, 0.024 < obj_to_target <= 0.0245", step, best)
	}
	step, best, minQ := runButtonPressTopdown(t, e, 0, nil)
	if step < 0 || minQ > -0.069 {
		t.Errorf("faithful policy: first success %d, obj_to_target %.5f, button joint %.4f; want success with the joint below -0.069", step, best, minQ)
	}
}

func TestButtonPressTopdownEvaluate(t *testing.T) {
	e := newEnv(t, "button-press-topdown", Options{Rate: Rate80})
	if _, err := e.Reset(0); err != nil {
		t.Fatal(err)
	}
	near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
	// The box is rotated by euler x = -1.57 and placed at z = 0.115, so a point at local
	// y = -s lies at world z = 0.115 + s*sin(1.57) = 0.115 + s*0.99999968293.
	//   hole (target)   s = 0.1    -> z = 0.21499996829
	//   buttonStart     s = 0.1935 -> z = 0.30849993865
	//   obj_to_target_init = 0.30849993865 - 0.21499996829 = 0.09349997035
	// The button slides along local -y, so at joint position q its top (body origin
	// + 0.193 in z) is at z = 0.308 + q*0.99999968293.
	impl := e.impl.(*buttonPressTopdown)
	if !near(e.Target[2], 0.21499996829, 1e-9) || !near(impl.objToTargetInit, 0.09349997035, 1e-9) {
		t.Fatalf("target z %.11f, obj_to_target_init %.11f; want 0.21499996829, 0.09349997035", e.Target[2], impl.objToTargetInit)
	}
	cases := []struct {
		q, objToTarget, inPlace float64
		success                 bool
	}{
		// q = -0.075: top at 0.308 - 0.075*0.99999968293 = 0.23300002378,
		// obj_to_target = 0.23300002378 - 0.21499996829 = 0.01800005549 <= 0.024: success;
		// in_place = long_tail((0.01800005549-0.005)/0.09349997035 = 0.13903807)
		//          = 1/(1 + (3*0.13903807)^2) = 0.85180017.
		{-0.075, 0.01800005549, 0.85180017, true},
		// q = -0.06 (the joint limit): top at 0.24800001902, obj_to_target = 0.03300005073
		// > 0.024: no success, so the button must be pushed past its limit;
		// in_place = 1/(1 + (3*(0.03300005073-0.005)/0.09349997035)^2) = 0.55336720.
		{-0.06, 0.03300005073, 0.55336720, false},
	}
	for _, c := range cases {
		if err := e.SetJoint("btnbox_joint", c.q); err != nil {
			t.Fatal(err)
		}
		e.obs = e.assemble(e.current()) // Evaluate reads the button from the observation
		r, info := e.Evaluate(Action{})
		// The hand is still at its reset pose with the fingers open: obs[3] = 1, so
		// tcp_closed = 0 and 5*hamacher(0, near) = 0; the TCP is ~0.4 m from the button, so
		// the press term (tcp_to_obj <= 0.03) is off and the reward is 0.
		cur := e.Obs()
		obj := cur.Obj1()
		tcpToObj := obj.Dist(e.TCP())
		wantNear := 1 / (1 + math.Pow(3*(tcpToObj-0.01)/obj.Dist(e.InitTCP), 2))
		if info.Success != c.success || !near(info.ObjToTarget, c.objToTarget, 1e-9) ||
			!near(info.InPlaceReward, c.inPlace, 1e-7) || r != 0 || info.UnscaledReward != 0 ||
			info.NearObject != 0 || info.GraspSuccess != 1 || !near(info.GraspReward, wantNear, 1e-12) ||
			cur.Gripper() != 1 || tcpToObj < 0.3 {
			t.Errorf("q=%g: reward %g, info %+v (tcp_to_obj %.3f, gripper %g); want reward 0, success %v, obj_to_target %.11f, in_place %.8f, grasp_reward %.8f",
				c.q, r, info, tcpToObj, cur.Gripper(), c.success, c.objToTarget, c.inPlace, wantNear)
		}
	}

	// A pressed state reached by the policy, with the closed fingers on the button: the
	// press term is on. Recompute the v2 reward from the raw positions.
	if _, err := e.Reset(0); err != nil {
		t.Fatal(err)
	}
	var r float64
	var info Info
	var err error
	o := e.Obs()
	for i := 0; i < 100; i++ {
		if o, r, info, _, err = e.Step(buttonPressTopdownPolicy(&o)); err != nil {
			t.Fatal(err)
		}
	}
	obj, tcp := o.Obj1(), e.TCP()
	tcpToObj := obj.Dist(tcp)
	o2t := math.Abs(e.Target[2] - obj[2])
	nearBtn := Tolerance(tcpToObj, 0, 0.01, obj.Dist(e.InitTCP), LongTail)
	pressed := Tolerance(o2t, 0, 0.005, impl.objToTargetInit, LongTail)
	closed := 1 - o.Gripper()
	want := 5*closed*nearBtn/(closed+nearBtn-closed*nearBtn) + 5*pressed
	if tcpToObj > 0.03 || !info.Success || !near(r, want, 1e-12) || info.InPlaceReward != pressed || info.GraspReward != nearBtn {
		t.Errorf("pressed state: tcp_to_obj %.4f, obj_to_target %.4f, reward %.6f info %+v; want tcp_to_obj <= 0.03, success, reward %.6f", tcpToObj, o2t, r, info, want)
	}
	t.Logf("pressed state: tcp_to_obj %.4f, obj_to_target %.4f, gripper %.3f, reward %.4f", tcpToObj, o2t, o.Gripper(), r)
}
