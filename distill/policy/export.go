package policy

import (
	"fmt"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

// DeterministicNet builds the deterministic policy obs → tanh(mean) as a network of its
// own: the actor's hidden layers (copied), a Linear holding only the mean rows of the
// actor's last layer, and Tanh. The actor is its Polyak average when
// SACConfig.ActorAverage is set. It shares no storage with the agent.
func (ag *Agent) DeterministicNet() *nn.Sequential {
	layers := ag.policyNet().Layers
	var out []nn.Layer
	for i, l := range layers {
		switch l := l.(type) {
		case *nn.Linear:
			rows := l.Out
			if i == len(layers)-1 {
				rows = ag.actDim // the means; the log-stds follow them
			}
			c := &nn.Linear{In: l.In, Out: rows,
				Weight: &nn.Param{Name: "weight", Shape: []int{rows, l.In}, Value: append([]float32(nil), l.Weight.Value[:rows*l.In]...), Grad: make([]float32, rows*l.In)},
				Bias:   &nn.Param{Name: "bias", Shape: []int{rows}, Value: append([]float32(nil), l.Bias.Value[:rows]...), Grad: make([]float32, rows)}}
			out = append(out, c)
		case *nn.ReLU:
			out = append(out, nn.NewReLU())
		default:
			panic(fmt.Sprintf("policy: actor layer %d is a %T", i, l))
		}
	}
	return nn.NewSequential(append(out, nn.NewTanh())...)
}

// ExportInfo is the provenance an exported policy's manifest records.
type ExportInfo struct {
	Spec        Spec
	Labeler     string // "ground-truth" or the reward model's sha256
	CodeVersion string
	Created     time.Time // default now
}

// Export writes the deterministic policy to path as ONNX with its manifest (kind policy,
// input "obs" of Spec.ObsDim values in Spec.Observation's layout, output "action" of
// Spec.ActDim values whose meaning text carries the action scale and control rate) and
// the sidecar beside it.
func Export(path string, ag *Agent, info ExportInfo) (*onnxio.Sidecar, error) {
	sp := info.Spec
	if o, a := ag.Dims(); o != sp.ObsDim || a != sp.ActDim {
		return nil, fmt.Errorf("policy.Export: agent has dimensions %d and %d, spec %d and %d", o, a, sp.ObsDim, sp.ActDim)
	}
	created := info.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	meaning := sp.Action
	if meaning == "" {
		meaning = "actions in [-1, 1], tanh of the SAC actor's mean"
	}
	m := onnxio.Manifest{
		Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy, Task: sp.Task,
		Input:       onnxio.Input{Name: "obs", Shape: []int{sp.ObsDim}, Observation: sp.Observation},
		Output:      onnxio.Output{Name: "action", Shape: []int{sp.ActDim}, Meaning: meaning},
		Training:    onnxio.Training{Labeler: info.Labeler},
		CodeVersion: info.CodeVersion, Created: created,
	}
	if sp.Rate > 0 && sp.ActionScale > 0 {
		m.Control = &onnxio.Control{RateHz: sp.Rate, ActionScale: sp.ActionScale}
	}
	sc, err := onnxio.Save(path, ag.DeterministicNet(), m)
	if err != nil {
		return nil, fmt.Errorf("policy.Export: %w", err)
	}
	return sc, nil
}

// Export writes the run's deterministic policy (see the function Export).
func (r *Result) Export(path, codeVersion string) (*onnxio.Sidecar, error) {
	return Export(path, r.Agent, ExportInfo{Spec: r.Spec, Labeler: r.Labeler, CodeVersion: codeVersion})
}
