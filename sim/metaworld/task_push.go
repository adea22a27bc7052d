package metaworld

import (
	"math"
)

// push-v3: slide a puck across the table onto a goal (sawyer_push_v3.py).
var pushTask = &Task{
	Name:     "push",
	Scene:    "sawyer_xyz/sawyer_push_v3.xml",
	Goal:     "Push the red puck across the table until it rests on the green goal marker.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	HandInit: Vec3{0, 0.6, 0.2},
	// object position (obj_low/obj_high), then goal position (goal_low/goal_high)
	RandLow:    []float64{-0.1, 0.6, 0.02, -0.1, 0.8, 0.01},
	RandHigh:   []float64{0.1, 0.7, 0.02, 0.1, 0.9, 0.02},
	ObjectQuat: QuatXYZW,
	Scripted:   pushPolicy,
	newImpl:    newPush,
}

// pushTargetRadius is SawyerPushEnvV3.TARGET_RADIUS.
const pushTargetRadius = 0.05

type push struct {
	freeObject
}

func newPush(e *Env) (taskImpl, error) {
	var t push
	if err := t.resolve(e); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *push) reset(e *Env) error {
	if err := e.ResetHand(); err != nil {
		return err
	}
	// fix_extreme_obj_pos keeps the configured x-y (its offset is always zero) and takes the
	// height of the puck as it rests after the hand reset.
	objZ := e.Data().XPos(t.obj)[2]
	// The goal must lie at least 15 cm (in x-y) from the puck.
	rv := e.RandVec()
	for (Vec3{rv[0], rv[1], 0}).Dist(Vec3{rv[3], rv[4], 0}) < 0.15 {
		rv = e.RandVec()
	}
	// Both the puck and the goal take the resting height; the random z values are unused.
	e.Target = Vec3{rv[3], rv[4], objZ}
	e.ObjInit = Vec3{rv[0], rv[1], objZ}
	if err := e.SetObjXYZ(e.ObjInit); err != nil {
		return err
	}
	copy(e.Model().SitePos(t.goalSite), e.Target[:])
	return nil
}

func (t *push) evaluate(e *Env, o *Obs, a Action) (float64, Info) {
	obj := o.Obj1()
	tcpOpened := o.Gripper()
	tcpToObj := obj.Dist(e.TCP())
	targetToObj := obj.Dist(e.Target)
	targetToObjInit := e.ObjInit.Dist(e.Target)

	inPlace := Tolerance(targetToObj, 0, pushTargetRadius, targetToObjInit, LongTail)
	grasped := e.GripperCagingReward(a, obj, CagingParams{
		ObjRadius:         0.015,
		PadSuccessThresh:  0.05,
		ObjectReachRadius: 0.01,
		XZThresh:          0.005,
		Density:           DensityHigh,
	})
	r := 2 * grasped
	if tcpToObj < 0.02 && tcpOpened > 0 {
		r += 1 + r + 5*inPlace
	}
	if targetToObj < pushTargetRadius {
		r = 10
	}
	return r, Info{
		Success:        targetToObj <= pushTargetRadius,
		NearObject:     flag01(tcpToObj <= 0.03),
		GraspSuccess:   flag01(e.TouchingObject(t.objGeom) && tcpOpened > 0 && obj[2]-0.02 > e.ObjInit[2]),
		GraspReward:    grasped,
		InPlaceReward:  inPlace,
		ObjToTarget:    targetToObj,
		UnscaledReward: r,
	}
}

// flag01 is Python's float(bool).
func flag01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pushPolicy is sawyer_push_v3_policy.py: hover over the puck, drop onto it while starting
// to close the gripper, then carry it to the goal (gain 10).
func pushPolicy(o *Obs) Action {
	hand, puckRaw, goal := o.Hand(), o.Obj1(), o.Goal()
	puck := puckRaw.Add(Vec3{-0.005, 0, 0})

	var to Vec3
	switch {
	case hand.Sub(puck).NormXY() > 0.02:
		to = puck.Add(Vec3{0, 0, 0.2})
	case math.Abs(hand[2]-puck[2]) > 0.04:
		to = puck.Add(Vec3{0, 0, 0.03})
	default:
		to = goal
	}

	grab := 0.6
	if hand.Sub(puckRaw).NormXY() > 0.02 || math.Abs(hand[2]-puckRaw[2]) > 0.10 {
		grab = 0
	}
	return act(move(hand, to, 10), grab)
}
