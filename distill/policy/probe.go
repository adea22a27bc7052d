package policy

import (
	"context"
	"errors"
	"fmt"
	"math"

	"robodistill/distill/reward"
	"robodistill/sim/metaworld"
)

// ProbeConfig configures ProbeReach. Zero fields take the defaults in brackets.
type ProbeConfig struct {
	Goals int    `json:"goals"` // reach episodes (goals) probed [12]
	Seed  uint64 `json:"seed"`  // episode i uses seed Seed+i [1000, away from training's]
	// Offsets are the grid's steps along each axis around the goal, in metres
	// [−0.15, −0.075, 0, 0.075, 0.15 in x and y; −0.1, −0.05, 0, 0.05, 0.1 in z].
	OffsetsXY []float64 `json:"offsets_xy"`
	OffsetsZ  []float64 `json:"offsets_z"`
	// Settle is how many control steps the hand is driven toward each point [80].
	Settle    int               `json:"settle"`
	Camera    string            `json:"camera"`     // [corner]
	FrameSize int               `json:"frame_size"` // [64]
	Env       metaworld.Options `json:"-"`
}

func (c *ProbeConfig) defaults() {
	if c.Goals == 0 {
		c.Goals = 12
	}
	if c.Seed == 0 {
		c.Seed = 1000
	}
	if c.OffsetsXY == nil {
		c.OffsetsXY = []float64{-0.15, -0.075, 0, 0.075, 0.15}
	}
	if c.OffsetsZ == nil {
		c.OffsetsZ = []float64{-0.1, -0.05, 0, 0.05, 0.1}
	}
	if c.Settle == 0 {
		c.Settle = 80
	}
	if c.Camera == "" {
		c.Camera = "corner"
	}
	if c.FrameSize == 0 {
		c.FrameSize = 64
	}
}

// GoalProbe is one goal's result.
type GoalProbe struct {
	Seed uint64     `json:"seed"`
	Goal [3]float64 `json:"goal"`
	// ArgmaxDist is how far from the goal the hand was at the point the reward liked best.
	ArgmaxDist float64 `json:"argmax_dist"`
	// Spearman is the rank correlation of the reward with −(distance to the goal) over
	// the grid.
	Spearman float64 `json:"spearman"`
	// NearPairs are the pairs of grid points both within 10 cm of the goal, not both
	// within 5 cm, whose distances differ by more than 2 cm; NearRight those the reward
	// orders correctly.
	NearPairs int `json:"near_pairs"`
	NearRight int `json:"near_right"`
}

// ProbeResult is ProbeReach's summary: what a perfect optimiser of the reward would do
// on reach.
type ProbeResult struct {
	Task   string `json:"task"`
	Reward string `json:"reward"`
	Points int    `json:"points_per_goal"`
	// ArgmaxDist is the mean over goals of GoalProbe.ArgmaxDist; ArgmaxSuccess the share
	// of goals where that point is within reach's 5 cm success radius.
	ArgmaxDist    float64 `json:"argmax_dist"`
	ArgmaxSuccess float64 `json:"argmax_success"`
	Spearman      float64 `json:"spearman"`
	// NearPairAcc is the share of every goal's near pairs ordered correctly.
	NearPairAcc float64     `json:"near_pair_acc"`
	PerGoal     []GoalProbe `json:"per_goal"`
}

// ProbeReach asks where a reward peaks around reach's goal: for each of cfg.Goals
// episodes it drives the hand (a proportional controller, as the scripted policy) to
// every point of a grid centred on the goal, renders the camera there and scores the
// frame with r (which also gets the simulator's reward there, so that GroundTruth is the
// reference). A reward a policy can learn reach from puts its best point within the
// 5 cm success radius and orders the points near the goal by their distance.
func ProbeReach(ctx context.Context, r Reward, name string, cfg ProbeConfig) (*ProbeResult, error) {
	cfg.defaults()
	task, err := metaworld.Lookup("reach")
	if err != nil {
		return nil, err
	}
	env, err := metaworld.New(task, cfg.Env)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	var offs []metaworld.Vec3
	for _, x := range cfg.OffsetsXY {
		for _, y := range cfg.OffsetsXY {
			for _, z := range cfg.OffsetsZ {
				offs = append(offs, metaworld.Vec3{x, y, z})
			}
		}
	}
	if len(offs) < 2 {
		return nil, errors.New("policy.ProbeReach: the grid needs at least two points")
	}
	n := cfg.FrameSize
	frame := make([]byte, n*n*3)
	res := &ProbeResult{Task: "reach", Reward: name, Points: len(offs)}
	dist, rew := make([]float64, len(offs)), make([]float64, len(offs))
	right, all := 0, 0
	for g := range cfg.Goals {
		seed := cfg.Seed + uint64(g)
		var goal metaworld.Vec3
		for i, o := range offs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, err := env.Reset(seed); err != nil {
				return nil, err
			}
			goal = env.Target
			to := goal.Add(o)
			sim := 0.0
			for range cfg.Settle {
				d := to.Sub(env.TCP()).Scale(10)
				a := metaworld.Action{max(-1, min(1, d[0])), max(-1, min(1, d[1])), max(-1, min(1, d[2])), 0}
				if _, sim, _, _, err = env.Step(a); err != nil {
					return nil, err
				}
			}
			if r.NeedsFrame() {
				if err := env.Render(cfg.Camera, n, n, frame); err != nil {
					return nil, err
				}
			}
			rew[i] = r.Reward(0, nil, frame, n, n, sim)
			dist[i] = env.TCP().Dist(goal)
		}
		if f, ok := r.(interface{ Err() error }); ok {
			if err := f.Err(); err != nil {
				return nil, fmt.Errorf("policy.ProbeReach: %w", err)
			}
		}
		best := 0
		for i := range rew {
			if rew[i] > rew[best] {
				best = i
			}
		}
		negDist := make([]float64, len(dist))
		for i, d := range dist {
			negDist[i] = -d
		}
		gp := GoalProbe{Seed: seed, Goal: goal, ArgmaxDist: dist[best], Spearman: reward.Spearman(rew, negDist)}
		if math.IsNaN(gp.Spearman) {
			gp.Spearman = 0 // a reward constant over the grid orders nothing
		}
		gp.NearRight, gp.NearPairs = nearPairs(dist, rew)
		right += gp.NearRight
		all += gp.NearPairs
		res.PerGoal = append(res.PerGoal, gp)
		res.ArgmaxDist += gp.ArgmaxDist / float64(cfg.Goals)
		if gp.ArgmaxDist <= 0.05 {
			res.ArgmaxSuccess += 1 / float64(cfg.Goals)
		}
		res.Spearman += gp.Spearman / float64(cfg.Goals)
	}
	if all > 0 {
		res.NearPairAcc = float64(right) / float64(all)
	}
	return res, nil
}

// nearPairs counts the pairs of points within 10 cm of the goal whose distances differ by
// more than 2 cm, leaving out pairs that both succeed (within 5 cm: reach's reward is
// flat there), and those the reward orders correctly.
func nearPairs(dist, rew []float64) (right, all int) {
	for i := range dist {
		for j := range dist {
			if dist[j] < 0.1 && dist[i] < dist[j]-0.02 && dist[j] > 0.05 {
				all++
				if rew[i] > rew[j] {
					right++
				}
			}
		}
	}
	return right, all
}
