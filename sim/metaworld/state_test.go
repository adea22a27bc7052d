package metaworld

import (
	"math"
	"testing"
)

// RobotState's object quaternions are the observation's slots read in the task's order:
// unit quaternions (w, x, y, z) that give the slots back, after steps that move things.
func TestRobotStateQuat(t *testing.T) {
	for _, task := range Tasks() {
		t.Run(task.Name, func(t *testing.T) {
			e := newEnv(t, task.Name, Options{})
			if _, err := e.Reset(3); err != nil {
				t.Fatal(err)
			}
			var st RobotState
			for step := range 30 {
				if _, _, _, _, err := e.Step(Action{0.3, 0.5, -0.2, 1}); err != nil {
					t.Fatal(err)
				}
				e.RobotState(&st)
				obs := e.Obs()
				for k, o := range st.Objects {
					slots := obs[7+7*k : 11+7*k]
					q := o.Quat
					var back [4]float64
					switch task.ObjectQuat {
					case QuatXYZW:
						back = [4]float64{q[1], q[2], q[3], q[0]}
					case QuatWXYZ:
						back = q
					case QuatNone:
						if q != [4]float64{1, 0, 0, 0} || slots[0] != 0 || slots[3] != 0 {
							t.Fatalf("step %d %s: %v for slots %v, want the identity for zero slots", step, o.Name, q, slots)
						}
						continue
					default:
						t.Fatalf("task has no ObjectQuat order")
					}
					norm := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
					if [4]float64(slots) != back || math.Abs(norm-1) > 1e-6 {
						t.Fatalf("step %d %s: quaternion %v (norm %v) from slots %v", step, o.Name, q, norm, slots)
					}
				}
			}
		})
	}
}
