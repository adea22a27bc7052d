package rosio

import (
	"errors"
	"math"
	"testing"
)

// state returns a State with every input received, for a config with objects of the
// given layouts.
func testState(cfg Config) *State {
	s := &State{Joints: NewJoints(cfg.Joints), NumObjects: len(cfg.Objects)}
	st := Stamp{Received: t0, Header: t0}
	s.EEPose = Pose{Pos: [3]float64{0.1, 0.6, 0.2}, Quat: [4]float64{1, 0, 0, 0}, Stamp: st}
	s.Joints.Stamp = st
	for i := range s.Objects[:s.NumObjects] {
		s.Objects[i] = Pose{Pos: [3]float64{0.01 * float64(i+1), 0.7, 0.02}, Quat: [4]float64{0.5, -0.5, 0.5, -0.5}, Stamp: st}
	}
	s.Goal = Pose{Pos: [3]float64{-0.1, 0.8, 0.15}, Quat: [4]float64{1, 0, 0, 0}, Stamp: st}
	return s
}

func setFingers(cfg Config, s *State, right, left float64) {
	for i, j := range cfg.Joints {
		switch j {
		case cfg.Gripper.Right:
			s.Joints.Position[i] = right
		case cfg.Gripper.Left:
			s.Joints.Position[i] = left
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestBuilderLayout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Objects = []Object{{"object", QuatXYZW}, {"object2", QuatWXYZ}}
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := testState(cfg)
	// Right finger closed by 1 cm, left by 2 cm: claws 7 cm apart, gripper 0.7.
	setFingers(cfg, s, 0.01, -0.02)
	var o Obs
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	want := Obs{
		0.1, 0.6, 0.2, 0.7,
		0.01, 0.7, 0.02, -0.5, 0.5, -0.5, 0.5, // x y z w
		0.02, 0.7, 0.02, 0.5, -0.5, 0.5, -0.5, // w x y z
	}
	copy(want[18:36], want[0:18]) // first step of an episode: previous = current
	want[36], want[37], want[38] = -0.1, 0.8, 0.15
	for i := range o {
		if !near(o[i], want[i]) {
			t.Errorf("obs[%d] = %v, want %v", i, o[i], want[i])
		}
	}

	// The next step's previous half is this step's current half.
	prev := o
	s.EEPose.Pos = [3]float64{0.2, 0.65, 0.25}
	setFingers(cfg, s, 0, 0)
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	if o[0] != 0.2 || o[3] != 1 || o[18] != prev[0] || o[21] != prev[3] {
		t.Fatalf("second step: current %v, previous %v", o[0:4], o[18:22])
	}
	for i := 18; i < 36; i++ {
		if o[i] != prev[i-18] {
			t.Fatalf("obs[%d] = %v, want the previous step's %v", i, o[i], prev[i-18])
		}
	}

	// Reset: previous = current again.
	b.Reset()
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 18; i++ {
		if o[i] != o[i+18] {
			t.Fatalf("after Reset obs[%d] = %v but obs[%d] = %v", i, o[i], i+18, o[i+18])
		}
	}
}

func TestBuilderPaddingAndNone(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Objects = []Object{{"handle", QuatNone}}
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := testState(cfg)
	var o Obs
	for i := range o {
		o[i] = 99
	}
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 18; i++ {
		if o[i] != 0 || o[i+18] != 0 {
			t.Fatalf("obs[%d] = %v, obs[%d] = %v: quaternion of a 'none' object and the absent second object must be zero", i, o[i], i+18, o[i+18])
		}
	}
}

// The hand is clipped to MetaWorld's hand space and the gripper to [0, 1], in both halves.
func TestBuilderClips(t *testing.T) {
	cfg := DefaultConfig()
	b, _ := NewBuilder(cfg)
	s := testState(cfg)
	s.EEPose.Pos = [3]float64{-2, 2, -1}
	setFingers(cfg, s, 0.2, 0.2) // wider than Normalizer: 1
	var o Obs
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	if o[0] != -0.525 || o[1] != 1.025 || o[2] != -0.0525 || o[3] != 1 || o[18] != -0.525 || o[21] != 1 {
		t.Fatalf("clipped %v / %v", o[0:4], o[18:22])
	}
	setFingers(cfg, s, 0.05, -0.05) // crossed: |0.1 - 0.1| = 0
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	if o[3] != 0 || o[21] != 1 {
		t.Fatalf("gripper %v previous %v", o[3], o[21])
	}
}

func TestBuilderMissing(t *testing.T) {
	cfg := DefaultConfig()
	b, _ := NewBuilder(cfg)
	topics := cfg.ResolveTopics()
	for _, tc := range []struct {
		topic string
		clear func(s *State)
	}{
		{topics.EEPose, func(s *State) { s.EEPose = Pose{} }},
		{topics.JointStates, func(s *State) { s.Joints.Stamp = Stamp{} }},
		{topics.Goal, func(s *State) { s.Goal = Pose{} }},
		{topics.Objects[0], func(s *State) { s.Objects[0] = Pose{} }},
	} {
		s := testState(cfg)
		tc.clear(s)
		var o Obs
		o[0] = 42
		err := b.Build(s, &o)
		var me *MissingError
		if !errors.As(err, &me) || me.Topic != tc.topic {
			t.Fatalf("missing %s: error %v", tc.topic, err)
		}
		if o[0] != 42 {
			t.Fatal("dst changed on error")
		}
	}
	// A failed Build leaves the episode start in place.
	s := testState(cfg)
	var o Obs
	if err := b.Build(s, &o); err != nil {
		t.Fatal(err)
	}
	if o[0] != o[18] {
		t.Fatal("first successful Build after errors is not an episode start")
	}
}

func TestBuildAllocs(t *testing.T) {
	cfg := DefaultConfig()
	b, _ := NewBuilder(cfg)
	s := testState(cfg)
	var o Obs
	if n := testing.AllocsPerRun(1000, func() {
		if err := b.Build(s, &o); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Build: %v allocations", n)
	}
	s.Goal = Pose{}
	if n := testing.AllocsPerRun(1000, func() { _ = b.Build(s, &o) }); n != 0 {
		t.Fatalf("Build with a missing input: %v allocations", n)
	}
}

func BenchmarkBuild(b *testing.B) {
	cfg := DefaultConfig()
	bl, _ := NewBuilder(cfg)
	s := testState(cfg)
	var o Obs
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := bl.Build(s, &o); err != nil {
			b.Fatal(err)
		}
	}
}
