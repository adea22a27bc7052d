package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"robodistill/distill/reward"
	"robodistill/sim/metaworld"
)

// ProbeConfig configures ProbeReach. Zero fields take the defaults in brackets.
type ProbeConfig struct {
	Goals int    `json:"goals"` // reach episodes (goals) probed [12]
	Seed  uint64 `json:"seed"`  // episode i uses seed Seed+i [1000, away from training's]
	// Offsets are the grid's steps along each axis around the goal, in metres [−0.12,
	// −0.06, −0.03, 0, 0.03, 0.06, 0.12 on every axis: 19 points within reach's 5 cm
	// success radius, so that the reward's preferred region inside it can be seen].
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
		c.OffsetsXY = []float64{-0.12, -0.06, -0.03, 0, 0.03, 0.06, 0.12}
	}
	if c.OffsetsZ == nil {
		c.OffsetsZ = []float64{-0.12, -0.06, -0.03, 0, 0.03, 0.06, 0.12}
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
	Peak
}

// Peak is where a reward's preferred region lies. Reach's own reward is flat within the
// 5 cm success radius, so its single best point can be anywhere in the ball and says
// little; the region does. The region is the reward's Points best grid points, as many
// as the grid has within 5 cm of the goal.
type Peak struct {
	Points int `json:"peak_points"`
	// Precision is the share of the region that lies within 5 cm (1: the reward prefers
	// exactly the success ball).
	Precision float64 `json:"peak_precision"`
	// Offset is the region's mean hand − goal (m), and Sight its component along the
	// camera's line of sight through the goal: positive beyond the goal as the camera sees
	// it, negative in front of it. Along that line a single camera sees the hand and the
	// marker in nearly the same place, so this is where a one-camera reward is least sure.
	Offset [3]float64 `json:"peak_offset"`
	Sight  float64    `json:"peak_sight"`
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
	NearPairAcc float64 `json:"near_pair_acc"`
	// PeakPrecision, PeakOffset and PeakSight are the means over goals of Peak's fields;
	// PeakDist is the mean length of the goals' offsets.
	PeakPrecision float64     `json:"peak_precision"`
	PeakOffset    [3]float64  `json:"peak_offset"`
	PeakDist      float64     `json:"peak_dist"`
	PeakSight     float64     `json:"peak_sight"`
	PerGoal       []GoalProbe `json:"per_goal"`
}

// ProbeReach asks where a reward peaks around reach's goal: for each of cfg.Goals
// episodes it drives the hand (a proportional controller, as the scripted policy) to
// every point of a grid centred on the goal, renders the camera there and scores the
// frame with r (which also gets the simulator's reward there, so that GroundTruth is the
// reference). A reward a policy can learn reach from puts its best point within the
// 5 cm success radius, orders the points near the goal by their distance and prefers the
// ball itself to the points around it (Peak).
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
	cam, err := env.Camera(cfg.Camera)
	if err != nil {
		return nil, err
	}
	n := cfg.FrameSize
	frame := make([]byte, n*n*3)
	off := make([]metaworld.Vec3, len(offs))
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
				if err := env.RenderID(cam, n, n, frame); err != nil {
					return nil, err
				}
			}
			rew[i] = r.Reward(0, nil, frame, n, n, sim)
			off[i] = env.TCP().Sub(goal)
			dist[i] = off[i].Norm()
		}
		sight := goal.Sub(metaworld.Vec3(env.Data().CamXPos(cam)))
		sight = sight.Scale(1 / sight.Norm())
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
		gp.Peak = peakRegion(dist, rew, off, sight)
		right += gp.NearRight
		all += gp.NearPairs
		res.PerGoal = append(res.PerGoal, gp)
		res.ArgmaxDist += gp.ArgmaxDist / float64(cfg.Goals)
		if gp.ArgmaxDist <= 0.05 {
			res.ArgmaxSuccess += 1 / float64(cfg.Goals)
		}
		res.Spearman += gp.Spearman / float64(cfg.Goals)
		w := 1 / float64(cfg.Goals)
		res.PeakPrecision += w * gp.Precision
		res.PeakDist += w * metaworld.Vec3(gp.Offset).Norm()
		res.PeakSight += w * gp.Sight
		for k := range 3 {
			res.PeakOffset[k] += w * gp.Offset[k]
		}
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

// peakRegion is Peak over one goal's grid: the distance of each point from the goal, the
// reward there, the hand − goal offset, and the camera's unit line of sight.
func peakRegion(dist, rew []float64, off []metaworld.Vec3, sight metaworld.Vec3) Peak {
	var p Peak
	for _, d := range dist {
		if d <= 0.05 {
			p.Points++
		}
	}
	if p.Points == 0 {
		return p
	}
	order := make([]int, len(rew))
	for i := range order {
		order[i] = i
	}
	// Best first; ties (a flat reward) keep the grid's order, so equal rewards count as
	// the grid gives them, not as a sort happens to leave them.
	sort.SliceStable(order, func(a, b int) bool { return rew[order[a]] > rew[order[b]] })
	var c metaworld.Vec3
	for _, i := range order[:p.Points] {
		if dist[i] <= 0.05 {
			p.Precision++
		}
		c = c.Add(off[i])
	}
	c = c.Scale(1 / float64(p.Points))
	p.Precision /= float64(p.Points)
	p.Offset = [3]float64(c)
	p.Sight = c.Dot(sight)
	return p
}
