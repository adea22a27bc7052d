package metaworld

import (
	"os"
	"strconv"
	"testing"
)

func TestWSSDebug(t *testing.T) {
	task, _ := Lookup(os.Getenv("WSS_TASK"))
	seed, _ := strconv.Atoi(os.Getenv("WSS_SEED"))
	every, _ := strconv.Atoi(os.Getenv("WSS_EVERY"))
	if every == 0 {
		every = 10
	}
	e := wssNewEnv(t, task, Options{})
	o, _ := e.Reset(uint64(seed))
	t.Logf("objinit %v target %v inittcp %v", e.ObjInit, e.Target, e.InitTCP)
	for i := 0; i < e.MaxSteps(); i++ {
		a := task.Scripted(&o)
		var r float64
		var info Info
		o, r, info, _, _ = e.Step(a)
		if i%every == 0 || info.Success {
			t.Logf("%3d hand %.3f obj %.3f a %.2f r %.3f info %+v", i, o.Hand(), o.Obj1(), a, r, info)
		}
		if info.Success {
			break
		}
	}
}

func TestWSSRate(t *testing.T) {
	task, _ := Lookup(os.Getenv("WSS_TASK"))
	n, _ := strconv.Atoi(os.Getenv("WSS_N"))
	wssScriptedRate(t, task, Rate80, n)
	wssScriptedRate(t, task, Rate50, n)
}
