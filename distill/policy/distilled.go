package policy

import (
	"errors"
	"fmt"

	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/vision"
)

// Distilled is the distilled reward: the reward ensemble (control/runtime) on the frame
// rendered after each step, prepared by vision/ with the models' own configuration —
// the path the daemon takes on the robot. The reward is the ensemble mean of the
// members' published (normalised) rewards.
//
// Each environment index (training and evaluation, 0 to 2·Envs−1) has its own ensemble
// clone, preprocessor and buffer, so calls for different environments run concurrently
// and nothing is shared but the weights.
type Distilled struct {
	path, sha string
	ens       []*runtime.Ensemble
	pre       []*vision.Preprocessor
	x         [][]float32
	failures  []error
}

// NewDistilled loads the ensemble whose member 0 is path (verified and self-checked) for
// envs training environments and as many evaluation ones.
func NewDistilled(path string, envs int) (*Distilled, error) {
	ens, err := runtime.LoadEnsemble(path, runtime.Options{})
	if err != nil {
		return nil, fmt.Errorf("policy.NewDistilled: %w", err)
	}
	m := ens.Member(0)
	vc := m.Manifest().Input.Vision
	if vc == nil {
		return nil, fmt.Errorf("policy.NewDistilled: %s takes no image (no vision configuration)", path)
	}
	d := &Distilled{path: path, sha: m.SHA256()}
	for i := range 2 * envs {
		e := ens
		if i > 0 {
			e = ens.Clone()
		}
		p, err := vision.New(*vc)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("policy.NewDistilled: %w", err)
		}
		d.ens, d.pre = append(d.ens, e), append(d.pre, p)
		d.x = append(d.x, make([]float32, p.Len()))
	}
	d.failures = make([]error, 2*envs)
	return d, nil
}

// CountTerm is member 0's count-based term (reward.count), applied by the trainer.
func (d *Distilled) CountTerm() *onnxio.CountTerm { return d.ens[0].Member(0).Manifest().Reward.Count }

// Close frees the preprocessors.
func (d *Distilled) Close() error {
	for _, p := range d.pre {
		p.Close()
	}
	return nil
}

// Name implements Reward.
func (d *Distilled) Name() string { return "distilled" }

// Labeler implements Reward: the sha256 of member 0's file.
func (d *Distilled) Labeler() string { return d.sha }

// NeedsFrame implements Reward.
func (d *Distilled) NeedsFrame() bool { return true }

// Reward implements Reward. A frame the models cannot take (the wrong size for the
// manifest's crop, say) or a non-finite output gives 0 and is remembered; Err reports it
// after the run.
func (d *Distilled) Reward(env int, _ []float64, frame []byte, w, h int, _ float64) float64 {
	img := vision.ImageView{Encoding: "rgb8", Width: w, Height: h, Step: 3 * w, Data: frame}
	if err := d.pre[env].Process(img, d.x[env]); err != nil {
		d.fail(env, err)
		return 0
	}
	r, _, err := d.ens[env].Run(d.x[env])
	if err != nil {
		d.fail(env, err)
		return 0
	}
	return r
}

func (d *Distilled) fail(env int, err error) {
	if d.failures[env] == nil {
		d.failures[env] = fmt.Errorf("distilled reward %s, environment %d: %w", d.path, env, err)
	}
}

// Err is the first failure of each environment, joined; nil when every call succeeded.
func (d *Distilled) Err() error { return errors.Join(d.failures...) }
