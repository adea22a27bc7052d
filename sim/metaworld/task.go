package metaworld

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"robodistill/sim/mujoco"
)

// Task describes one MetaWorld task: its scene, ranges, goal text and scripted policy.
type Task struct {
	Name  string // MetaWorld's name without the version suffix, e.g. "drawer-open"
	Scene string // scene file relative to the assets folder
	// Goal is the instruction a VLM is prompted with.
	Goal string
	// HandLow and HandHigh bound the mocap target (MetaWorld's hand_low/hand_high).
	HandLow, HandHigh Vec3
	// HandInit is the hand position after reset.
	HandInit Vec3
	// RandLow and RandHigh bound MetaWorld's random reset vector (_random_reset_space).
	RandLow, RandHigh []float64
	// ObjectQuat is the order of the observation's object quaternion slots.
	ObjectQuat QuatOrder
	// Scripted is MetaWorld's scripted policy for the task.
	Scripted func(o *Obs) Action
	// Caveat records a measured limitation under MuJoCo 2.2.2 ("" when none), and
	// ScriptedSuccess the scripted policy's measured success rate (seeds 0-99, 80 Hz) for
	// a task whose policy falls short of 90 %.
	Caveat          string
	ScriptedSuccess float64

	newImpl func(e *Env) (taskImpl, error)
}

// taskImpl is the per-Env part of a task: MuJoCo ids and episode state.
type taskImpl interface {
	// reset places the hand, objects and goal for a new episode (MetaWorld's reset_model).
	reset(e *Env) error
	// objects fills the 14 object slots of the observation.
	objects(e *Env, out *[14]float64)
	// evaluate is MetaWorld's evaluate_state: reward (v2) and info.
	evaluate(e *Env, o *Obs, a Action) (float64, Info)
}

// Tasks lists the supported tasks in a stable order.
func Tasks() []*Task {
	return []*Task{
		reachTask,
		pushTask,
		drawerOpenTask,
		doorOpenTask,
		windowOpenTask,
		buttonPressTopdownTask,
		soccerTask,
		sweepIntoTask,
	}
}

// Lookup finds a task by name ("drawer-open"; a "-v3" or "-v2" suffix is accepted).
func Lookup(name string) (*Task, error) {
	n := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(name), "-v3"), "-v2")
	var names []string
	for _, t := range Tasks() {
		if t.Name == n {
			return t, nil
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("metaworld: unknown task %q (known: %s)", name, strings.Join(names, ", "))
}

// Policy helpers, after metaworld/policies/policy.py.

// move is the proportional step from -> to with gain p (the environment clips to [-1, 1]).
func move(from, to Vec3, p float64) Vec3 { return to.Sub(from).Scale(p) }

func act(delta Vec3, grab float64) Action {
	return Action{delta[0], delta[1], delta[2], grab}
}

func clip1(x float64) float64 { return math.Max(-1, math.Min(1, x)) }

// ref names a MuJoCo object a task needs and where its id goes.
type ref struct {
	id   *int
	kind mujoco.ObjType
	name string
}

// resolve looks up every ref in e's model; the error names each missing object.
func resolve(e *Env, refs ...ref) error {
	var errs []error
	for _, r := range refs {
		id, err := e.Model().ID(r.kind, r.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*r.id = id
	}
	return errors.Join(errs...)
}

// freeObject is the object of the reach, push and sweep tasks: a free body "obj" with the
// geom "objGeom", and a goal site.
type freeObject struct {
	obj, objGeom, goalSite int
}

func (f *freeObject) resolve(e *Env) error {
	return resolve(e,
		ref{&f.obj, mujoco.ObjBody, "obj"},
		ref{&f.objGeom, mujoco.ObjGeom, "objGeom"},
		ref{&f.goalSite, mujoco.ObjSite, "goal"},
	)
}

// objects reports the body's position and its geom's orientation (as MetaWorld does,
// through scipy's quaternion convention).
func (f *freeObject) objects(e *Env, out *[14]float64) {
	d := e.Data()
	copy(out[0:3], d.XPos(f.obj))
	q := quatFromMat(d.GeomXMat(f.objGeom))
	copy(out[3:7], q[:])
}
