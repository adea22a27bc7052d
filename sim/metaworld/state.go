package metaworld

// RobotJoints names the Sawyer's joints in qpos order: seven arm joints, then the right
// and left finger slides.
var RobotJoints = [armJoints]string{"right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6", "r_close", "l_close"}

// ObjectPose is an object's pose as MetaWorld's observation reports it.
type ObjectPose struct {
	Name string
	Pos  Vec3
	// Quat is the orientation (w, x, y, z) from the observation's quaternion slots,
	// read in the task's ObjectQuat order; the identity for QuatNone, whose slots are
	// zero.
	Quat [4]float64
}

// RobotState is what a robot's state topics carry: the hand pose, the joints and the
// objects' positions (ground truth, as a motion-capture system would give).
type RobotState struct {
	HandPos  Vec3
	HandQuat [4]float64 // (w, x, y, z)
	JointPos [armJoints]float64
	JointVel [armJoints]float64
	// Objects holds "object" (observation slots 4-6) and, for two-object tasks,
	// "object2" (slots 11-13).
	Objects []ObjectPose
}

// RobotState reads the current state. It allocates only the Objects slice of out when its
// capacity is too small; pass the previous value to reuse it.
func (e *Env) RobotState(out *RobotState) {
	out.HandPos = v3(e.d.XPos(e.hand))
	copy(out.HandQuat[:], e.d.XQuat(e.hand))
	copy(out.JointPos[:], e.d.Qpos()[:armJoints])
	copy(out.JointVel[:], e.d.Qvel()[:armJoints])
	order := e.task.ObjectQuat
	out.Objects = append(out.Objects[:0], ObjectPose{Name: "object", Pos: e.obs.Obj1(), Quat: order.wxyz(e.obs[7:11])})
	if o2 := e.obs.Obj2(); o2 != (Vec3{}) {
		out.Objects = append(out.Objects, ObjectPose{Name: "object2", Pos: o2, Quat: order.wxyz(e.obs[14:18])})
	}
}

// QuatOrder is how a task writes object orientations into the observation: MetaWorld
// takes some from scipy (x, y, z, w), some from MuJoCo (w, x, y, z), and leaves some zero.
type QuatOrder string

// The orders of Task.ObjectQuat.
const (
	QuatXYZW QuatOrder = "xyzw"
	QuatWXYZ QuatOrder = "wxyz"
	QuatNone QuatOrder = "none"
)

// wxyz reads four observation slots in order o as (w, x, y, z).
func (o QuatOrder) wxyz(q []float64) [4]float64 {
	switch o {
	case QuatXYZW:
		return [4]float64{q[3], q[0], q[1], q[2]}
	case QuatWXYZ:
		return [4]float64{q[0], q[1], q[2], q[3]}
	}
	return [4]float64{1, 0, 0, 0}
}
