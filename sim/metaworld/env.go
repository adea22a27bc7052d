// Package metaworld ports MetaWorld's Sawyer manipulation tasks (Farama-Foundation/Metaworld,
// v3 environments with the v2 reward functions) onto MuJoCo 2.2.2 through package mujoco:
// the same scenes, action and observation semantics, reward and success functions, random
// initial states drawn from MetaWorld's ranges, and MetaWorld's scripted policies.
//
// The control period is MetaWorld's 80 Hz (5 physics substeps of 2.5 ms) or the daemon's
// 50 Hz (8 substeps). At 50 Hz the action scale grows by 8/5 so a policy output means the
// same hand velocity at either rate, and an episode lasts the same 6.25 s of simulated time.
package metaworld

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"robodistill/sim/frames"
	"robodistill/sim/mujoco"
)

// ObsDim is the length of MetaWorld's observation: hand position (3), gripper opening (1),
// up to 14 object values (positions and quaternions), the same 18 values from the previous
// step, and the goal position (3).
const ObsDim = 39

// Obs is one observation.
type Obs [ObsDim]float64

// Hand is the end effector position.
func (o *Obs) Hand() Vec3 { return Vec3{o[0], o[1], o[2]} }

// Gripper is the normalized finger distance (0 closed, 1 open).
func (o *Obs) Gripper() float64 { return o[3] }

// Obj1 is the first object's position.
func (o *Obs) Obj1() Vec3 { return Vec3{o[4], o[5], o[6]} }

// Obj2 is the second object's position (when the task has one).
func (o *Obs) Obj2() Vec3 { return Vec3{o[11], o[12], o[13]} }

// Goal is the goal position.
func (o *Obs) Goal() Vec3 { return Vec3{o[36], o[37], o[38]} }

// Action is MetaWorld's 4-D action: hand displacement in units of the action scale (x, y, z)
// and gripper effort (-1 open, 1 closed), each in [-1, 1].
type Action [4]float64

// Info carries MetaWorld's per-step evaluation fields.
type Info struct {
	Success        bool    `json:"success"`
	NearObject     float64 `json:"near_object"`
	GraspSuccess   float64 `json:"grasp_success"`
	GraspReward    float64 `json:"grasp_reward"`
	InPlaceReward  float64 `json:"in_place_reward"`
	ObjToTarget    float64 `json:"obj_to_target"`
	UnscaledReward float64 `json:"unscaled_reward"`
}

// Rates supported by Env.
const (
	Rate80 = 80 // MetaWorld's own: 5 substeps of 2.5 ms
	Rate50 = 50 // the daemon's: 8 substeps
)

// MetaWorld's constants.
const (
	baseSubsteps    = 5
	baseActionScale = 1.0 / 100
	baseMaxSteps    = 500
	resetHandSteps  = 50
)

var (
	handSpaceLow  = Vec3{-0.525, 0.348, -0.0525}
	handSpaceHigh = Vec3{0.525, 1.025, 0.7}
	mocapQuat     = [4]float64{1, 0, 1, 0}
)

// AssetsEnv is the environment variable naming the MetaWorld assets folder.
const AssetsEnv = "ROBODISTILL_METAWORLD_ASSETS"

// ErrAssets reports a missing or incomplete MetaWorld assets folder.
var ErrAssets = errors.New("metaworld assets not found")

// ResolveAssets returns the assets folder: dir if given, else $ROBODISTILL_METAWORLD_ASSETS,
// else ../shared/metaworld/assets relative to the working directory or its parents. The
// folder must hold sawyer_xyz/ and objects/.
func ResolveAssets(dir string) (string, error) {
	var tried []string
	check := func(d string) (string, bool) {
		tried = append(tried, d)
		if st, err := os.Stat(filepath.Join(d, "sawyer_xyz")); err == nil && st.IsDir() {
			if st, err := os.Stat(filepath.Join(d, "objects")); err == nil && st.IsDir() {
				abs, _ := filepath.Abs(d)
				return abs, true
			}
		}
		return "", false
	}
	if dir != "" {
		if d, ok := check(dir); ok {
			return d, nil
		}
		return "", fmt.Errorf("%w: %s has no sawyer_xyz/ and objects/ folders; get them with scripts/bootstrap (or MetaWorld's metaworld/assets folder) and pass --assets or set %s", ErrAssets, dir, AssetsEnv)
	}
	if env := os.Getenv(AssetsEnv); env != "" {
		if d, ok := check(env); ok {
			return d, nil
		}
		return "", fmt.Errorf("%w: %s=%s has no sawyer_xyz/ and objects/ folders; run scripts/bootstrap or point it at MetaWorld's metaworld/assets folder", ErrAssets, AssetsEnv, env)
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		for _, rel := range []string{"../shared/metaworld/assets", "shared/metaworld/assets", ".assets/metaworld"} {
			if got, ok := check(filepath.Join(d, rel)); ok {
				return got, nil
			}
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("%w (looked in %v): run scripts/bootstrap, or pass --assets / set %s to MetaWorld's metaworld/assets folder", ErrAssets, tried, AssetsEnv)
}

// Options configure an Env.
type Options struct {
	Assets string // MetaWorld assets folder (see ResolveAssets)
	Rate   int    // Rate80 (default) or Rate50
	// MaxSteps overrides the episode length (default: 500 at 80 Hz, the same 6.25 s at 50 Hz).
	MaxSteps int
	// HideGoal zeroes the goal in observations (MetaWorld's partially observable mode).
	HideGoal bool
	// KinematicsOnly replaces MetaWorld's full mj_forward after every step with the
	// kinematics pass: the same poses for about a sixth less work per step, but the
	// constraint solver's warm start then differs from MetaWorld's sequence, so contact-rich
	// trajectories drift by solver-tolerance amounts that chaos can grow (measured in
	// TestKinematicsOnlyDrift). Off by default.
	KinematicsOnly bool
	// RawCameras returns frames exactly as the scene's cameras define them; by default the
	// corner cameras, which MetaWorld defines upside down, are turned upright.
	RawCameras bool
	// Render configures cameras; the renderer is created on first use.
	Render mujoco.RenderOptions
}

// Env is one MetaWorld task instance with its own MuJoCo state. It is not safe for
// concurrent use; make one Env per goroutine to step several in parallel.
type Env struct {
	task *Task
	impl taskImpl
	m    *mujoco.Model
	d    *mujoco.Data
	opts Options

	substeps    int
	actionScale float64
	maxSteps    int
	mocapLow    Vec3
	mocapHigh   Vec3

	hand, leftPad, rightPad, leftClaw, rightClaw int // bodies
	rightEE, leftEE                              int // sites
	leftPadGeom, rightPadGeom                    int
	mocap                                        int

	// Episode state shared with task code.
	Target       Vec3 // goal position
	ObjInit      Vec3 // object's initial position
	InitTCP      Vec3 // tool centre point after the hand reset
	InitLeftPad  Vec3
	InitRightPad Vec3

	rng      *rand.Rand
	seed     uint64
	prev     [18]float64
	obs      Obs
	steps    int
	renderer *mujoco.Renderer
	home     []float64 // settled arm pose (armHome)
	scratch  [18]float64
	// contactsFresh is false after a step until a full forward pass recomputes contacts.
	contactsFresh bool
}

// New loads task's scene and prepares an Env. Call Reset before Step.
func New(task *Task, opts Options) (*Env, error) {
	assets, err := ResolveAssets(opts.Assets)
	if err != nil {
		return nil, err
	}
	opts.Assets = assets
	if opts.Rate == 0 {
		opts.Rate = Rate80
	}
	e := &Env{task: task, opts: opts, mocapLow: task.HandLow, mocapHigh: task.HandHigh}
	switch opts.Rate {
	case Rate80:
		e.substeps = baseSubsteps
	case Rate50:
		e.substeps = 8
	default:
		return nil, fmt.Errorf("metaworld.New %s: rate %d Hz not supported (80 or 50)", task.Name, opts.Rate)
	}
	// Same hand velocity at any rate: MetaWorld moves at most 1 cm per 5 substeps.
	e.actionScale = baseActionScale * float64(e.substeps) / baseSubsteps
	e.maxSteps = opts.MaxSteps
	if e.maxSteps == 0 {
		e.maxSteps = int(math.Ceil(baseMaxSteps * float64(baseSubsteps) / float64(e.substeps)))
	}
	scene := filepath.Join(assets, task.Scene)
	if e.m, err = mujoco.Load(scene); err != nil {
		return nil, fmt.Errorf("metaworld.New %s: %w", task.Name, err)
	}
	if e.d, err = mujoco.NewData(e.m); err != nil {
		e.m.Close()
		return nil, fmt.Errorf("metaworld.New %s: %w", task.Name, err)
	}
	if err := e.setup(); err != nil {
		e.Close()
		return nil, fmt.Errorf("metaworld.New %s: %w", task.Name, err)
	}
	return e, nil
}

func (e *Env) setup() error {
	var err error
	var errs []error
	id := func(t mujoco.ObjType, name string) int {
		i, err := e.m.ID(t, name)
		if err != nil {
			errs = append(errs, err)
		}
		return i
	}
	e.hand = id(mujoco.ObjBody, "hand")
	e.leftPad = id(mujoco.ObjBody, "leftpad")
	e.rightPad = id(mujoco.ObjBody, "rightpad")
	e.leftClaw = id(mujoco.ObjBody, "leftclaw")
	e.rightClaw = id(mujoco.ObjBody, "rightclaw")
	e.rightEE = id(mujoco.ObjSite, "rightEndEffector")
	e.leftEE = id(mujoco.ObjSite, "leftEndEffector")
	e.leftPadGeom = id(mujoco.ObjGeom, "leftpad_geom")
	e.rightPadGeom = id(mujoco.ObjGeom, "rightpad_geom")
	mocapBody := id(mujoco.ObjBody, "mocap")
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.mocap = e.m.BodyMocapID(mocapBody)
	if e.mocap < 0 {
		return errors.New("body \"mocap\" is not a mocap body")
	}
	// MetaWorld's reset_mocap_welds: the weld pulls the hand onto the mocap body.
	for i := 0; i < e.m.NEq(); i++ {
		if e.m.EqType(i) == mujoco.EqWeld {
			copy(e.m.EqData(i), []float64{0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 5})
		}
	}
	if err := e.d.Forward(); err != nil {
		return err
	}
	e.InitLeftPad = v3(e.d.XPos(e.leftPad))
	e.InitRightPad = v3(e.d.XPos(e.rightPad))
	if e.home, err = armHome(e); err != nil {
		return err
	}
	impl, err := e.task.newImpl(e)
	if err != nil {
		return err
	}
	e.impl = impl
	return nil
}

// armJoints is the number of robot joints at the start of qpos: the Sawyer's seven arm
// joints and the two gripper fingers.
const armJoints = 9

// The settled arm pose per scene and initial hand position, computed once per process.
var (
	armHomeMu    sync.Mutex
	armHomeCache = map[string][]float64{}
)

// armHome returns the arm's joint positions with the hand settled, level, at the task's
// initial position.
//
// MetaWorld resets by holding the mocap target at the initial position for 50 steps from
// the scene's default arm pose, whose hand is turned 124° away from the target
// orientation. Under MuJoCo 2.2.2 with MetaWorld's weld (torque scale 5) the hand is still
// 43° off after those 50 steps and takes about 130 to level out, so episodes would start
// with a tilted gripper that MetaWorld's scripted policies do not expect (soccer: 78% of
// 100 seeds instead of 90%). Episodes therefore start from the settled pose below, and
// Reset then runs MetaWorld's 50 hand-reset steps as usual.
func armHome(e *Env) ([]float64, error) {
	key := fmt.Sprintf("%s %v", e.m.Path(), e.task.HandInit)
	armHomeMu.Lock()
	defer armHomeMu.Unlock()
	if h, ok := armHomeCache[key]; ok {
		return h, nil
	}
	if e.m.NQ() < armJoints {
		return nil, fmt.Errorf("scene has %d qpos values, fewer than the robot's %d joints", e.m.NQ(), armJoints)
	}
	if err := e.d.Reset(); err != nil {
		return nil, err
	}
	const settleSteps = 300
	for i := 0; i < settleSteps; i++ {
		copy(e.d.MocapPos(e.mocap), e.task.HandInit[:])
		copy(e.d.MocapQuat(e.mocap), mocapQuat[:])
		ctrl := e.d.Ctrl()
		ctrl[0], ctrl[1] = -1, 1
		if err := e.d.Step(baseSubsteps); err != nil {
			return nil, err
		}
	}
	h := append([]float64(nil), e.d.Qpos()[:armJoints]...)
	armHomeCache[key] = h
	return h, e.d.Reset()
}

// Close frees the simulator and renderer.
func (e *Env) Close() {
	if e.renderer != nil {
		e.renderer.Close()
		e.renderer = nil
	}
	if e.d != nil {
		e.d.Close()
		e.d = nil
	}
	if e.m != nil {
		e.m.Close()
		e.m = nil
	}
}

// Task is the task this Env runs.
func (e *Env) Task() *Task { return e.task }

// Rate is the control rate in Hz.
func (e *Env) Rate() int { return e.opts.Rate }

// Substeps is the number of 2.5 ms physics steps per control step.
func (e *Env) Substeps() int { return e.substeps }

// ActionScale is the hand displacement in metres of a unit action.
func (e *Env) ActionScale() float64 { return e.actionScale }

// MaxSteps is the episode length in control steps.
func (e *Env) MaxSteps() int { return e.maxSteps }

// Steps is the number of control steps since the last reset.
func (e *Env) Steps() int { return e.steps }

// Seed is the seed of the current episode.
func (e *Env) Seed() uint64 { return e.seed }

// Model and Data expose the simulator (for renderers, bridges and tests).
func (e *Env) Model() *mujoco.Model { return e.m }
func (e *Env) Data() *mujoco.Data   { return e.d }

// Obs is the latest observation.
func (e *Env) Obs() Obs { return e.obs }

// TCP is the tool centre point: the midpoint of the two finger sites.
func (e *Env) TCP() Vec3 {
	r, l := e.d.SiteXPos(e.rightEE), e.d.SiteXPos(e.leftEE)
	return Vec3{(r[0] + l[0]) / 2, (r[1] + l[1]) / 2, (r[2] + l[2]) / 2}
}

// HandPos is the hand body's position.
func (e *Env) HandPos() Vec3 { return v3(e.d.XPos(e.hand)) }

// LeftPad and RightPad are the finger pads' positions.
func (e *Env) LeftPad() Vec3  { return v3(e.d.XPos(e.leftPad)) }
func (e *Env) RightPad() Vec3 { return v3(e.d.XPos(e.rightPad)) }

// MocapPos is the current hand target.
func (e *Env) MocapPos() Vec3 { return v3(e.d.MocapPos(e.mocap)) }

// Reset starts a new episode whose random initial state is drawn from seed.
func (e *Env) Reset(seed uint64) (Obs, error) {
	e.seed = seed
	e.rng = rand.New(rand.NewPCG(seed, 0x6d657461776f726c)) // "metaworl"
	if err := e.d.Reset(); err != nil {
		return Obs{}, err
	}
	copy(e.d.Qpos()[:armJoints], e.home)
	e.steps = 0
	if err := e.impl.reset(e); err != nil {
		return Obs{}, fmt.Errorf("metaworld.Reset %s: %w", e.task.Name, err)
	}
	if err := e.d.Forward(); err != nil {
		return Obs{}, err
	}
	e.contactsFresh = true
	cur := e.current()
	e.prev = cur
	e.obs = e.assemble(cur)
	return e.obs, nil
}

// RandVec draws MetaWorld's random reset vector for the task from the episode's generator.
func (e *Env) RandVec() []float64 {
	lo, hi := e.task.RandLow, e.task.RandHigh
	v := make([]float64, len(lo))
	for i := range v {
		v[i] = lo[i] + (hi[i]-lo[i])*e.rng.Float64()
	}
	return v
}

// ResetHand holds the mocap target at the task's initial hand position for 50 steps with
// the gripper open, as MetaWorld's _reset_hand does, and records the initial TCP.
func (e *Env) ResetHand() error {
	for i := 0; i < resetHandSteps; i++ {
		copy(e.d.MocapPos(e.mocap), e.task.HandInit[:])
		copy(e.d.MocapQuat(e.mocap), mocapQuat[:])
		ctrl := e.d.Ctrl()
		ctrl[0], ctrl[1] = -1, 1
		if err := e.d.Step(baseSubsteps); err != nil {
			return err
		}
	}
	e.InitTCP = e.TCP()
	return nil
}

// SetJoint writes qpos of the named joint (a free joint takes 7 values, a slide or hinge 1)
// and zeroes its velocity.
func (e *Env) SetJoint(name string, qpos ...float64) error {
	j, err := e.m.ID(mujoco.ObjJoint, name)
	if err != nil {
		return err
	}
	copy(e.d.Qpos()[e.m.JointQposAdr(j):], qpos)
	qv := e.d.Qvel()
	dof := e.m.JointDofAdr(j)
	n := 1
	if len(qpos) == 7 {
		n = 6
	}
	for i := 0; i < n; i++ {
		qv[dof+i] = 0
	}
	return e.d.Forward()
}

// SetObjXYZ is MetaWorld's _set_obj_xyz: qpos[9:12] = pos, qvel[9:15] = 0.
func (e *Env) SetObjXYZ(pos Vec3) error {
	copy(e.d.Qpos()[9:12], pos[:])
	qv := e.d.Qvel()
	for i := 9; i < 15 && i < len(qv); i++ {
		qv[i] = 0
	}
	return e.d.Forward()
}

// TouchingObject reports whether both finger pads push on geom with positive force.
func (e *Env) TouchingObject(geom int) bool {
	if !e.contactsFresh {
		if err := e.d.Forward(); err != nil {
			return false
		}
		e.contactsFresh = true
	}
	var left, right float64
	for i := 0; i < e.d.NCon(); i++ {
		c := e.d.Contact(i)
		if c.EfcAddress < 0 {
			continue
		}
		if (c.Geom1 == geom || c.Geom2 == geom) && (c.Geom1 == e.leftPadGeom || c.Geom2 == e.leftPadGeom) {
			left += e.d.EfcForce(c.EfcAddress)
		}
		if (c.Geom1 == geom || c.Geom2 == geom) && (c.Geom1 == e.rightPadGeom || c.Geom2 == e.rightPadGeom) {
			right += e.d.EfcForce(c.EfcAddress)
		}
	}
	return left > 0 && right > 0
}

// ErrEpisodeOver is returned by Step after MaxSteps steps without a Reset.
var ErrEpisodeOver = errors.New("metaworld: episode over, call Reset")

// Step applies action for one control period. It returns the observation, MetaWorld's
// reward, the evaluation info and whether the episode reached its length (truncation).
func (e *Env) Step(a Action) (Obs, float64, Info, bool, error) {
	if e.steps >= e.maxSteps {
		return e.obs, 0, Info{}, true, ErrEpisodeOver
	}
	for i, v := range a {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return e.obs, 0, Info{}, false, fmt.Errorf("metaworld.Step: action[%d] is %v", i, v)
		}
		a[i] = math.Max(-1, math.Min(1, v))
	}
	mp := e.d.MocapPos(e.mocap)
	next := Vec3{mp[0], mp[1], mp[2]}.Add(Vec3{a[0], a[1], a[2]}.Scale(e.actionScale)).Clip(e.mocapLow, e.mocapHigh)
	copy(mp, next[:])
	copy(e.d.MocapQuat(e.mocap), mocapQuat[:])
	ctrl := e.d.Ctrl()
	ctrl[0], ctrl[1] = a[3], -a[3]
	if err := e.d.Step(e.substeps); err != nil {
		return e.obs, 0, Info{}, false, err
	}
	// MetaWorld calls mj_forward here so observations see the state after the last
	// substep (and MuJoCo 2.2.2's forward pass also sets the solver's warm start for the
	// next step). KinematicsOnly computes just the poses; contacts and constraint forces
	// are then refreshed only when a reward asks for them (TouchingObject).
	if e.opts.KinematicsOnly {
		if err := e.d.Kinematics(); err != nil {
			return e.obs, 0, Info{}, false, err
		}
	} else if err := e.d.Forward(); err != nil {
		return e.obs, 0, Info{}, false, err
	}
	e.contactsFresh = !e.opts.KinematicsOnly
	e.steps++
	cur := e.current()
	e.obs = e.assemble(cur)
	e.prev = cur
	r, info := e.impl.evaluate(e, &e.obs, a)
	return e.obs, r, info, e.steps >= e.maxSteps, nil
}

// Refresh recomputes the observation from the simulator's current state after edits such
// as SetJoint (a full forward pass), keeping the observation's previous-frame half.
func (e *Env) Refresh() (Obs, error) {
	if err := e.d.Forward(); err != nil {
		return e.obs, err
	}
	e.contactsFresh = true
	cur := e.current()
	prev := e.prev
	copy(e.prev[:], e.obs[18:36])
	e.obs = e.assemble(cur)
	e.prev = prev
	return e.obs, nil
}

// Evaluate returns reward and info for the current observation as if action a had just
// been taken (call Refresh first after editing the state).
func (e *Env) Evaluate(a Action) (float64, Info) { return e.impl.evaluate(e, &e.obs, a) }

// current is MetaWorld's _get_curr_obs_combined_no_goal.
func (e *Env) current() [18]float64 {
	// Filled in place: a pointer into a local array handed to the task (an interface)
	// would move the array to the heap on every step.
	c := &e.scratch
	*c = [18]float64{}
	h := e.d.XPos(e.hand)
	copy(c[:3], h)
	r, l := v3(e.d.XPos(e.rightClaw)), v3(e.d.XPos(e.leftClaw))
	c[3] = math.Max(0, math.Min(1, r.Dist(l)/0.1))
	e.impl.objects(e, (*[14]float64)(c[4:18]))
	return *c
}

func (e *Env) assemble(cur [18]float64) Obs {
	var o Obs
	copy(o[:18], cur[:])
	copy(o[18:36], e.prev[:])
	if !e.opts.HideGoal {
		copy(o[36:], e.Target[:])
	}
	// MetaWorld clips to its observation space: hand inside _HAND_SPACE, gripper in [-1, 1].
	for _, base := range []int{0, 18} {
		for i := 0; i < 3; i++ {
			o[base+i] = math.Max(handSpaceLow[i], math.Min(handSpaceHigh[i], o[base+i]))
		}
		o[base+3] = math.Max(-1, math.Min(1, o[base+3]))
	}
	return o
}

// Camera returns the id of the named camera, with the names the scene offers on error.
func (e *Env) Camera(name string) (int, error) {
	id, err := e.m.ID(mujoco.ObjCamera, name)
	if err != nil {
		return -1, fmt.Errorf("metaworld %s: unknown camera %q (the scene has %v)", e.task.Name, name, e.m.Names(mujoco.ObjCamera))
	}
	return id, nil
}

// Render draws the named camera at w×h into out (RGB8, first row at the top, w*h*3 bytes).
func (e *Env) Render(camera string, w, h int, out []byte) error {
	cam, err := e.Camera(camera)
	if err != nil {
		return err
	}
	return e.RenderID(cam, w, h, out)
}

// RenderID is Render with a camera id from Camera.
func (e *Env) RenderID(cam, w, h int, out []byte) error {
	if e.renderer == nil {
		r, err := mujoco.NewRenderer(e.m, e.opts.Render)
		if err != nil {
			return err
		}
		e.renderer = r
	}
	if err := e.renderer.Render(e.d, cam, w, h, out); err != nil {
		return err
	}
	if !e.opts.RawCameras && upsideDownCameras[e.m.Name(mujoco.ObjCamera, cam)] {
		(&frames.RGB{W: w, H: h, Pix: out[:w*h*3]}).Rotate180()
	}
	return nil
}

// upsideDownCameras are MetaWorld's cameras whose definition rolls the image by 180°
// (the table appears at the top). Render turns their frames upright unless
// Options.RawCameras is set.
var upsideDownCameras = map[string]bool{"corner": true, "corner2": true, "corner3": true, "corner4": true}
