package metaworld

import (
	"os"
	"strconv"
	"testing"

	"robodistill/sim/mujoco"
)

func TestWSSContacts(t *testing.T) {
	task, _ := Lookup(os.Getenv("WSS_TASK"))
	seed, _ := strconv.Atoi(os.Getenv("WSS_SEED"))
	e := wssNewEnv(t, task, Options{})
	o, _ := e.Reset(uint64(seed))
	m, d := e.Model(), e.Data()
	hand := m.MustID(mujoco.ObjBody, "hand")
	t.Logf("hand quat %.4f mocap %.4f", d.XQuat(hand), d.MocapQuat(0))
	for i := 0; i < 30; i++ {
		a := task.Scripted(&o)
		o, _, _, _, _ = e.Step(a)
		if i >= 8 && i%2 == 0 {
			t.Logf("%d hand %.3f quat %.3f obj %.3f grip %.3f lpad %.3f rpad %.3f q %.4f", i, o.Hand(), d.XQuat(hand), o.Obj1(), o[3], e.LeftPad(), e.RightPad(), d.Qpos()[7:9])
			for c := 0; c < d.NCon(); c++ {
				cc := d.Contact(c)
				t.Logf("   contact %s - %s dist %.4f", m.Name(mujoco.ObjGeom, cc.Geom1), m.Name(mujoco.ObjGeom, cc.Geom2), cc.Dist)
			}
		}
	}
}
