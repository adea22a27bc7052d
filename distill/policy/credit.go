package policy

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"

	"robodistill/control/nn"
	"robodistill/distill/plots"
	"robodistill/distill/reward"
)

// LoadAgent reads the networks of a training checkpoint (Config.Checkpoint's
// CheckpointFile, kept with --keep-checkpoint) into a new agent of configuration cfg
// for obsDim observations and actDim actions: the critics of a run on the simulator's
// reward are the value function the credit-assignment analysis compares a distilled
// reward with.
func LoadAgent(dir string, cfg SACConfig, obsDim, actDim int) (*Agent, error) {
	path := filepath.Join(dir, CheckpointFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy.LoadAgent: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, len(checkpointMagic))
	var n uint32
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return nil, fmt.Errorf("policy.LoadAgent: %s: %w: not a policy-training checkpoint", path, ErrCheckpoint)
	}
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<28 {
		return nil, fmt.Errorf("policy.LoadAgent: %s: %w: bad header length", path, ErrCheckpoint)
	}
	if _, err := r.Discard(int(n)); err != nil {
		return nil, fmt.Errorf("policy.LoadAgent: %s: %w: truncated header", path, ErrCheckpoint)
	}
	ag, err := NewAgent(cfg, obsDim, actDim, 0)
	if err != nil {
		return nil, fmt.Errorf("policy.LoadAgent: %w", err)
	}
	if err := ag.readFrom(r); err != nil {
		return nil, fmt.Errorf("policy.LoadAgent: %s: %w: %v (is --hidden the run's?)", path, ErrCheckpoint, err)
	}
	return ag, nil
}

// Value is the agent's state value under its deterministic policy, the smaller of its
// critics at (obs, tanh μ(obs)), for n observations; it writes v[:n]. It allocates.
func (ag *Agent) Value(obs []float32, n int, v []float32) {
	O, A := ag.obsDim, ag.actDim
	act := make([]float32, n*A)
	ag.Act(obs, n, true, act)
	in := nn.Tensor{Shape: []int{n, O + A}, Data: make([]float32, n*(O+A))}
	fillQin(&in, obs, act, n, O, A)
	q1 := append([]float32(nil), ag.q[0].Forward(&in).Data[:n]...)
	q2 := ag.q[1].Forward(&in).Data[:n]
	for i := range n {
		v[i] = min(q1[i], q2[i])
	}
}

// CreditConfig configures CreditAssignment.
type CreditConfig struct {
	NewEnv func() (Env, error)
	// Critic is an agent trained on the simulator's reward: its value function is the
	// reference, and its policy (sampled, not deterministic) makes the trajectories.
	Critic *Agent
	// Reward is the distilled reward under test (index 0 is used; it must be a fresh
	// instance or one whose environment 0 is idle).
	Reward    Reward
	Camera    string
	FrameSize int
	Episodes  int
	Seed      uint64
}

// CreditStep is one step of a trajectory.
type CreditStep struct {
	Episode, Step  int
	Value          float64 // the critic's V(s) of the state reached
	Distilled, Sim float64 // rewards of that state
	Success        bool
}

// CreditEpisode is one trajectory's correlations.
type CreditEpisode struct {
	Episode          int     `json:"episode"`
	Success          bool    `json:"success"`
	PearsonDistilled float64 `json:"pearson_distilled"` // distilled reward vs V along the trajectory
	PearsonSim       float64 `json:"pearson_sim"`       // the simulator's reward vs V (the reference)
}

// CreditResult is the credit-assignment analysis (Klissarov et al., "On the modeling
// capabilities of large language models for sequential decision making"): whether the
// distilled reward along trajectories follows the value of a critic trained on the true
// reward, i.e. whether it already credits states for what they lead to.
type CreditResult struct {
	Episodes []CreditEpisode `json:"episodes"`
	// Means over the episodes and correlations over every step pooled.
	MeanPearsonDistilled   float64      `json:"mean_pearson_distilled"`
	MeanPearsonSim         float64      `json:"mean_pearson_sim"`
	PooledPearsonDistilled float64      `json:"pooled_pearson_distilled"`
	PooledPearsonSim       float64      `json:"pooled_pearson_sim"`
	SuccessRate            float64      `json:"success_rate"`
	Steps                  []CreditStep `json:"-"`
}

// CreditAssignment runs cfg.Episodes trajectories of the critic's sampled policy on the
// evaluation seeds of cfg.Seed, and correlates the distilled reward of every state
// reached with the critic's value of it.
func CreditAssignment(ctx context.Context, cfg CreditConfig) (*CreditResult, error) {
	if cfg.Critic == nil || cfg.Reward == nil || cfg.NewEnv == nil || cfg.Episodes < 1 {
		return nil, errors.New("policy.CreditAssignment: NewEnv, Critic, Reward and Episodes ≥ 1 are required")
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = 64
	}
	if cfg.Camera == "" {
		cfg.Camera = "corner"
	}
	env, err := cfg.NewEnv()
	if err != nil {
		return nil, err
	}
	defer env.Close()
	sp := env.Spec()
	if o, a := cfg.Critic.Dims(); o != sp.ObsDim || a != sp.ActDim {
		return nil, fmt.Errorf("policy.CreditAssignment: the critic is for %d observations and %d actions, the task has %d and %d", o, a, sp.ObsDim, sp.ActDim)
	}
	obs := make([]float64, sp.ObsDim)
	obs32 := make([]float32, sp.ObsDim)
	act, act64 := make([]float32, sp.ActDim), make([]float64, sp.ActDim)
	frame := make([]byte, 3*cfg.FrameSize*cfg.FrameSize)
	v := make([]float32, 1)
	res := &CreditResult{}
	for k := range cfg.Episodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := env.Reset(EvalSeed(cfg.Seed, k), obs); err != nil {
			return nil, err
		}
		var ep []CreditStep
		success := false
		for step := 1; ; step++ {
			for i, x := range obs {
				obs32[i] = float32(x)
			}
			cfg.Critic.Act(obs32, 1, false, act)
			for i, x := range act {
				act64[i] = float64(x)
			}
			sr, err := env.Step(act64, obs)
			if err != nil {
				return nil, err
			}
			var rd float64
			if cfg.Reward.NeedsFrame() {
				if err := env.Render(cfg.Camera, cfg.FrameSize, cfg.FrameSize, frame); err != nil {
					return nil, err
				}
				rd = cfg.Reward.Reward(0, obs, frame, cfg.FrameSize, cfg.FrameSize, sr.Reward)
			} else {
				rd = cfg.Reward.Reward(0, obs, nil, 0, 0, sr.Reward)
			}
			for i, x := range obs {
				obs32[i] = float32(x)
			}
			cfg.Critic.Value(obs32, 1, v)
			success = success || sr.Success
			ep = append(ep, CreditStep{Episode: k, Step: step, Value: float64(v[0]), Distilled: rd, Sim: sr.Reward, Success: sr.Success})
			if sr.Terminal || sr.Truncated {
				break
			}
		}
		vs, ds, ss := column(ep, func(s CreditStep) float64 { return s.Value }), column(ep, func(s CreditStep) float64 { return s.Distilled }),
			column(ep, func(s CreditStep) float64 { return s.Sim })
		ce := CreditEpisode{Episode: k, Success: success, PearsonDistilled: pearson0(ds, vs), PearsonSim: pearson0(ss, vs)}
		res.Episodes = append(res.Episodes, ce)
		res.Steps = append(res.Steps, ep...)
		res.MeanPearsonDistilled += ce.PearsonDistilled / float64(cfg.Episodes)
		res.MeanPearsonSim += ce.PearsonSim / float64(cfg.Episodes)
	}
	for _, e := range res.Episodes {
		if e.Success {
			res.SuccessRate++
		}
	}
	res.SuccessRate /= float64(len(res.Episodes))
	vs := column(res.Steps, func(s CreditStep) float64 { return s.Value })
	res.PooledPearsonDistilled = pearson0(column(res.Steps, func(s CreditStep) float64 { return s.Distilled }), vs)
	res.PooledPearsonSim = pearson0(column(res.Steps, func(s CreditStep) float64 { return s.Sim }), vs)
	return res, nil
}

// pearson0 is reward.Pearson, 0 where it is undefined (a constant series), so that
// results stay valid JSON.
func pearson0(xs, ys []float64) float64 {
	if r := reward.Pearson(xs, ys); !math.IsNaN(r) {
		return r
	}
	return 0
}

func column(steps []CreditStep, f func(CreditStep) float64) []float64 {
	out := make([]float64, len(steps))
	for i, s := range steps {
		out[i] = f(s)
	}
	return out
}

// WriteCredit writes credit.json, credit.csv (every step) and credit.png (for the first
// episodes: V, the distilled and the simulator's reward along the trajectory, each
// standardised over the episode so their shapes compare) into dir.
func WriteCredit(dir, title string, res *CreditResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "credit.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "credit.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "episode,step,value,distilled,sim,success")
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', 7, 64) }
	for _, s := range res.Steps {
		fmt.Fprintf(w, "%d,%d,%s,%s,%s,%t\n", s.Episode, s.Step, num(s.Value), num(s.Distilled), num(s.Sim), s.Success)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var panels []*plot.Plot
	for k := 0; k < min(3, len(res.Episodes)); k++ {
		var ep []CreditStep
		for _, s := range res.Steps {
			if s.Episode == res.Episodes[k].Episode {
				ep = append(ep, s)
			}
		}
		p := plot.New()
		e := res.Episodes[k]
		p.Title.Text = fmt.Sprintf("episode %d (success %t): corr(distilled, V) %.2f, corr(simulator reward, V) %.2f", e.Episode, e.Success, e.PearsonDistilled, e.PearsonSim)
		if k == 0 && title != "" {
			p.Title.Text = title + "\n" + p.Title.Text
		}
		p.Y.Label.Text = "standardised"
		p.X.Label.Text = "step"
		var lines []any
		for _, c := range []struct {
			name string
			f    func(CreditStep) float64
		}{{"V (critic, true reward)", func(s CreditStep) float64 { return s.Value }},
			{"distilled reward", func(s CreditStep) float64 { return s.Distilled }},
			{"simulator reward", func(s CreditStep) float64 { return s.Sim }}} {
			xs := standardise(column(ep, c.f))
			pts := make(plotter.XYs, len(xs))
			for i, x := range xs {
				pts[i] = plotter.XY{X: float64(ep[i].Step), Y: x}
			}
			lines = append(lines, c.name, pts)
		}
		if err := plotutil.AddLines(p, lines...); err != nil {
			return err
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	return plots.SaveColumn(filepath.Join(dir, "credit.png"), panels...)
}

func standardise(xs []float64) []float64 {
	var mean, sq float64
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(sq / float64(len(xs)))
	out := make([]float64, len(xs))
	for i, x := range xs {
		if sd > 0 {
			out[i] = (x - mean) / sd
		}
	}
	return out
}
