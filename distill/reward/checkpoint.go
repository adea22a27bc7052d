package reward

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"robodistill/control/nn"
)

// ErrCheckpoint is wrapped by errors about a checkpoint that cannot be used.
var ErrCheckpoint = errors.New("unusable checkpoint")

const checkpointMagic = "RDCKPT1\n"

// fingerprint names what a run trains on and how: a checkpoint from another run is
// refused rather than continued.
func fingerprint(cfg Config, d *Dataset) string {
	h := sha256.New()
	c := cfg
	c.Workers = 0
	j, _ := json.Marshal(c)
	h.Write(j)
	vj, _ := d.Vision.JSON()
	h.Write(vj)
	for _, f := range d.Frames {
		io.WriteString(h, f.Hash)
	}
	var b [4]byte
	for _, set := range [2][]Pair{d.Train, d.Val} {
		binary.LittleEndian.PutUint32(b[:], uint32(len(set)))
		h.Write(b[:])
		for _, p := range set {
			for _, side := range [2][]int32{p.A, p.B} {
				binary.LittleEndian.PutUint32(b[:], uint32(len(side)))
				h.Write(b[:])
				for _, f := range side {
					binary.LittleEndian.PutUint32(b[:], uint32(f))
					h.Write(b[:])
				}
			}
			h.Write([]byte{byte(p.Target * 2)})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func checkpointPath(dir string, member int) string {
	return filepath.Join(dir, fmt.Sprintf("member-%d.ckpt", member))
}

// save writes the member's state: a header (the training state as JSON), the current
// weights, the best weights and Adam's moments. It writes a temporary file and renames
// it, so a crash leaves the previous checkpoint.
func (mt *memberTrainer) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pcg, err := mt.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	mt.st.PCG = pcg
	head, err := json.Marshal(mt.st)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(len(head)))
	buf.Write(head)
	if err := nn.WriteParams(&buf, mt.net.Params()); err != nil {
		return err
	}
	if err := nn.WriteParams(&buf, mt.best); err != nil {
		return err
	}
	if err := mt.opt.WriteState(&buf); err != nil {
		return err
	}
	path := checkpointPath(dir, mt.member)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// restore loads the member's checkpoint from dir when there is one. A checkpoint of
// another run (other labels, frames or settings) or a damaged one is an error: the
// caller decides to remove it, never this package.
func (mt *memberTrainer) restore(dir string) error {
	path := checkpointPath(dir, mt.member)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", path, ErrCheckpoint, fmt.Sprintf(why, args...))
	}
	r := bufio.NewReader(bytes.NewReader(data))
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return bad("not a reward-training checkpoint")
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<24 {
		return bad("bad header length")
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(r, head); err != nil {
		return bad("truncated header")
	}
	var st trainState
	if err := json.Unmarshal(head, &st); err != nil {
		return bad("header: %v", err)
	}
	if st.Fingerprint != mt.st.Fingerprint {
		return bad("it belongs to a run with other labels, frames or settings; remove %s to start over", dir)
	}
	net := mt.net.Params()
	best := cloneParams(net)
	if err := nn.ReadParams(r, net); err != nil {
		return bad("weights: %v", err)
	}
	if err := nn.ReadParams(r, best); err != nil {
		return bad("best weights: %v", err)
	}
	if err := mt.opt.ReadState(r); err != nil {
		return bad("optimizer: %v", err)
	}
	if err := mt.pcg.UnmarshalBinary(st.PCG); err != nil {
		return bad("generator: %v", err)
	}
	copyValues(mt.best, best)
	st.Resumed = st.Epoch
	mt.st = st
	return nil
}
