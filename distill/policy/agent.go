package policy

import (
	"fmt"
	"math"
	"math/rand/v2"

	"robodistill/control/nn"
)

// SACConfig holds Soft Actor-Critic's hyperparameters (the network sizes and the update).
// The defaults are SB3's and CleanRL's (Haarnoja et al. 2018, "SAC: algorithms and
// applications").
type SACConfig struct {
	Hidden int     `json:"hidden"` // width of both hidden layers of actor and critics
	Batch  int     `json:"batch"`  // transitions per update
	Gamma  float64 `json:"gamma"`  // discount
	Tau    float64 `json:"tau"`    // Polyak factor of the target critics
	// Learning rates of the actor, the critics and log α.
	ActorLR  float64 `json:"actor_lr"`
	CriticLR float64 `json:"critic_lr"`
	AlphaLR  float64 `json:"alpha_lr"`
	// InitAlpha is the initial temperature α (log α is what is learnt).
	InitAlpha float64 `json:"init_alpha"`
	// TargetEntropy is the entropy the temperature steers toward; 0 means −|A|.
	TargetEntropy float64 `json:"target_entropy"`
	// LogStdMin and LogStdMax bound the actor's log standard deviation (smooth clamp).
	LogStdMin float64 `json:"log_std_min"`
	LogStdMax float64 `json:"log_std_max"`
	// ActorAverage, when positive, keeps a Polyak average of the actor's weights (this
	// factor per update, like Tau for the targets) and makes it the deterministic policy
	// that evaluations run and Export writes; exploration and the updates still use the
	// actor itself. 0 (the default) evaluates and exports the actor.
	ActorAverage float64 `json:"actor_average,omitempty"`
	// CriticNorm puts a LayerNorm after each hidden Linear of the critics and their targets
	// (before the ReLU), as RLPD (Ball et al. 2023, "Efficient online reinforcement learning
	// with offline data") does: it bounds how far Q can extrapolate beyond the data, which
	// keeps the critics from running away when half of every batch is demonstrations. The
	// actor, and so the exported policy, is unchanged.
	CriticNorm bool `json:"critic_norm,omitempty"`
}

// DefaultSAC is the standard configuration: two hidden layers of 256, batch 256, γ 0.99,
// τ 0.005, Adam at 3e-4 for everything, α starting at 1, target entropy −|A|, log σ in
// (−5, 2).
func DefaultSAC() SACConfig {
	return SACConfig{Hidden: 256, Batch: 256, Gamma: 0.99, Tau: 0.005, ActorLR: 3e-4, CriticLR: 3e-4,
		AlphaLR: 3e-4, InitAlpha: 1, LogStdMin: -5, LogStdMax: 2}
}

// Validate reports the first bad value, naming its key (under "sac.").
func (c SACConfig) Validate() error {
	switch {
	case c.Hidden < 1:
		return fmt.Errorf("sac.hidden: must be at least 1, got %d", c.Hidden)
	case c.Batch < 1:
		return fmt.Errorf("sac.batch: must be at least 1, got %d", c.Batch)
	case !(c.Gamma >= 0 && c.Gamma <= 1):
		return fmt.Errorf("sac.gamma: must be in [0, 1], got %g", c.Gamma)
	case !(c.Tau > 0 && c.Tau <= 1):
		return fmt.Errorf("sac.tau: must be in (0, 1], got %g", c.Tau)
	case !(c.ActorAverage >= 0 && c.ActorAverage <= 1):
		return fmt.Errorf("sac.actor_average: must be in [0, 1], got %g", c.ActorAverage)
	case !(c.ActorLR > 0) || math.IsInf(c.ActorLR, 0):
		return fmt.Errorf("sac.actor_lr: must be positive and finite, got %g", c.ActorLR)
	case !(c.CriticLR > 0) || math.IsInf(c.CriticLR, 0):
		return fmt.Errorf("sac.critic_lr: must be positive and finite, got %g", c.CriticLR)
	case !(c.AlphaLR > 0) || math.IsInf(c.AlphaLR, 0):
		return fmt.Errorf("sac.alpha_lr: must be positive and finite, got %g", c.AlphaLR)
	case !(c.InitAlpha > 0) || math.IsInf(c.InitAlpha, 0):
		return fmt.Errorf("sac.init_alpha: must be positive and finite, got %g", c.InitAlpha)
	case math.IsNaN(c.TargetEntropy) || math.IsInf(c.TargetEntropy, 0):
		return fmt.Errorf("sac.target_entropy: must be finite, got %g", c.TargetEntropy)
	case math.IsNaN(c.LogStdMin) || math.IsNaN(c.LogStdMax) || !(c.LogStdMin < c.LogStdMax) ||
		c.LogStdMin < -20 || c.LogStdMax > 5:
		return fmt.Errorf("sac.log_std_min, sac.log_std_max: want -20 <= min < max <= 5, got %g and %g", c.LogStdMin, c.LogStdMax)
	}
	return nil
}

// Agent is SAC's learner: the actor, twin critics with their targets, the temperature,
// their optimisers and the generator that draws exploration noise, random actions, batch
// indices and the reparameterisation noise. It is deterministic and single-threaded (no
// goroutines, no clock): the same seed and the same calls give the same weights bit for
// bit. It is not safe for concurrent use.
type Agent struct {
	cfg            SACConfig
	obsDim, actDim int

	actor    *nn.Sequential // obs → [means, raw log-stds]
	avg      *nn.Sequential // Polyak average of actor (SACConfig.ActorAverage), or nil
	q, qTarg [2]*nn.Sequential
	logAlpha *nn.Param

	actorOpt *nn.Adam
	qOpt     [2]*nn.Adam
	alphaOpt *nn.Adam

	pcg *rand.PCG
	rng *rand.Rand

	targetEntropy float64
	alpha         float64 // exp(log α) at the start of the current update
	updates       int

	// Scratch, sized for a batch, reused by every update.
	batch            Batch
	epsNext, eps     []float64
	st               []squashed
	obsT, nextT      nn.Tensor
	qin, qinNext     nn.Tensor // [obs, action] rows for the critics
	qinPi            nn.Tensor
	y                []float32 // critic targets
	dq               []float32
	dqT              nn.Tensor
	logp             []float64
	qPi              [2][]float32
	act              []float32 // sampled actions, [B·A]
	dA               []float64 // dJ/da for the actor loss, [B·A]
	dout             nn.Tensor
	actT             nn.Tensor // Act's input
	actShape, shapeB [2]int
}

// Stats describe one update.
type Stats struct {
	CriticLoss float64 `json:"critic_loss"` // MSE of critic 1 plus MSE of critic 2
	ActorLoss  float64 `json:"actor_loss"`  // mean of α·log π − min(Q1, Q2)
	Alpha      float64 `json:"alpha"`       // α used by this update
	Entropy    float64 `json:"entropy"`     // −mean log π of the actor's samples
	Q          float64 `json:"q"`           // mean min(Q1, Q2) of the actor's samples
}

// Streams of the agent's generators: one for the initial weights, one for everything
// drawn during training.
const (
	streamInit  = 0x7361632d696e6974 // "sac-init"
	streamTrain = 0x7361632d74726e20 // "sac-trn "
)

// NewAgent builds the networks for observations of obsDim values and actions of actDim,
// drawing the initial weights from seed (PyTorch's default initialisation; targets start
// equal to the critics).
func NewAgent(cfg SACConfig, obsDim, actDim int, seed uint64) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("policy.NewAgent: %w", err)
	}
	if obsDim < 1 || actDim < 1 {
		return nil, fmt.Errorf("policy.NewAgent: dimensions %d and %d, want at least 1", obsDim, actDim)
	}
	init := rand.New(rand.NewPCG(seed, streamInit))
	h := cfg.Hidden
	// mlp is Linear-ReLU-Linear-ReLU-Linear, with a LayerNorm before each ReLU when norm.
	mlp := func(in, out int, norm bool) *nn.Sequential {
		var layers []nn.Layer
		for _, from := range []int{in, h} {
			layers = append(layers, nn.NewLinear(from, h, init))
			if norm {
				layers = append(layers, nn.NewLayerNorm(h))
			}
			layers = append(layers, nn.NewReLU())
		}
		return nn.NewSequential(append(layers, nn.NewLinear(h, out, init))...)
	}
	ag := &Agent{cfg: cfg, obsDim: obsDim, actDim: actDim}
	ag.actor = mlp(obsDim, 2*actDim, false)
	for k := range ag.q {
		ag.q[k] = mlp(obsDim+actDim, 1, cfg.CriticNorm)
		ag.qTarg[k] = mlp(obsDim+actDim, 1, cfg.CriticNorm)
		nn.CopyParams(ag.qTarg[k].Params(), ag.q[k].Params())
	}
	if cfg.ActorAverage > 0 {
		// Built last: its draws from init, overwritten at once, leave every other
		// network's initial weights as they are without the average.
		ag.avg = mlp(obsDim, 2*actDim, false)
		nn.CopyParams(ag.avg.Params(), ag.actor.Params())
	}
	ag.logAlpha = &nn.Param{Name: "log_alpha", Shape: []int{1}, Value: []float32{float32(math.Log(cfg.InitAlpha))}, Grad: []float32{0}}
	ag.targetEntropy = cfg.TargetEntropy
	if ag.targetEntropy == 0 {
		ag.targetEntropy = -float64(actDim)
	}
	adam := func(p []*nn.Param, lr float64) *nn.Adam {
		c := nn.DefaultAdam()
		c.LR = lr
		opt, err := nn.NewAdam(p, c)
		if err != nil {
			panic(err) // lr is validated above
		}
		return opt
	}
	ag.actorOpt = adam(ag.actor.Params(), cfg.ActorLR)
	for k := range ag.q {
		ag.qOpt[k] = adam(ag.q[k].Params(), cfg.CriticLR)
	}
	ag.alphaOpt = adam([]*nn.Param{ag.logAlpha}, cfg.AlphaLR)
	ag.pcg = rand.NewPCG(seed, streamTrain)
	ag.rng = rand.New(ag.pcg)
	ag.alloc()
	return ag, nil
}

func (ag *Agent) alloc() {
	B, O, A := ag.cfg.Batch, ag.obsDim, ag.actDim
	ag.batch = newBatch(B, O, A)
	ag.epsNext = make([]float64, B*A)
	ag.eps = make([]float64, B*A)
	ag.st = make([]squashed, B*A)
	ag.shapeB = [2]int{B, O}
	ag.obsT = nn.Tensor{Shape: ag.shapeB[:], Data: ag.batch.Obs}
	ag.nextT = nn.Tensor{Shape: ag.shapeB[:], Data: ag.batch.Next}
	ag.qin = *nn.NewTensor(B, O+A)
	ag.qinNext = *nn.NewTensor(B, O+A)
	ag.qinPi = *nn.NewTensor(B, O+A)
	ag.y = make([]float32, B)
	ag.dqT = *nn.NewTensor(B, 1)
	ag.dq = ag.dqT.Data
	ag.logp = make([]float64, B)
	ag.qPi = [2][]float32{make([]float32, B), make([]float32, B)}
	ag.act = make([]float32, B*A)
	ag.dA = make([]float64, B*A)
	ag.dout = *nn.NewTensor(B, 2*A)
}

// Config returns the hyperparameters.
func (ag *Agent) Config() SACConfig { return ag.cfg }

// Dims returns the observation and action sizes.
func (ag *Agent) Dims() (obs, act int) { return ag.obsDim, ag.actDim }

// Updates is the number of updates done.
func (ag *Agent) Updates() int { return ag.updates }

// Alpha is the current temperature.
func (ag *Agent) Alpha() float64 { return math.Exp(float64(ag.logAlpha.Value[0])) }

// Actor is the actor network (obs → means then raw log-stds).
func (ag *Agent) Actor() *nn.Sequential { return ag.actor }

// policyNet is the network the deterministic policy comes from (Act with deterministic,
// DeterministicNet): the actor's average when SACConfig.ActorAverage is set, else the actor.
func (ag *Agent) policyNet() *nn.Sequential {
	if ag.avg != nil {
		return ag.avg
	}
	return ag.actor
}

// RandomActions fills act (n rows of actDim) uniformly in [−1, 1), the exploration before
// learning starts. The values are float32 so that what the replay buffer stores is exactly
// what the environment was given.
func (ag *Agent) RandomActions(act []float32) {
	for i := range act {
		act[i] = float32(2*ag.rng.Float64() - 1)
	}
}

// Act computes actions for n observations (rows of obsDim in obs) into act (rows of
// actDim): tanh(mean) when deterministic, else a sample of the squashed Gaussian with noise
// from the agent's generator, drawn in row order.
func (ag *Agent) Act(obs []float32, n int, deterministic bool, act []float32) {
	O, A := ag.obsDim, ag.actDim
	ag.actShape = [2]int{n, O}
	ag.actT = nn.Tensor{Shape: ag.actShape[:], Data: obs[:n*O]}
	net := ag.actor
	if deterministic {
		net = ag.policyNet()
	}
	out := net.Forward(&ag.actT)
	var eps [8]float64
	var st [8]squashed
	for i := 0; i < n; i++ {
		row := out.Data[i*2*A : (i+1)*2*A]
		dst := act[i*A : (i+1)*A]
		if deterministic {
			for j := range dst {
				dst[j] = float32(math.Tanh(float64(row[j])))
			}
			continue
		}
		e, s := eps[:], st[:]
		if A > len(eps) {
			e, s = make([]float64, A), make([]squashed, A)
		}
		for j := 0; j < A; j++ {
			e[j] = ag.rng.NormFloat64()
		}
		sampleRow(row, e[:A], ag.cfg.LogStdMin, ag.cfg.LogStdMax, dst, s[:A])
	}
}

// Update does one SAC update on a batch drawn from r (which must hold at least one
// transition): the critics toward r + γ(1 − terminal)(min target Q(s', a') − α log π(a'|s')),
// the actor toward max E[min Q(s, a) − α log π(a|s)], log α toward the target entropy,
// then the Polyak step of the targets. The order and the α used (the value before its own
// step) are SB3's.
func (ag *Agent) Update(r *Replay) Stats {
	B, A := ag.cfg.Batch, ag.actDim
	r.Sample(ag.rng, &ag.batch)
	for i := 0; i < B*A; i++ {
		ag.epsNext[i] = ag.rng.NormFloat64()
	}
	for i := 0; i < B*A; i++ {
		ag.eps[i] = ag.rng.NormFloat64()
	}
	ag.alpha = math.Exp(float64(ag.logAlpha.Value[0]))
	var s Stats
	s.Alpha = ag.alpha
	s.CriticLoss = ag.criticGrads()
	for k := range ag.q {
		ag.qOpt[k].Step()
	}
	var logpMean float64
	s.ActorLoss, logpMean, s.Q = ag.actorGrads()
	ag.actorOpt.Step()
	if ag.avg != nil {
		nn.Polyak(ag.avg.Params(), ag.actor.Params(), ag.cfg.ActorAverage)
	}
	ag.alphaGrad(logpMean)
	ag.alphaOpt.Step()
	for k := range ag.q {
		nn.Polyak(ag.qTarg[k].Params(), ag.q[k].Params(), ag.cfg.Tau)
	}
	s.Entropy = -logpMean
	ag.updates++
	return s
}

// fillQin writes [obs, act] rows into dst.
func fillQin(dst *nn.Tensor, obs []float32, act []float32, n, O, A int) {
	for i := 0; i < n; i++ {
		row := dst.Data[i*(O+A) : (i+1)*(O+A)]
		copy(row[:O], obs[i*O:(i+1)*O])
		copy(row[O:], act[i*A:(i+1)*A])
	}
}

// criticGrads clears the critics' gradients and writes those of the critic loss
// MSE(Q1(s, a), y) + MSE(Q2(s, a), y) into them, with the target y computed from the
// batch, epsNext and α (no gradient). It returns the loss.
func (ag *Agent) criticGrads() float64 {
	B, O, A := ag.cfg.Batch, ag.obsDim, ag.actDim
	b := &ag.batch
	// a' ~ π(·|s'), log π(a'|s').
	out := ag.actor.Forward(&ag.nextT)
	act := ag.act
	for i := 0; i < B; i++ {
		ag.logp[i] = sampleRow(out.Data[i*2*A:(i+1)*2*A], ag.epsNext[i*A:(i+1)*A], ag.cfg.LogStdMin, ag.cfg.LogStdMax,
			act[i*A:(i+1)*A], ag.st[i*A:(i+1)*A])
	}
	fillQin(&ag.qinNext, b.Next, act, B, O, A)
	q1 := ag.qTarg[0].Forward(&ag.qinNext)
	for i := 0; i < B; i++ {
		ag.y[i] = q1.Data[i]
	}
	q2 := ag.qTarg[1].Forward(&ag.qinNext)
	for i := 0; i < B; i++ {
		v := math.Min(float64(ag.y[i]), float64(q2.Data[i])) - ag.alpha*ag.logp[i]
		ag.y[i] = float32(float64(b.Rew[i]) + ag.cfg.Gamma*(1-float64(b.Done[i]))*v)
	}
	fillQin(&ag.qin, b.Obs, b.Act, B, O, A)
	var loss float64
	for k := range ag.q {
		ag.q[k].ZeroGrad()
		q := ag.q[k].Forward(&ag.qin)
		loss += nn.MSE(q.Data[:B], ag.y, ag.dq)
		ag.q[k].Backward(&ag.dqT, false)
	}
	return loss
}

// actorGrads clears the actor's gradients and writes those of the actor loss
// mean(α·log π(a|s) − min(Q1(s, a), Q2(s, a))), a = tanh(μ + σ·eps), into them. dQ/da
// comes from the critics' input gradients (their parameter gradients are left dirty; the
// next criticGrads clears them). It returns the loss, the mean log π and the mean min Q.
func (ag *Agent) actorGrads() (loss, logpMean, qMean float64) {
	B, O, A := ag.cfg.Batch, ag.obsDim, ag.actDim
	b := &ag.batch
	ag.actor.ZeroGrad()
	out := ag.actor.Forward(&ag.obsT)
	act := ag.act
	for i := 0; i < B; i++ {
		ag.logp[i] = sampleRow(out.Data[i*2*A:(i+1)*2*A], ag.eps[i*A:(i+1)*A], ag.cfg.LogStdMin, ag.cfg.LogStdMax,
			act[i*A:(i+1)*A], ag.st[i*A:(i+1)*A])
	}
	fillQin(&ag.qinPi, b.Obs, act, B, O, A)
	for k := range ag.q {
		q := ag.q[k].Forward(&ag.qinPi)
		copy(ag.qPi[k], q.Data[:B])
	}
	// d/dQ of −min(Q1, Q2)/B goes to the smaller critic of each sample (the first on ties).
	clear(ag.dA)
	invB := 1 / float64(B)
	for k := range ag.q {
		for i := 0; i < B; i++ {
			mine := ag.qPi[0][i] <= ag.qPi[1][i]
			if k == 1 {
				mine = !mine
			}
			ag.dq[i] = 0
			if mine {
				ag.dq[i] = float32(-invB)
			}
		}
		// Each critic still holds the activations of its Forward on qinPi.
		dx := ag.q[k].Backward(&ag.dqT, true)
		for i := 0; i < B; i++ {
			row := dx.Data[i*(O+A)+O : (i+1)*(O+A)]
			for j, g := range row {
				ag.dA[i*A+j] += float64(g)
			}
		}
	}
	for i := 0; i < B; i++ {
		qmin := math.Min(float64(ag.qPi[0][i]), float64(ag.qPi[1][i]))
		loss += ag.alpha*ag.logp[i] - qmin
		logpMean += ag.logp[i]
		qMean += qmin
	}
	loss *= invB
	logpMean *= invB
	qMean *= invB
	for i := 0; i < B; i++ {
		backRow(ag.st[i*A:(i+1)*A], ag.dA[i*A:(i+1)*A], ag.alpha*invB, ag.dout.Data[i*2*A:(i+1)*2*A])
	}
	ag.actor.Backward(&ag.dout, false)
	return loss, logpMean, qMean
}

// alphaGrad writes the gradient of the temperature loss −log α·(mean log π + target
// entropy) (SB3's form, in log α; the log π are constants here) into log α's gradient.
func (ag *Agent) alphaGrad(logpMean float64) {
	ag.logAlpha.Grad[0] = float32(-(logpMean + ag.targetEntropy))
}

// alphaLoss is the temperature loss at the current log α, for tests.
func (ag *Agent) alphaLoss(logpMean float64) float64 {
	return -float64(ag.logAlpha.Value[0]) * (logpMean + ag.targetEntropy)
}
