package metaworld

import (
	"math"
	"testing"
)

func TestReachReward(t *testing.T) {
	e := newEnv(t, reachTask.Name, Options{})
	if _, err := e.Reset(4); err != nil {
		t.Fatal(err)
	}
	tcp := e.TCP()
	// Far from the goal: in_place = long_tail tolerance of d = |tcp - target| over the
	// margin |hand_init - target|: 1/((d'*3)^2+1) with d' = (d - 0.05)/margin.
	d := tcp.Dist(e.Target)
	margin := reachTask.HandInit.Dist(e.Target)
	dd := (d - 0.05) / margin
	want := 10 / ((dd*3)*(dd*3) + 1)
	r, info := e.Evaluate(Action{})
	near(t, "reward far from the goal", r, want)
	if info.Success || info.ObjToTarget != d {
		t.Fatalf("far: %+v", info)
	}

	// Move the goal onto the fingertips (4.9 cm off in z): inside the 5 cm radius, reward 10.
	e.Target = tcp.Add(Vec3{0, 0, 0.049})
	if r, info = e.Evaluate(Action{}); !info.Success || r != 10 {
		t.Fatalf("at the goal: reward %v info %+v", r, info)
	}
	e.Target = tcp.Add(Vec3{0, 0, 0.051})
	if r, info = e.Evaluate(Action{}); info.Success || r >= 10 || math.Abs(info.ObjToTarget-0.051) > 1e-12 {
		t.Fatalf("just outside: reward %v info %+v", r, info)
	}
}

func TestReachPolicy(t *testing.T) {
	var o Obs
	copy(o[0:3], []float64{0, 0.6, 0.2})
	copy(o[36:39], []float64{0.1, 0.8, 0.25})
	// move(hand, goal, 5) with the gripper at 0.
	want := Action{0.5, 1, 0.25, 0}
	got := reachPolicy(&o)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("reachPolicy = %v, want %v", got, want)
		}
	}
}
