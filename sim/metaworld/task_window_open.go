package metaworld

import (
	"math"

	"robodistill/sim/mujoco"
)

// window-open-v3: slide a horizontal window open by pushing its handle along +x
// (sawyer_window_open_v3.py, scene sawyer_window_horizontal.xml).
var windowOpenTask = &Task{
	Name:  "window-open",
	Scene: "sawyer_xyz/sawyer_window_horizontal.xml",
	Goal: "Open the sliding window: put the gripper against the white handle on the window's " +
		"sliding pane and push the pane sideways until the window is fully open.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	// MetaWorld stores this hand_init_pos as float32.
	HandInit: Vec3{0, float64(float32(0.4)), float64(float32(0.2))},
	// window (body) position
	RandLow:    []float64{-0.1, 0.7, 0.16},
	RandHigh:   []float64{0.1, 0.9, 0.16},
	ObjectQuat: QuatNone,
	Scripted:   windowOpenPolicy,
	newImpl:    newWindowOpen,
}

// windowOpenPull is how far the target lies from the window's initial position along x.
const windowOpenPull = 0.2

type windowOpen struct {
	window, handle, goalSite int
	slide                    string
	handleInit               Vec3 // handle position after reset (window_handle_pos_init)
}

func newWindowOpen(e *Env) (taskImpl, error) {
	t := windowOpen{slide: "window_slide"}
	var slide int
	if err := resolve(e,
		ref{&t.window, mujoco.ObjBody, "window"},
		ref{&t.handle, mujoco.ObjSite, "handleOpenStart"},
		ref{&t.goalSite, mujoco.ObjSite, "goal"},
		ref{&slide, mujoco.ObjJoint, t.slide},
	); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *windowOpen) reset(e *Env) error {
	// MetaWorld's reset runs reset_model twice around mj_resetData with the same frozen
	// random vector, so the hand reset that counts happens with the window already at its
	// new position; placing the window before ResetHand reproduces that state.
	rv := e.RandVec()
	e.ObjInit = Vec3{rv[0], rv[1], rv[2]}
	e.Target = e.ObjInit.Add(Vec3{windowOpenPull, 0, 0})
	copy(e.Model().BodyPos(t.window), e.ObjInit[:])
	if err := e.ResetHand(); err != nil {
		return err
	}
	if err := e.SetJoint(t.slide, 0); err != nil { // runs mj_forward
		return err
	}
	t.handleInit = v3(e.Data().SiteXPos(t.handle))
	copy(e.Model().SitePos(t.goalSite), e.Target[:])
	return nil
}

func (t *windowOpen) objects(e *Env, out *[14]float64) {
	// The handle's position; the quaternion slots stay zero.
	copy(out[0:3], e.Data().SiteXPos(t.handle))
}

func (t *windowOpen) evaluate(e *Env, _ *Obs, _ Action) (float64, Info) {
	const targetRadius = 0.05
	const handleRadius = 0.02
	obj := v3(e.Data().SiteXPos(t.handle))
	tcp := e.TCP()

	// Only the x distance counts: the handle slides along x.
	targetToObj := math.Abs(obj[0] - e.Target[0])
	targetToObjInit := math.Abs(e.ObjInit[0] - e.Target[0])
	inPlace := Tolerance(targetToObj, 0, targetRadius, math.Abs(targetToObjInit-targetRadius), LongTail)

	tcpToObj := obj.Dist(tcp)
	tcpToObjInit := t.handleInit.Dist(e.InitTCP)
	reach := Tolerance(tcpToObj, 0, handleRadius, math.Abs(tcpToObjInit-handleRadius), LongTail)

	r := 10 * HamacherProduct(reach, inPlace)
	return r, Info{
		Success:        targetToObj <= targetRadius,
		NearObject:     metricFlag(tcpToObj <= 0.05),
		GraspSuccess:   1,
		GraspReward:    reach,
		InPlaceReward:  inPlace,
		ObjToTarget:    targetToObj,
		UnscaledReward: r,
	}
}

// windowOpenPolicy is sawyer_window_open_v3_policy.py: rise above a point just left of and
// in front of the handle, descend to it, then push 10 cm along +x; gripper closed.
func windowOpenPolicy(o *Obs) Action {
	hand := o.Hand()
	wndw := o.Obj1().Add(Vec3{-0.03, -0.03, -0.08})
	var to Vec3
	switch {
	case (Vec3{hand[0] - wndw[0], hand[1] - wndw[1], 0}).Norm() > 0.04:
		to = wndw.Add(Vec3{0, 0, 0.3})
	case math.Abs(hand[2]-wndw[2]) > 0.02:
		to = wndw
	default:
		to = wndw.Add(Vec3{0.1, 0, 0})
	}
	return act(move(hand, to, 25), 1)
}

// metricFlag is MetaWorld's float(bool).
func metricFlag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
