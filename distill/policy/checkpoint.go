package policy

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"robodistill/control/nn"
)

// ErrCheckpoint is wrapped by errors about a checkpoint that cannot be used.
var ErrCheckpoint = errors.New("unusable checkpoint")

// A checkpoint is one file, CheckpointFile in the checkpoint folder:
//
//	checkpointMagic | header length uint32 LE | header (state as JSON)
//	parameter files (nn.WriteParams): actor, critic 1, critic 2, target 1, target 2, log α
//	Adam states (nn.Adam.WriteState): actor, critic 1, critic 2, log α
//	the replay buffer's filled part as one parameter file (obs, act, next, rew, done)
//
// Each parameter file carries its own CRC-32. The environments' simulator state is not
// stored: the header holds each environment's episode seed and the actions taken so far,
// and resuming replays them (and checks that the observation comes out bit for bit).
const (
	checkpointMagic = "RDSAC01\n"
	// CheckpointFile is the checkpoint's name inside Config.Checkpoint.
	CheckpointFile = "sac.ckpt"
)

// fingerprint names what a run learns and how; a checkpoint of another run is refused.
func fingerprint(cfg Config, sp Spec) string {
	j, _ := json.Marshal(struct {
		Config  Config `json:"config"`
		Spec    Spec   `json:"spec"`
		Reward  string `json:"reward"`
		Labeler string `json:"labeler"`
		Online  any    `json:"online,omitempty"`
	}{cfg, sp, cfg.Reward.Name(), cfg.Reward.Labeler(), settings(cfg.Reward)})
	h := sha256.Sum256(j)
	return hex.EncodeToString(h[:])
}

// stateful is a Reward whose state a checkpoint holds (after the replay buffer): the
// online reward's networks, labels and frames.
type stateful interface {
	writeState(w io.Writer, replaySize int) error
	readState(r *bufio.Reader, replaySize int) error
}

// settings are a Reward's settings that a checkpoint's fingerprint covers.
func settings(r Reward) any {
	if s, ok := r.(interface{ Settings() any }); ok {
		return s.Settings()
	}
	return nil
}

func (ag *Agent) nets() []*nn.Sequential {
	nets := []*nn.Sequential{ag.actor, ag.q[0], ag.q[1], ag.qTarg[0], ag.qTarg[1]}
	if ag.avg != nil {
		nets = append(nets, ag.avg)
	}
	return nets
}

func (ag *Agent) opts() []*nn.Adam {
	return []*nn.Adam{ag.actorOpt, ag.qOpt[0], ag.qOpt[1], ag.alphaOpt}
}

func (ag *Agent) writeTo(w io.Writer) error {
	for _, n := range ag.nets() {
		if err := nn.WriteParams(w, n.Params()); err != nil {
			return err
		}
	}
	if err := nn.WriteParams(w, []*nn.Param{ag.logAlpha}); err != nil {
		return err
	}
	for _, o := range ag.opts() {
		if err := o.WriteState(w); err != nil {
			return err
		}
	}
	return nil
}

// readFrom restores what writeTo wrote. r must be a *bufio.Reader so that the readers of
// the consecutive parameter files share its buffer.
func (ag *Agent) readFrom(r *bufio.Reader) error {
	for i, n := range ag.nets() {
		if err := nn.ReadParams(r, n.Params()); err != nil {
			return fmt.Errorf("network %d: %w", i, err)
		}
	}
	if err := nn.ReadParams(r, []*nn.Param{ag.logAlpha}); err != nil {
		return fmt.Errorf("log alpha: %w", err)
	}
	for i, o := range ag.opts() {
		if err := o.ReadState(r); err != nil {
			return fmt.Errorf("optimiser %d: %w", i, err)
		}
	}
	return nil
}

// tensors are the buffer's filled part as named tensors for the parameter-file format.
func (r *Replay) tensors(n int) []*nn.Param {
	O, A := r.obsDim, r.actDim
	ps := []*nn.Param{
		{Name: "obs", Shape: []int{n, O}, Value: r.obs[:n*O]},
		{Name: "act", Shape: []int{n, A}, Value: r.act[:n*A]},
		{Name: "next", Shape: []int{n, O}, Value: r.next[:n*O]},
		{Name: "rew", Shape: []int{n}, Value: r.rew[:n]},
		{Name: "done", Shape: []int{n}, Value: r.done[:n]},
	}
	if r.div != nil {
		ps = append(ps, &nn.Param{Name: "div", Shape: []int{n}, Value: r.div[:n]})
	}
	return ps
}

// save writes the checkpoint to a temporary file and renames it into place, so a crash
// leaves the previous one.
func (t *trainer) save() error {
	dir := t.cfg.Checkpoint
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	pcg, err := t.agent.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	st := t.st
	st.PCG = pcg
	st.Updates = t.agent.updates
	st.Slots = make([]slotState, len(t.slots))
	for i, s := range t.slots {
		st.Slots[i] = s.st
	}
	st.ReplaySize, st.ReplayPos, st.ReplayPinned = t.replay.size, t.replay.pos, t.replay.pinned
	head, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("checkpoint: header: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+CheckpointFile+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(checkpointMagic)
	binary.Write(w, binary.LittleEndian, uint32(len(head)))
	w.Write(head)
	err = t.agent.writeTo(w)
	if err == nil {
		err = nn.WriteParams(w, t.replay.tensors(t.replay.size))
	}
	if s, ok := t.cfg.Reward.(stateful); ok && err == nil {
		err = s.writeState(w, t.replay.size)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, CheckpointFile))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// restore loads the checkpoint when there is one and rebuilds every environment's episode.
// A checkpoint of another run or a damaged one is an error; removing it is the caller's
// decision.
func (t *trainer) restore() (bool, error) {
	if t.cfg.Checkpoint == "" {
		return false, nil
	}
	path := filepath.Join(t.cfg.Checkpoint, CheckpointFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", path, ErrCheckpoint, fmt.Sprintf(why, args...))
	}
	r := bufio.NewReader(f)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return false, bad("not a policy-training checkpoint")
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<28 {
		return false, bad("bad header length")
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(r, head); err != nil {
		return false, bad("truncated header")
	}
	var st state
	if err := json.Unmarshal(head, &st); err != nil {
		return false, bad("header: %v", err)
	}
	if st.Fingerprint != t.st.Fingerprint {
		return false, bad("it belongs to a run with other settings (task, seed, envs, buffer, reward or hyperparameters); remove %s to start over", t.cfg.Checkpoint)
	}
	sp := t.spec
	switch {
	case len(st.Slots) != len(t.slots):
		return false, bad("%d environments, want %d", len(st.Slots), len(t.slots))
	case st.ReplaySize < 0 || st.ReplaySize > t.replay.cap || st.ReplayPos < 0 || st.ReplayPos >= t.replay.cap:
		return false, bad("replay size %d and position %d do not fit capacity %d", st.ReplaySize, st.ReplayPos, t.replay.cap)
	case st.ReplayPinned < 0 || st.ReplayPinned > st.ReplaySize || (st.ReplaySize == t.replay.cap && st.ReplayPos < st.ReplayPinned):
		return false, bad("%d pinned demonstration transitions do not fit replay size %d at position %d", st.ReplayPinned, st.ReplaySize, st.ReplayPos)
	case st.Step < 0 || st.Updates < 0 || math.IsNaN(st.UpdatesDue):
		return false, bad("step %d, updates %d", st.Step, st.Updates)
	}
	for i, ss := range st.Slots {
		if len(ss.Obs) != sp.ObsDim || len(ss.Actions)%sp.ActDim != 0 || len(ss.Actions)/sp.ActDim >= sp.MaxSteps || ss.Episode < 0 {
			return false, bad("environment %d: observation of %d values, %d action values, episode %d", i, len(ss.Obs), len(ss.Actions), ss.Episode)
		}
	}
	if err := t.agent.readFrom(r); err != nil {
		return false, bad("%v", err)
	}
	if err := nn.ReadParams(r, t.replay.tensors(st.ReplaySize)); err != nil {
		return false, bad("replay: %v", err)
	}
	if s, ok := t.cfg.Reward.(stateful); ok {
		if err := s.readState(r, st.ReplaySize); err != nil {
			return false, bad("online reward: %v", err)
		}
	}
	if err := t.agent.pcg.UnmarshalBinary(st.PCG); err != nil {
		return false, bad("generator: %v", err)
	}
	t.agent.updates = st.Updates
	t.replay.size, t.replay.pos = st.ReplaySize, st.ReplayPos
	t.replay.pinned, t.replay.ratio = st.ReplayPinned, t.cfg.DemoRatio
	for i, s := range t.slots {
		s.st = st.Slots[i]
		s.seed = trainSeed(t.cfg.Seed, i, s.st.Episode)
	}
	st.PCG, st.Slots = nil, nil
	t.st = st
	if err := t.dispatch(len(t.slots), slotRebuild); err != nil {
		return false, bad("%v", err)
	}
	return true, nil
}

func slotRebuild(s *slot) func() error { return s.rebuild }

// rebuild resets the slot's environment to its episode's seed and replays the actions
// taken so far; the observation must come out exactly as saved.
func (s *slot) rebuild() error {
	A := len(s.act)
	obs := s.next
	if s.counter != nil {
		s.counter.Reset()
	}
	if err := s.env.Reset(s.seed, obs); err != nil {
		return err
	}
	steps := len(s.st.Actions) / A
	for k := 0; k < steps; k++ {
		for j := range s.act {
			s.act[j] = float64(s.st.Actions[k*A+j])
		}
		res, err := s.env.Step(s.act, obs)
		if err != nil {
			return err
		}
		if s.counter != nil {
			s.counter.Visit(obs)
		}
		if res.Terminal || res.Truncated {
			return fmt.Errorf("episode %d ended after %d of its %d recorded steps", s.st.Episode, k+1, steps)
		}
	}
	for j, v := range obs {
		if math.Float64bits(v) != math.Float64bits(s.st.Obs[j]) {
			return fmt.Errorf("replaying episode %d (%d steps) gives observation[%d] = %v, the checkpoint has %v: the environment is not deterministic",
				s.st.Episode, steps, j, v, s.st.Obs[j])
		}
	}
	return nil
}
