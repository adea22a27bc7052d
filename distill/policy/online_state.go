package policy

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/distill/reward"
)

// onlineState is the online reward's checkpoint header; the networks (nn parameter
// files), the buffer's frames and the labelled frames (CRC-checked byte blocks) follow.
type onlineState struct {
	Norms  []onnxio.RewardNorm `json:"norms"`
	Train  []reward.Pair       `json:"train"`
	Val    []reward.Pair       `json:"val"`
	LabelH []byte              `json:"label_digest_input"`
	Stats  []RefreshStats      `json:"stats"`
	PCG    []byte              `json:"pcg"`
	LSim   []float64           `json:"label_sim_rewards"`
	SimR   []float64           `json:"sim_rewards"`
}

// Settings are what a checkpoint's fingerprint covers besides the starting model.
func (o *Online) Settings() any {
	return struct {
		OnlineConfig
		Labeler string `json:"labeler"`
		Anchor  string `json:"anchor,omitempty"`
	}{o.cfg, o.labeler.Info().Key(), anchorDigest(o.cfg.Anchor)}
}

// anchorDigest identifies an anchor set by its training pairs and frame count ("" for
// none), so that a run resumed with other anchors refuses the checkpoint.
func anchorDigest(d *reward.Dataset) string {
	if d == nil {
		return ""
	}
	h := sha256.New()
	var b [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:], v)
		h.Write(b[:])
	}
	put(uint32(len(d.Frames)))
	for _, p := range d.Train {
		put(uint32(len(p.A)))
		for _, f := range p.A {
			put(uint32(f))
		}
		for _, f := range p.B {
			put(uint32(f))
		}
		put(math.Float32bits(p.Target))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (o *Online) writeState(w io.Writer, n int) error {
	// Wall-clock times describe a process, like Result's seconds: not kept.
	st := onlineState{Train: o.train, Val: o.val, LabelH: o.labelH, Stats: stripTimes(o.stats), LSim: o.lsim, SimR: o.simR[:n]}
	for m := range o.nets {
		st.Norms = append(st.Norms, *o.ens[0].Member(m).Manifest().Reward)
	}
	var err error
	if st.PCG, err = o.pcg.MarshalBinary(); err != nil {
		return err
	}
	head, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeBlock(w, head); err != nil {
		return err
	}
	for _, net := range o.nets {
		if err := nn.WriteParams(w, net.Params()); err != nil {
			return err
		}
	}
	if err := writeBlock(w, o.frames[:n*o.L]); err != nil {
		return err
	}
	return writeBlock(w, o.lframes)
}

func (o *Online) readState(r *bufio.Reader, n int) error {
	head, err := readBlock(r, 1<<30)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	var st onlineState
	if err := json.Unmarshal(head, &st); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	nl := len(st.LSim)
	if len(st.Norms) != len(o.nets) || len(st.SimR) != n {
		return fmt.Errorf("%d members and %d frames, want %d and %d", len(st.Norms), len(st.SimR), len(o.nets), n)
	}
	for _, set := range [][]reward.Pair{st.Train, st.Val} {
		for _, p := range set {
			for _, f := range append(append([]int32(nil), p.A...), p.B...) {
				if f < 0 || int(f) >= nl {
					return fmt.Errorf("a label names frame %d of %d", f, nl)
				}
			}
		}
	}
	for m, net := range o.nets {
		if err := nn.ReadParams(r, net.Params()); err != nil {
			return fmt.Errorf("member %d: %w", m, err)
		}
	}
	frames, err := readBlock(r, int64(n*o.L))
	if err != nil || len(frames) != n*o.L {
		return fmt.Errorf("frames: %d bytes, want %d: %v", len(frames), n*o.L, err)
	}
	lframes, err := readBlock(r, int64(nl*o.L))
	if err != nil || len(lframes) != nl*o.L {
		return fmt.Errorf("labelled frames: %d bytes, want %d: %v", len(lframes), nl*o.L, err)
	}
	if err := o.pcg.UnmarshalBinary(st.PCG); err != nil {
		return fmt.Errorf("generator: %w", err)
	}
	copy(o.frames, frames)
	copy(o.simR, st.SimR)
	o.lframes, o.lsim, o.train, o.val, o.labelH, o.stats = lframes, st.LSim, st.Train, st.Val, st.LabelH, st.Stats
	o.x32 = make([]float32, nl*o.L)
	for i := range nl {
		o.pre[0].Normalize(lframes[i*o.L:(i+1)*o.L], o.x32[i*o.L:(i+1)*o.L])
	}
	members := make([]*runtime.Model, len(o.nets))
	for m, net := range o.nets {
		if members[m], err = o.load(net, m, st.Norms[m]); err != nil {
			return fmt.Errorf("member %d: %w", m, err)
		}
	}
	e, err := runtime.NewEnsemble(members)
	if err != nil {
		return err
	}
	o.setEnsemble(e)
	return nil
}

// writeBlock writes len uint64 LE | data | CRC-32 (IEEE) of data.
func writeBlock(w io.Writer, data []byte) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(data)))
	if _, err := w.Write(b[:]); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:4], crc32.ChecksumIEEE(data))
	_, err := w.Write(b[:4])
	return err
}

// readBlock reads what writeBlock wrote, refusing more than limit bytes.
func readBlock(r io.Reader, limit int64) ([]byte, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(b[:])
	if n > uint64(limit) {
		return nil, fmt.Errorf("block of %d bytes, at most %d expected", n, limit)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(data) != binary.LittleEndian.Uint32(b[:4]) {
		return nil, fmt.Errorf("CRC mismatch")
	}
	return data, nil
}

// stripTimes returns the refreshes with their wall-clock fields zeroed.
func stripTimes(st []RefreshStats) []RefreshStats {
	out := slices.Clone(st)
	for i := range out {
		out[i].LabelSeconds, out[i].TrainSeconds, out[i].RelabelSeconds = 0, 0, 0
	}
	return out
}
