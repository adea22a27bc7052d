package policy

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"robodistill/control/episode"
	"robodistill/distill/reward"
)

// DemoStats describes the demonstrations a run was given (Config.Demos).
type DemoStats struct {
	Dir         string  `json:"dir"`
	Episodes    int     `json:"episodes"`
	Transitions int     `json:"transitions"`
	Successes   int     `json:"successes"`   // episodes solved at some step
	Return      float64 `json:"return"`      // mean simulator return per episode
	UsedReturn  float64 `json:"used_return"` // mean return of the reward trained on
}

// CountDemos returns the number of transitions the collection in dir gives (each episode
// of n recorded steps gives n−1), for sizing the replay buffer before Train.
func CountDemos(dir string, maxEpisodes int) (int, error) {
	c, err := episode.OpenCollection(dir)
	if err != nil {
		return 0, fmt.Errorf("demos: %w", err)
	}
	defer c.Close()
	n := 0
	for k, e := range c.Entries() {
		if maxEpisodes > 0 && k >= maxEpisodes {
			break
		}
		n += max(e.Steps-1, 0)
	}
	return n, nil
}

// prefill puts the demonstrations of cfg.Demos into the replay buffer before the first
// step, scoring each with the run's reward exactly as the training environments' steps are
// (the frame after the action, the count term per episode), and pins them there.
// Episodes are read one at a time, so a collection larger than memory is fine.
func (t *trainer) prefill(ctx context.Context) error {
	cfg := t.cfg
	c, err := episode.OpenCollection(cfg.Demos)
	if err != nil {
		return fmt.Errorf("demos: %w", err)
	}
	defer c.Close()
	var counter *reward.Counter
	if ct := countTerm(cfg.Reward); ct != nil && !cfg.NoCount {
		if counter, err = reward.NewCounter(*ct); err != nil {
			return err
		}
	}
	O, A := t.spec.ObsDim, t.spec.ActDim
	obs, next := make([]float32, O), make([]float32, O)
	act := make([]float32, A)
	st := DemoStats{Dir: cfg.Demos}
	for k, e := range c.Entries() {
		if cfg.DemoEpisodes > 0 && k >= cfg.DemoEpisodes {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.replay.Len()+e.Steps-1 >= t.replay.Cap() {
			return fmt.Errorf("demos: the replay buffer (%d transitions) cannot hold %s's episodes and the run's own steps: raise the buffer", t.replay.Cap(), cfg.Demos)
		}
		ret, used, ok, err := t.prefillEpisode(c, e, counter, obs, act, next)
		if err != nil {
			return fmt.Errorf("demos %s, episode %d (%s): %w", cfg.Demos, e.Episode, e.File, err)
		}
		st.Episodes++
		st.Transitions += e.Steps - 1
		st.Return += ret
		st.UsedReturn += used
		if ok {
			st.Successes++
		}
	}
	if st.Episodes == 0 || st.Transitions == 0 {
		return fmt.Errorf("demos: %s holds no transitions", cfg.Demos)
	}
	st.Return /= float64(st.Episodes)
	st.UsedReturn /= float64(st.Episodes)
	if err := rewardErr(cfg.Reward); err != nil {
		return fmt.Errorf("demos: %w", err)
	}
	t.replay.Pin(cfg.DemoRatio)
	t.st.Demos = &st
	cfg.Log.Info("demonstrations in the replay buffer", zap.String("dir", st.Dir), zap.Int("episodes", st.Episodes),
		zap.Int("transitions", st.Transitions), zap.Int("successes", st.Successes),
		zap.Float64("return", st.Return), zap.Float64("used_return", st.UsedReturn), zap.Float64("ratio", cfg.DemoRatio))
	return nil
}

// prefillEpisode adds one recorded episode's transitions: step i's observation and the
// command that followed it, then step i+1's observation, frame and simulator reward.
func (t *trainer) prefillEpisode(c *episode.Collection, e episode.Entry, counter *reward.Counter,
	obs, act, next []float32) (ret, used float64, success bool, err error) {
	cfg := t.cfg
	ep, err := c.Episode(e.Episode)
	if err != nil {
		return 0, 0, false, err
	}
	defer ep.Close()
	if m := ep.Meta; m != nil {
		if err := t.checkDemoMeta(m); err != nil {
			return 0, 0, false, err
		}
	}
	if counter != nil {
		counter.Reset()
	}
	O := t.spec.ObsDim
	nextF := make([]float64, O)
	n := cfg.FrameSize
	frames := cfg.Reward.NeedsFrame()
	for i := 0; i < ep.Len(); i++ {
		s, err := ep.Step(i)
		if err != nil {
			return 0, 0, false, err
		}
		if len(s.Obs) != O {
			return 0, 0, false, fmt.Errorf("step %d: observation of %d values, want %d (a simulator recording)", i, len(s.Obs), O)
		}
		if i > 0 {
			if s.Status == nil {
				return 0, 0, false, fmt.Errorf("step %d: no episode status (simulator reward)", i)
			}
			for j, v := range s.Obs {
				next[j], nextF[j] = float32(v), v
			}
			var rgb []byte
			if frames {
				if s.Frame.Width != n || s.Frame.Height != n {
					return 0, 0, false, fmt.Errorf("step %d: frame is %d×%d, the reward takes %d×%d (--frame-size)", i, s.Frame.Width, s.Frame.Height, n, n)
				}
				rgb = s.Frame.RGB()
			}
			r := cfg.Reward.Reward(0, nextF, rgb, n, n, s.Status.Reward)
			slot := t.replay.Pos()
			if t.learner != nil {
				t.learner.Keep(0, slot)
			}
			div := 1.0
			if counter != nil {
				div = counter.Divisor(nextF)
				r /= div
			}
			t.replay.Add(obs, act, float32(r), next, false)
			if counter != nil {
				t.replay.SetDivisor(slot, float32(div))
			}
			ret += s.Status.Reward
			used += r
			success = success || s.Status.Success
		}
		if i < ep.Len()-1 {
			if s.Command == nil {
				return 0, 0, false, fmt.Errorf("step %d: no command follows the frame", i)
			}
			for j := range act {
				act[j] = float32(s.Command.Action[j])
			}
		}
		for j, v := range s.Obs {
			obs[j] = float32(v)
		}
	}
	return ret, used, success, nil
}

// checkDemoMeta refuses a recording made under other conditions than the run's: another
// task, control rate (the same action moves the hand another distance), camera or frame
// size.
func (t *trainer) checkDemoMeta(m *episode.Meta) error {
	cfg := t.cfg
	switch {
	case cfg.NewEnv == nil && m.Task != "" && m.Task != cfg.Task:
		return fmt.Errorf("recorded on task %q, training on %q", m.Task, cfg.Task)
	case m.Rate != 0 && m.Rate != cfg.Rate:
		return fmt.Errorf("recorded at %d Hz, training at %d Hz (--rate)", m.Rate, cfg.Rate)
	case cfg.Reward.NeedsFrame() && m.Camera != "" && m.Camera != cfg.Camera:
		return fmt.Errorf("recorded from camera %q, the reward is rendered from %q (--camera)", m.Camera, cfg.Camera)
	}
	return nil
}

// rewardErr is the reward's remembered failure, if it keeps one (a frame the model could
// not take).
func rewardErr(r Reward) error {
	if e, ok := r.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}
