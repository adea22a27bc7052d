package nn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Parameter files (checkpoints) are a small binary format, little-endian:
//
//	"RDNN" | version uint32 (1) | count uint32
//	count × ( name length uint16 | name | rank uint8 | rank × dim uint32 | float32 data )
//	CRC-32 (IEEE) of everything before it, uint32
//
// A reader matches tensors to parameters by name and shape, and changes nothing unless the
// whole file is read and its checksum holds.
const (
	fileMagic   = "RDNN"
	fileVersion = 1
	maxTensors  = 1 << 16
	maxNameLen  = 1 << 10
	maxRank     = 8
)

// ErrFormat is wrapped by every error about a malformed or mismatched parameter file.
var ErrFormat = errors.New("bad parameter file")

type namedTensor struct {
	name  string
	shape []int
	data  []float32
}

// WriteParams writes params (names, shapes and values) to w.
func WriteParams(w io.Writer, params []*Param) error {
	ts := make([]namedTensor, len(params))
	for i, p := range params {
		ts[i] = namedTensor{p.Name, p.Shape, p.Value}
	}
	if err := writeTensors(w, ts); err != nil {
		return fmt.Errorf("nn.WriteParams: %w", err)
	}
	return nil
}

// ReadParams reads a file written by WriteParams into params. The file must hold exactly
// these parameters, with the same shapes, in any order.
func ReadParams(r io.Reader, params []*Param) error {
	ts := make([]namedTensor, len(params))
	for i, p := range params {
		ts[i] = namedTensor{p.Name, p.Shape, p.Value}
	}
	if err := readTensors(r, ts); err != nil {
		return fmt.Errorf("nn.ReadParams: %w", err)
	}
	return nil
}

// WriteState writes the optimiser's moments and step count (not its hyperparameters,
// which belong to the training configuration).
func (a *Adam) WriteState(w io.Writer) error {
	if a.step >= 1<<24 {
		return fmt.Errorf("nn.Adam.WriteState: step %d does not fit the format", a.step)
	}
	ts := []namedTensor{{"step", []int{1}, []float32{float32(a.step)}}}
	for i, p := range a.params {
		ts = append(ts, namedTensor{"m." + p.Name, p.Shape, a.m[i]}, namedTensor{"v." + p.Name, p.Shape, a.v[i]})
	}
	if err := writeTensors(w, ts); err != nil {
		return fmt.Errorf("nn.Adam.WriteState: %w", err)
	}
	return nil
}

// ReadState restores what WriteState wrote, for an optimiser over the same parameters.
func (a *Adam) ReadState(r io.Reader) error {
	step := []float32{0}
	ts := []namedTensor{{"step", []int{1}, step}}
	for i, p := range a.params {
		ts = append(ts, namedTensor{"m." + p.Name, p.Shape, a.m[i]}, namedTensor{"v." + p.Name, p.Shape, a.v[i]})
	}
	if err := readTensors(r, ts); err != nil {
		return fmt.Errorf("nn.Adam.ReadState: %w", err)
	}
	a.step = int(step[0])
	return nil
}

func writeTensors(w io.Writer, ts []namedTensor) error {
	if len(ts) > maxTensors {
		return fmt.Errorf("%d tensors, at most %d", len(ts), maxTensors)
	}
	h := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	var b [8]byte
	put32 := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:4], v)
		bw.Write(b[:4])
	}
	bw.WriteString(fileMagic)
	put32(fileVersion)
	put32(uint32(len(ts)))
	for _, t := range ts {
		if len(t.name) > maxNameLen || len(t.shape) > maxRank {
			return fmt.Errorf("tensor %.40q: name or rank too long", t.name)
		}
		if numel(t.shape) != len(t.data) {
			return fmt.Errorf("tensor %q: shape %v but %d values", t.name, t.shape, len(t.data))
		}
		binary.LittleEndian.PutUint16(b[:2], uint16(len(t.name)))
		bw.Write(b[:2])
		bw.WriteString(t.name)
		bw.WriteByte(byte(len(t.shape)))
		for _, d := range t.shape {
			put32(uint32(d))
		}
		for _, v := range t.data {
			put32(math.Float32bits(v))
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:4], h.Sum32())
	_, err := w.Write(b[:4])
	return err
}

// readTensors fills want's data slices from r, all or nothing.
func readTensors(r io.Reader, want []namedTensor) error {
	h := crc32.NewIEEE()
	br := io.TeeReader(bufio.NewReader(r), h)
	var b [8]byte
	read := func(n int) ([]byte, error) {
		if _, err := io.ReadFull(br, b[:n]); err != nil {
			return nil, fmt.Errorf("%w: truncated: %w", ErrFormat, err)
		}
		return b[:n], nil
	}
	hdr := make([]byte, 12)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("%w: truncated header: %w", ErrFormat, err)
	}
	if string(hdr[:4]) != fileMagic {
		return fmt.Errorf("%w: not a parameter file (magic %q)", ErrFormat, hdr[:4])
	}
	if v := binary.LittleEndian.Uint32(hdr[4:]); v != fileVersion {
		return fmt.Errorf("%w: version %d, this reader knows %d", ErrFormat, v, fileVersion)
	}
	count := int(binary.LittleEndian.Uint32(hdr[8:]))
	if count != len(want) {
		return fmt.Errorf("%w: %d tensors, want %d", ErrFormat, count, len(want))
	}
	byName := make(map[string]int, len(want))
	for i, t := range want {
		byName[t.name] = i
	}
	staged := make([][]float32, len(want))
	for k := 0; k < count; k++ {
		p, err := read(2)
		if err != nil {
			return err
		}
		name := make([]byte, binary.LittleEndian.Uint16(p))
		if len(name) > maxNameLen {
			return fmt.Errorf("%w: tensor %d: name of %d bytes", ErrFormat, k, len(name))
		}
		if _, err := io.ReadFull(br, name); err != nil {
			return fmt.Errorf("%w: truncated: %w", ErrFormat, err)
		}
		i, ok := byName[string(name)]
		if !ok {
			return fmt.Errorf("%w: unexpected tensor %q", ErrFormat, name)
		}
		if staged[i] != nil {
			return fmt.Errorf("%w: tensor %q appears twice", ErrFormat, name)
		}
		if p, err = read(1); err != nil {
			return err
		}
		rank := int(p[0])
		if rank != len(want[i].shape) {
			return fmt.Errorf("%w: tensor %q has rank %d, want shape %v", ErrFormat, name, rank, want[i].shape)
		}
		for d := 0; d < rank; d++ {
			if p, err = read(4); err != nil {
				return err
			}
			if got := binary.LittleEndian.Uint32(p); int64(got) != int64(want[i].shape[d]) {
				return fmt.Errorf("%w: tensor %q: dimension %d is %d, want shape %v", ErrFormat, name, d, got, want[i].shape)
			}
		}
		data := make([]float32, len(want[i].data))
		for j := range data {
			if p, err = read(4); err != nil {
				return err
			}
			data[j] = math.Float32frombits(binary.LittleEndian.Uint32(p))
		}
		staged[i] = data
	}
	sum := h.Sum32()
	p, err := read(4)
	if err != nil {
		return err
	}
	if got := binary.LittleEndian.Uint32(p); got != sum {
		return fmt.Errorf("%w: checksum %08x, computed %08x", ErrFormat, got, sum)
	}
	for i, data := range staged {
		copy(want[i].data, data)
	}
	return nil
}
