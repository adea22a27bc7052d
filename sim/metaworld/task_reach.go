package metaworld

// reach-v3: move the hand to a random goal (sawyer_reach_v3.py).
var reachTask = &Task{
	Name:     "reach",
	Scene:    "sawyer_xyz/sawyer_reach_v3.xml",
	Goal:     "Move the robot's gripper so that its fingertips are at the red goal marker.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	HandInit: Vec3{0, 0.6, 0.2},
	// object position, then goal position
	RandLow:    []float64{-0.1, 0.6, 0.02, -0.1, 0.8, 0.05},
	RandHigh:   []float64{0.1, 0.7, 0.02, 0.1, 0.9, 0.3},
	ObjectQuat: QuatXYZW,
	Scripted:   reachPolicy,
	newImpl:    newReach,
}

type reach struct {
	freeObject
}

func newReach(e *Env) (taskImpl, error) {
	var t reach
	if err := t.resolve(e); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *reach) reset(e *Env) error {
	if err := e.ResetHand(); err != nil {
		return err
	}
	// The goal must lie at least 15 cm (in x-y) from the object.
	rv := e.RandVec()
	for (Vec3{rv[0], rv[1], 0}).Dist(Vec3{rv[3], rv[4], 0}) < 0.15 {
		rv = e.RandVec()
	}
	e.ObjInit = Vec3{rv[0], rv[1], rv[2]}
	e.Target = Vec3{rv[3], rv[4], rv[5]}
	if err := e.SetObjXYZ(e.ObjInit); err != nil {
		return err
	}
	copy(e.Model().SitePos(t.goalSite), e.Target[:])
	return nil
}

func (t *reach) evaluate(e *Env, o *Obs, a Action) (float64, Info) {
	const targetRadius = 0.05
	tcpToTarget := e.TCP().Dist(e.Target)
	margin := e.task.HandInit.Dist(e.Target)
	inPlace := Tolerance(tcpToTarget, 0, targetRadius, margin, LongTail)
	r := 10 * inPlace
	return r, Info{
		Success:        tcpToTarget <= 0.05,
		NearObject:     tcpToTarget,
		GraspSuccess:   1,
		GraspReward:    tcpToTarget,
		InPlaceReward:  inPlace,
		ObjToTarget:    tcpToTarget,
		UnscaledReward: r,
	}
}

// reachPolicy is sawyer_reach_v3_policy.py: move to the goal with gain 5, gripper at 0.
func reachPolicy(o *Obs) Action {
	return act(move(o.Hand(), o.Goal(), 5), 0)
}
