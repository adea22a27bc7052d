package metaworld

import (
	"math"

	"robodistill/sim/mujoco"
)

// drawer-open-v3: pull a drawer open by its handle (sawyer_drawer_open_v3.py).
var drawerOpenTask = &Task{
	Name:     "drawer-open",
	Scene:    "sawyer_xyz/sawyer_drawer.xml",
	Goal:     "Open the drawer by pulling its handle toward the robot.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	// MetaWorld stores this hand_init_pos as float32.
	HandInit: Vec3{0, asF32(0.6), asF32(0.2)},
	// drawer (nightstand) position: obj_low/obj_high
	RandLow:    []float64{-0.1, 0.9, 0.0},
	RandHigh:   []float64{0.1, 0.9, 0.0},
	ObjectQuat: QuatWXYZ,
	Scripted:   drawerOpenPolicy,
	newImpl:    newDrawerOpen,
}

// asF32 rounds x to float32 precision, as numpy does for MetaWorld's float32 arrays.
func asF32(x float64) float64 { return float64(float32(x)) }

// drawerMaxDist is SawyerDrawerOpenEnvV3.maxDist: how far the handle must travel. It is a
// variable so that sums with it round like MetaWorld's float64 arithmetic.
var drawerMaxDist = 0.2

// drawerHandleOffset takes drawer_link's position to the handle's (_get_pos_objects).
var drawerHandleOffset = Vec3{0, -0.16, 0}

type drawerOpen struct {
	drawer, link, goalSite int
}

func newDrawerOpen(e *Env) (taskImpl, error) {
	var t drawerOpen
	if err := resolve(e,
		ref{&t.drawer, mujoco.ObjBody, "drawer"},
		ref{&t.link, mujoco.ObjBody, "drawer_link"},
		ref{&t.goalSite, mujoco.ObjSite, "goal"},
	); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *drawerOpen) reset(e *Env) error {
	// MetaWorld moves the drawer after resetting the hand, but its reset() runs reset_model
	// twice around mj_resetData with the same random vector, so the hand reset that counts
	// already sees the drawer at its new place. Moving it first does the same in one pass
	// and keeps an episode independent of the previous one.
	rv := e.RandVec()
	e.ObjInit = Vec3{rv[0], rv[1], rv[2]}
	copy(e.Model().BodyPos(t.drawer), e.ObjInit[:])
	if err := e.ResetHand(); err != nil {
		return err
	}
	// goal = drawer + (0, -0.16 - maxDist, 0.09): maxDist in front of the closed handle's
	// reference point, at handle height.
	e.Target = e.ObjInit.Add(Vec3{0, drawerHandleOffset[1] - drawerMaxDist, 0.09})
	copy(e.Model().SitePos(t.goalSite), e.Target[:])
	// Env.Reset runs the forward pass that places the moved drawer.
	return nil
}

func (t *drawerOpen) objects(e *Env, out *[14]float64) {
	d := e.Data()
	h := v3(d.XPos(t.link)).Add(drawerHandleOffset)
	copy(out[0:3], h[:])
	copy(out[3:7], d.XQuat(t.link))
}

func (t *drawerOpen) evaluate(e *Env, o *Obs, a Action) (float64, Info) {
	gripper, handle := o.Hand(), o.Obj1()

	handleError := handle.Dist(e.Target)
	opening := Tolerance(handleError, 0, 0.02, drawerMaxDist, LongTail)

	// Weight the x-y error so the hand can drop down around the handle without hitting it.
	handleInit := e.Target.Add(Vec3{0, drawerMaxDist, 0})
	scale := Vec3{3, 3, 1}
	gripperError := handle.Sub(gripper).Mul(scale)
	gripperErrorInit := handleInit.Sub(e.InitTCP).Mul(scale)
	caging := Tolerance(gripperError.Norm(), 0, 0.01, gripperErrorInit.Norm(), LongTail)

	r := 5 * (caging + opening)
	return r, Info{
		Success:        handleError <= 0.03,
		NearObject:     flag01(handle.Dist(gripper) <= 0.03),
		GraspSuccess:   flag01(o.Gripper() > 0),
		GraspReward:    caging,
		InPlaceReward:  opening,
		ObjToTarget:    handleError,
		UnscaledReward: r,
	}
}

// drawerOpenPolicy is sawyer_drawer_open_v3_policy.py: rise above the handle, drop to it,
// then pull toward the robot with a much higher gain; the gripper stays open.
func drawerOpenPolicy(o *Obs) Action {
	hand := o.Hand()
	drawer := o.Obj1().Add(Vec3{0, 0, -0.02})
	var delta Vec3
	switch {
	case hand.Sub(drawer).NormXY() > 0.06:
		delta = move(hand, drawer.Add(Vec3{0, 0, 0.3}), 4)
	case math.Abs(hand[2]-drawer[2]) > 0.04:
		delta = move(hand, drawer, 4)
	default:
		delta = move(hand, drawer.Add(Vec3{0, -0.06, 0}), 50)
	}
	return act(delta, -1)
}
