package nn

import (
	"errors"
	"fmt"
	"math"
)

// AdamConfig holds Adam's hyperparameters. They are float64, as in PyTorch, and are
// rounded to float32 where PyTorch rounds them.
type AdamConfig struct {
	LR    float64 `json:"lr"`
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
	// WeightDecay adds WeightDecay·w to every gradient (L2, torch.optim.Adam), or with
	// Decoupled multiplies w by 1 − LR·WeightDecay before the step (torch.optim.AdamW).
	WeightDecay float64 `json:"weight_decay"`
	Decoupled   bool    `json:"decoupled"`
}

// DefaultAdam is PyTorch's default: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no decay.
func DefaultAdam() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Validate reports the first bad hyperparameter, naming its key.
func (c AdamConfig) Validate() error {
	switch {
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("lr: must be positive and finite, got %g", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("beta1: must be in [0, 1), got %g", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("beta2: must be in [0, 1), got %g", c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("eps: must be positive and finite, got %g", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight_decay: must be non-negative and finite, got %g", c.WeightDecay)
	}
	return nil
}

// Adam is the Adam optimiser with bias correction, computed as torch.optim.Adam (1.13,
// single-tensor path) computes it, in float32.
type Adam struct {
	cfg    AdamConfig
	params []*Param
	m, v   [][]float32
	step   int
}

// NewAdam returns an optimiser for params.
func NewAdam(params []*Param, cfg AdamConfig) (*Adam, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nn.NewAdam: %w", err)
	}
	if len(params) == 0 {
		return nil, errors.New("nn.NewAdam: no parameters")
	}
	a := &Adam{cfg: cfg, params: params}
	for _, p := range params {
		a.m = append(a.m, make([]float32, len(p.Value)))
		a.v = append(a.v, make([]float32, len(p.Value)))
	}
	return a, nil
}

// Config returns the hyperparameters.
func (a *Adam) Config() AdamConfig { return a.cfg }

// Steps is the number of steps taken.
func (a *Adam) Steps() int { return a.step }

// Step updates every parameter from its gradient. It does not clear the gradients.
func (a *Adam) Step() {
	a.step++
	c := a.cfg
	bc1 := 1 - math.Pow(c.Beta1, float64(a.step))
	bc2 := 1 - math.Pow(c.Beta2, float64(a.step))
	stepSize := float32(c.LR / bc1)
	bc2sqrt := float32(math.Sqrt(bc2))
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	omb1, omb2 := float32(1-c.Beta1), float32(1-c.Beta2)
	eps, wd := float32(c.Eps), float32(c.WeightDecay)
	shrink := float32(1 - c.LR*c.WeightDecay)
	for i, p := range a.params {
		m, v := a.m[i], a.v[i]
		for j, g := range p.Grad {
			w := p.Value[j]
			if c.WeightDecay != 0 {
				if c.Decoupled {
					w *= shrink
				} else {
					g += wd * w
				}
			}
			m[j] = m[j]*b1 + omb1*g
			v[j] = v[j]*b2 + omb2*g*g
			denom := float32(math.Sqrt(float64(v[j])))/bc2sqrt + eps
			p.Value[j] = w + (-stepSize*m[j])/denom
		}
	}
}
