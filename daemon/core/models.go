package core

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"robodistill/control/onnxio"
	"robodistill/control/rosiface"
	"robodistill/control/runtime"
	"robodistill/daemon/config"
	"robodistill/daemon/rosio"
	"robodistill/vision"
)

// ObservationLayout is the policy input layout the daemon builds (rosio.Builder): a
// policy whose manifest names another is refused.
const ObservationLayout = "metaworld-v2-39"

// ErrModel is wrapped by every error about a model the daemon refuses: a file that fails
// its hash or self-check, or a manifest that does not fit the daemon's configuration.
var ErrModel = errors.New("model refused")

// models is one loaded, checked pair of reward ensemble and policy with what the control
// cycle needs to run them: the reward's preprocessor and input buffer, and the motion
// mapping of the policy's actions. The control thread owns it once it is swapped in.
type models struct {
	reward *runtime.Ensemble
	policy *runtime.Model
	pre    *vision.Preprocessor
	tensor []float32 // the reward's input, pre.Len() values
	motion rosiface.Motion

	objects []rosio.Object // the observation's objects, from the policy's task
	task    string

	rewardPath, policyPath string
	rewardSHA, policySHA   string // member 0's for the ensemble
	rewardSHAs             string // every member's, to tell whether a reload changed any
	ids                    []rosio.ModelID
}

// close releases the preprocessor's OpenCV memory.
func (m *models) close() {
	if m != nil && m.pre != nil {
		m.pre.Close()
	}
}

// loadModels loads cfg's reward ensemble and policy (the runtime verifies each file's
// sha256 against its sidecar and runs the golden self-check) and checks them against
// the daemon's configuration. Errors wrap ErrModel and name the file and the key.
func loadModels(cfg config.Config) (*models, error) {
	ens, err := runtime.LoadEnsemble(cfg.Models.Reward, runtime.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w: reward %s: %w", ErrModel, cfg.Models.Reward, err)
	}
	pol, err := runtime.Load(cfg.Models.Policy, runtime.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w: policy %s: %w", ErrModel, cfg.Models.Policy, err)
	}
	rman, pman := ens.Member(0).Manifest(), pol.Manifest()
	errs := []error{
		checkReward(rman, ens.Member(0).InputSize(), cfg.Vision),
		checkPolicy(pman, pol.InputSize(), pol.OutputSize(), cfg.Loop.RateHz),
	}
	if err := errors.Join(errs...); err != nil {
		// Each message starts with the model it is about.
		var parts []string
		if errs[0] != nil {
			parts = append(parts, fmt.Sprintf("reward %s: %v", cfg.Models.Reward, errs[0]))
		}
		if errs[1] != nil {
			parts = append(parts, fmt.Sprintf("policy %s: %v", cfg.Models.Policy, errs[1]))
		}
		return nil, fmt.Errorf("%w: %s", ErrModel, strings.Join(parts, "; "))
	}
	pre, err := vision.New(*rman.Input.Vision)
	if err != nil {
		return nil, fmt.Errorf("%w: reward %s: input.vision: %w", ErrModel, cfg.Models.Reward, err)
	}
	objs, _ := objectsFor(pman.Task)
	m := &models{
		reward: ens, policy: pol, pre: pre, tensor: make([]float32, pre.Len()),
		motion:     rosiface.Motion{Scale: pman.Control.ActionScale, Rate: pman.Control.RateHz},
		objects:    objs,
		task:       pman.Task,
		rewardPath: cfg.Models.Reward, policyPath: cfg.Models.Policy,
		rewardSHA: ens.Member(0).SHA256(), policySHA: pol.SHA256(),
	}
	shas := make([]string, ens.Size())
	for i := range shas {
		shas[i] = ens.Member(i).SHA256()
	}
	m.rewardSHAs = strings.Join(shas, " ")
	rname := filepath.Base(cfg.Models.Reward)
	if ens.Size() > 1 {
		rname = fmt.Sprintf("%s (ensemble of %d)", rname, ens.Size())
	}
	m.ids = []rosio.ModelID{
		{Role: "reward", Name: rname, SHA256: m.rewardSHA, Version: version(rman)},
		{Role: "policy", Name: filepath.Base(cfg.Models.Policy), SHA256: m.policySHA, Version: version(pman)},
	}
	return m, nil
}

func version(m *onnxio.Manifest) string {
	return m.CodeVersion + " " + m.Created.UTC().Format("2006-01-02T15:04:05Z")
}

// checkReward checks a reward model's manifest against the camera the configuration
// expects: the model's crop must lie inside frames of vision.camera_width × height (when
// they are set), and a model that wants colour cannot be fed a mono8 camera.
func checkReward(m *onnxio.Manifest, inputSize int, cam config.Vision) error {
	if m.Kind != onnxio.KindReward {
		return fmt.Errorf("kind is %q, not a reward model", m.Kind)
	}
	v := m.Input.Vision
	if v == nil {
		return errors.New("input.vision: missing: the daemon preprocesses camera frames exactly as the manifest says")
	}
	if want := v.Width * v.Height * v.Channels.Count(); inputSize != want {
		return fmt.Errorf("input.shape: %d values per frame, but input.vision makes %d×%d×%d = %d", inputSize, v.Channels.Count(), v.Height, v.Width, want)
	}
	var errs []error
	if c := v.Crop; c != nil {
		if cam.CameraWidth > 0 && c.X+c.Width > cam.CameraWidth {
			errs = append(errs, fmt.Errorf("input.vision.crop: x %d + width %d = %d is outside frames of vision.camera_width %d", c.X, c.Width, c.X+c.Width, cam.CameraWidth))
		}
		if cam.CameraHeight > 0 && c.Y+c.Height > cam.CameraHeight {
			errs = append(errs, fmt.Errorf("input.vision.crop: y %d + height %d = %d is outside frames of vision.camera_height %d", c.Y, c.Height, c.Y+c.Height, cam.CameraHeight))
		}
	}
	if cam.CameraEncoding == "mono8" && v.Channels != vision.Gray {
		errs = append(errs, fmt.Errorf("input.vision.channels: the model takes %s frames, but vision.camera_encoding is mono8", v.Channels))
	}
	return errors.Join(errs...)
}

// checkPolicy checks a policy's manifest against what the daemon builds and runs: the
// observation layout, the action size, and the control rate (a policy runs at the rate
// it was trained at).
func checkPolicy(m *onnxio.Manifest, inputSize, outputSize, rateHz int) error {
	if m.Kind != onnxio.KindPolicy {
		return fmt.Errorf("kind is %q, not a policy", m.Kind)
	}
	var errs []error
	if m.Input.Observation != ObservationLayout {
		errs = append(errs, fmt.Errorf("input.observation is %q, but the daemon builds %q", m.Input.Observation, ObservationLayout))
	}
	if inputSize != rosio.ObsDim {
		errs = append(errs, fmt.Errorf("input.shape: %d values, but the observation has %d", inputSize, rosio.ObsDim))
	}
	if outputSize != 4 {
		errs = append(errs, fmt.Errorf("output.shape: %d values, but an action has 4 (x, y, z, gripper)", outputSize))
	}
	switch c := m.Control; {
	case c == nil:
		errs = append(errs, errors.New("control: missing: the manifest must say the rate the policy was trained at and its action scale (control.rate_hz, control.action_scale_m)"))
	default:
		if c.RateHz != rateHz {
			errs = append(errs, fmt.Errorf("control.rate_hz is %d Hz, but loop.rate_hz is %d Hz: a policy runs at the rate it was trained at", c.RateHz, rateHz))
		}
		if !(c.ActionScale > 0 && c.ActionScale <= 1) {
			errs = append(errs, fmt.Errorf("control.action_scale_m: must be in (0, 1] m, got %g", c.ActionScale))
		}
	}
	return errors.Join(errs...)
}

// compatible checks that next can replace cur without restarting: the safety filter's
// limits depend on the action scale, and the observation's object slots on the task's
// quaternion layout, both fixed at start.
func compatible(cur, next *models) error {
	var errs []error
	if cur.motion.Scale != next.motion.Scale {
		errs = append(errs, fmt.Errorf("control.action_scale_m is %g m, the running policy's %g m: the safety filter's workspace limit depends on it; restart the daemon to change it", next.motion.Scale, cur.motion.Scale))
	}
	if !slices.Equal(cur.objects, next.objects) {
		errs = append(errs, fmt.Errorf("task %q lays out its objects as %v, the running policy's task %q as %v; restart the daemon to change it", next.task, next.objects, cur.task, cur.objects))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: policy %s: %w", ErrModel, next.policyPath, err)
	}
	return nil
}

// taskLayouts are the quaternion layouts of MetaWorld's observation per task
// (docs/daemon-rosio.md): MetaWorld is not consistent across tasks.
var taskLayouts = map[string]rosio.QuatLayout{
	"reach": rosio.QuatXYZW, "push": rosio.QuatXYZW, "sweep-into": rosio.QuatXYZW,
	"soccer": rosio.QuatXYZW, "door-open": rosio.QuatXYZW,
	"drawer-open": rosio.QuatWXYZ, "button-press-topdown": rosio.QuatWXYZ,
	"window-open": rosio.QuatNone,
}

// objectsFor is the observation's object list for a policy's task ("reach" or
// "reach-v2"): the sim bridge's one object, "object", in the task's layout. An unknown
// task gets scipy's xyzw layout (MetaWorld's free objects) and known false.
func objectsFor(task string) (objs []rosio.Object, known bool) {
	name := task
	if i := strings.LastIndex(name, "-v"); i > 0 && len(name) > i+2 && strings.Trim(name[i+2:], "0123456789") == "" {
		name = name[:i]
	}
	layout, known := taskLayouts[name]
	if !known {
		layout = rosio.QuatXYZW
	}
	return []rosio.Object{{Name: "object", Quat: layout}}, known
}
