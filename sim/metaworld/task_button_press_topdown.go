package metaworld

import (
	"math"

	"robodistill/sim/mujoco"
)

// button-press-topdown-v3: press a button that points up out of a box on the table
// (sawyer_button_press_topdown_v3.py, reward function "v2").
var buttonPressTopdownTask = &Task{
	Name:     "button-press-topdown",
	Scene:    "sawyer_xyz/sawyer_button_press_topdown.xml",
	Goal:     "Press the red button on top of the box straight down from above.",
	HandLow:  Vec3{-0.5, 0.40, 0.05},
	HandHigh: Vec3{0.5, 1, 0.5},
	// MetaWorld stores hand_init_pos as float32; keep the same rounded values.
	HandInit: Vec3{0, float64(float32(0.4)), float64(float32(0.2))},
	// position of the button box (MetaWorld's obj_low/obj_high)
	RandLow:    []float64{-0.1, 0.8, 0.115},
	RandHigh:   []float64{0.1, 0.9, 0.115},
	ObjectQuat: QuatWXYZ,
	Scripted:   buttonPressTopdownPolicy,
	newImpl:    newButtonPressTopdown,
}

// topdownButtonTopZ lifts the button body's origin to the top face of the button
// (MetaWorld's _get_pos_objects adds 0.193 m in z).
const topdownButtonTopZ = 0.193

type buttonPressTopdown struct {
	box, button     int // bodies
	hole, start     int // sites
	objToTargetInit float64
}

func newButtonPressTopdown(e *Env) (taskImpl, error) {
	var t buttonPressTopdown
	if err := resolve(e,
		ref{&t.box, mujoco.ObjBody, "box"},
		ref{&t.button, mujoco.ObjBody, "button"},
		ref{&t.hole, mujoco.ObjSite, "hole"},
		ref{&t.start, mujoco.ObjSite, "buttonStart"},
	); err != nil {
		return nil, err
	}
	return &t, nil
}

// reset is MetaWorld's reset_model: the hand is reset first, then the box is moved to the
// random position and the target is read back from the scene's "hole" site.
func (t *buttonPressTopdown) reset(e *Env) error {
	if err := e.ResetHand(); err != nil {
		return err
	}
	rv := e.RandVec()
	e.ObjInit = Vec3{rv[0], rv[1], rv[2]}
	copy(e.Model().BodyPos(t.box), e.ObjInit[:])
	if err := e.Data().Forward(); err != nil {
		return err
	}
	d := e.Data()
	e.Target = v3(d.SiteXPos(t.hole))
	t.objToTargetInit = math.Abs(e.Target[2] - d.SiteXPos(t.start)[2])
	return nil
}

// objects is _get_pos_objects (button top) and _get_quat_objects (button body, w x y z).
func (t *buttonPressTopdown) objects(e *Env, out *[14]float64) {
	d := e.Data()
	p := d.XPos(t.button)
	out[0], out[1], out[2] = p[0], p[1], p[2]+topdownButtonTopZ
	copy(out[3:7], d.XQuat(t.button))
}

// evaluate is evaluate_state with compute_reward "v2". The action does not enter.
func (t *buttonPressTopdown) evaluate(e *Env, o *Obs, _ Action) (float64, Info) {
	obj := o.Obj1()
	tcp := e.TCP()
	tcpToObj := obj.Dist(tcp)
	tcpToObjInit := obj.Dist(e.InitTCP) // MetaWorld uses the current button position here
	objToTarget := math.Abs(e.Target[2] - obj[2])

	tcpClosed := 1 - o.Gripper()
	nearButton := Tolerance(tcpToObj, 0, 0.01, tcpToObjInit, LongTail)
	buttonPressed := Tolerance(objToTarget, 0, 0.005, t.objToTargetInit, LongTail)

	flag := func(b bool) float64 { // Python's float(bool)
		if b {
			return 1
		}
		return 0
	}
	r := 5 * HamacherProduct(tcpClosed, nearButton)
	if tcpToObj <= 0.03 {
		r += 5 * buttonPressed
	}
	return r, Info{
		Success:        objToTarget <= 0.024,
		NearObject:     flag(tcpToObj <= 0.05),
		GraspSuccess:   flag(o.Gripper() > 0),
		GraspReward:    nearButton,
		InPlaceReward:  buttonPressed,
		ObjToTarget:    objToTarget,
		UnscaledReward: r,
	}
}

// buttonPressTopdownPolicy is sawyer_button_press_topdown_v3_policy.py: hover 10 cm above
// the button until within 4 cm of it in x-y, then drive the hand onto the button top, with
// gain 25 and the gripper closed.
func buttonPressTopdownPolicy(o *Obs) Action {
	hand, button := o.Hand(), o.Obj1()
	to := button
	if math.Hypot(hand[0]-button[0], hand[1]-button[1]) > 0.04 {
		to = button.Add(Vec3{0, 0, 0.1})
	}
	return act(move(hand, to, 25), 1)
}
