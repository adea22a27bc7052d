package metaworld

import (
	"math"

	"robodistill/sim/mujoco"
)

// door-open-v3: swing a hinged door open by its handle (sawyer_door_v3.py, SawyerDoorEnvV3).
var doorOpenTask = &Task{
	Name:     "door-open",
	Scene:    "sawyer_xyz/sawyer_door_pull.xml",
	Goal:     "Open the door: move its handle sideways so the door swings wide open on its hinge.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	HandInit: Vec3{0, 0.6, 0.2},
	// door position: obj_low/obj_high
	RandLow:    []float64{0.0, 0.85, 0.15},
	RandHigh:   []float64{0.1, 0.95, 0.15},
	ObjectQuat: QuatXYZW,
	Scripted:   doorOpenPolicy,
	newImpl:    newDoorOpen,
}

// doorGoalOffset takes the door's position to the goal: where the handle's x ends up once the
// door has swung open.
var doorGoalOffset = Vec3{-0.3, -0.45, 0}

type doorOpen struct {
	door, handle, goalSite int
	hingeQpos              int // qpos index of doorjoint
}

func newDoorOpen(e *Env) (taskImpl, error) {
	var t doorOpen
	var hinge int
	if err := resolve(e,
		ref{&t.door, mujoco.ObjBody, "door"},
		ref{&t.handle, mujoco.ObjGeom, "handle"},
		ref{&t.goalSite, mujoco.ObjSite, "goal"},
		ref{&hinge, mujoco.ObjJoint, "doorjoint"},
	); err != nil {
		return nil, err
	}
	t.hingeQpos = e.Model().JointQposAdr(hinge)
	return &t, nil
}

func (t *doorOpen) reset(e *Env) error {
	// The door moves before the hand reset for the reason given in drawerOpen.reset.
	rv := e.RandVec()
	e.ObjInit = Vec3{rv[0], rv[1], rv[2]}
	copy(e.Model().BodyPos(t.door), e.ObjInit[:])
	if err := e.ResetHand(); err != nil {
		return err
	}
	e.Target = e.ObjInit.Add(doorGoalOffset)
	copy(e.Model().SitePos(t.goalSite), e.Target[:])
	// _set_obj_xyz(0): close the door (this also runs the forward pass).
	return e.SetJoint("doorjoint", 0)
}

func (t *doorOpen) objects(e *Env, out *[14]float64) {
	d := e.Data()
	copy(out[0:3], d.GeomXPos(t.handle))
	q := quatFromMat(d.GeomXMat(t.handle))
	copy(out[3:7], q[:])
}

// doorRewardPos is SawyerDoorEnvV3._reward_pos: how ready the hand is to pull the handle
// (above a funnel-shaped floor around it, then just in front of it), and how far the door
// has opened (theta is the hinge angle, negative when opening).
func doorRewardPos(o *Obs, theta float64) (ready, opened float64) {
	hand := o.Hand()
	door := o.Obj1().Add(Vec3{-0.05, 0, 0})

	const threshold = 0.12
	radius := hand.Sub(door).NormXY()
	floor := 0.0
	if radius > threshold {
		floor = 0.04*math.Log(radius-threshold) + 0.4
	}
	aboveFloor := 1.0
	if hand[2] < floor {
		aboveFloor = Tolerance(floor-hand[2], 0, 0.01, floor/2, LongTail)
	}
	inPlace := Tolerance(hand.Sub(door).Sub(Vec3{0.05, 0.03, -0.01}).Norm(), 0, threshold/2, 0.5, LongTail)
	ready = HamacherProduct(aboveFloor, inPlace)

	doorAngle := -theta
	const tryWeight, openWeight = 0.2, 0.8
	opened = tryWeight*flag01(theta < -math.Pi/90) +
		openWeight*Tolerance(math.Pi/2+math.Pi/6-doorAngle, 0, 0.5, math.Pi/3, LongTail)
	return ready, opened
}

func (t *doorOpen) evaluate(e *Env, o *Obs, a Action) (float64, Info) {
	theta := e.Data().Qpos()[t.hingeQpos]
	grab := (clip1(a[3]) + 1) / 2
	ready, opened := doorRewardPos(o, theta)
	r := 2*HamacherProduct(ready, grab) + 8*opened
	success := math.Abs(o[4]-e.Target[0]) <= 0.08
	if success {
		r = 10
	}
	return r, Info{
		Success:        success,
		NearObject:     ready,
		GraspSuccess:   flag01(grab >= 0.5),
		GraspReward:    grab,
		InPlaceReward:  opened,
		ObjToTarget:    0,
		UnscaledReward: r,
	}
}

// doorOpenPolicy is sawyer_door_open_v3_policy.py: come down just in front of and to the
// right of the handle, then push toward its centre, which swings the door open (gain 25,
// gripper closed).
func doorOpenPolicy(o *Obs) Action {
	hand := o.Hand()
	door := o.Obj1()
	door[0] -= 0.05
	var to Vec3
	switch {
	case hand.Sub(door).NormXY() > 0.12:
		to = door.Add(Vec3{0.06, 0.02, 0.2})
	case math.Abs(hand[2]-door[2]) > 0.04:
		to = door.Add(Vec3{0.06, 0.02, 0})
	default:
		to = door
	}
	return act(move(hand, to, 25), 1)
}
