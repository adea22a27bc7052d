package runtime

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"robodistill/control/onnxio"
)

// Backend names for Options.Backend.
const (
	// BackendNative compiles the graph to control/nn kernels: no allocations per Run,
	// cheap clones. The default.
	BackendNative = "robodistill"
	// BackendGorgonia is onnx-go's Gorgonia backend (onnx-go v0.5.0): for comparison and
	// for ops outside SupportedOps. It allocates per Run, is serialised by a mutex and its
	// Gemm with a bias drifts at batch 1 (docs/runtime.md).
	BackendGorgonia = "gorgonia"
)

// Options configure loading. The zero value is batch 1 on the native backend.
type Options struct {
	// MaxBatch is the largest batch size Run accepts (default 1, at most MaxBatchLimit).
	// Shapes are inferred and buffers sized for it at load.
	MaxBatch int
	// Backend is BackendNative (default) or BackendGorgonia.
	Backend string
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBatch == 0 {
		o.MaxBatch = 1
	}
	if o.MaxBatch < 1 || o.MaxBatch > MaxBatchLimit {
		return o, fmt.Errorf("options: max_batch: must be 1 to %d, got %d", MaxBatchLimit, o.MaxBatch)
	}
	switch o.Backend {
	case "":
		o.Backend = BackendNative
	case BackendNative, BackendGorgonia:
	default:
		return o, fmt.Errorf("options: backend: unknown value %q (want %s or %s)", o.Backend, BackendNative, BackendGorgonia)
	}
	return o, nil
}

// Model is a loaded model. It is not safe for concurrent use (it owns the buffers of its
// last Run); Clone gives another goroutine its own.
type Model struct {
	c       *compiled
	backend string
	vals    [][]float32 // per value: the data of the current Run
	bufs    [][]float32 // per value: the buffer a modeBuffer step writes, or nil
	shapes  []shape     // per value: the shapes of the current Run
	state   []any       // per step: a stateful kernel's scratch
	out     []float32   // the output, when it has to be copied (and for gorgonia)
	g       *gorgoniaRunner
}

// Load verifies a model file against its sidecar (onnxio.Verify: sha256, manifests,
// signature), compiles the verified bytes and runs the self-check. Errors wrap onnxio's
// ErrHash, ErrMismatch or ErrFormat, or this package's ErrUnsupported (an *OpError),
// ErrShape or ErrSelfCheck.
func Load(path string, o Options) (*Model, error) {
	v, err := onnxio.Verify(path)
	if err != nil {
		return nil, fmt.Errorf("runtime.Load: %w", err)
	}
	m, err := load(v.Bytes, v.Model, v.Manifest, o)
	if err != nil {
		return nil, fmt.Errorf("runtime.Load: %s: %w", path, err)
	}
	m.c.sha256 = v.SHA256
	return m, nil
}

// LoadBytes compiles model bytes described by man (which is validated, not compared with
// any embedded manifest) and runs the self-check. It is Load without the files: for tests
// and for graphs built by hand.
func LoadBytes(data []byte, man *onnxio.Manifest, o Options) (*Model, error) {
	if man == nil {
		return nil, fmt.Errorf("runtime.LoadBytes: no manifest")
	}
	if err := man.Validate(); err != nil {
		return nil, fmt.Errorf("runtime.LoadBytes: manifest: %w", err)
	}
	om, err := onnxio.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("runtime.LoadBytes: %w", err)
	}
	m, err := load(data, om, man, o)
	if err != nil {
		return nil, fmt.Errorf("runtime.LoadBytes: %w", err)
	}
	return m, nil
}

func load(data []byte, om *onnxio.Model, man *onnxio.Manifest, o Options) (*Model, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var m *Model
	if o.Backend == BackendGorgonia {
		m, err = loadGorgonia(data, om, man, o.MaxBatch)
	} else {
		var c *compiled
		if c, err = compile(data, om, man, o.MaxBatch); err == nil {
			m = c.instance()
		}
	}
	if err != nil {
		return nil, err
	}
	m.backend = o.Backend
	x, err := onnxio.GoldenInput(man.Golden.Pattern, m.c.inSize)
	if err != nil {
		return nil, err
	}
	m.c.golden = x
	if err := m.selfCheck(); err != nil {
		return nil, err
	}
	return m, nil
}

// instance allocates a Model's buffers and per-step state.
func (c *compiled) instance() *Model {
	m := &Model{c: c, backend: BackendNative, vals: make([][]float32, len(c.values)), bufs: make([][]float32, len(c.values)),
		shapes: make([]shape, len(c.values)), state: make([]any, len(c.steps))}
	for i, v := range c.values {
		switch {
		case v.kind == kindConst:
			m.vals[i], m.shapes[i] = v.f32, v.shape
		case v.size > 0:
			m.bufs[i] = make([]float32, v.size)
		}
	}
	for i := range c.steps {
		if st, ok := c.steps[i].k.(stateful); ok {
			m.state[i] = st.newState()
		}
	}
	if c.copyOut {
		m.out = make([]float32, c.maxBatch*c.outSize)
	}
	return m
}

// selfCheck runs the manifest's golden input: it must give the golden output within the
// manifest's tolerance, twice with identical bits, and at MaxBatch for every sample.
// The runs also grow the nn layers' buffers to MaxBatch.
func (m *Model) selfCheck() error {
	c, man := m.c, m.c.manifest
	x := c.golden[:c.inSize]
	y, err := m.Run(x, 1)
	if errors.Is(err, ErrUnsupported) {
		return err // the backend cannot run the graph (Gorgonia finds out on its first run)
	}
	if err != nil {
		return fmt.Errorf("%w: golden input: %w", ErrSelfCheck, err)
	}
	first := slices.Clone(y)
	if err := man.CheckGolden(first); err != nil {
		return fmt.Errorf("%w: %w", ErrSelfCheck, err)
	}
	if y, err = m.Run(x, 1); err != nil {
		return fmt.Errorf("%w: golden input, second run: %w", ErrSelfCheck, err)
	}
	for i := range y {
		if math.Float32bits(y[i]) != math.Float32bits(first[i]) {
			return fmt.Errorf("%w: two runs of the golden input differ: output[%d] is %g, then %g", ErrSelfCheck, i, first[i], y[i])
		}
	}
	if c.maxBatch > 1 {
		if y, err = m.Run(slices.Repeat(x, c.maxBatch), c.maxBatch); err != nil {
			return fmt.Errorf("%w: golden input at batch %d: %w", ErrSelfCheck, c.maxBatch, err)
		}
		for b := 0; b < c.maxBatch; b++ {
			if err := man.CheckGolden(y[b*c.outSize : (b+1)*c.outSize]); err != nil {
				return fmt.Errorf("%w: batch %d, sample %d: %w", ErrSelfCheck, c.maxBatch, b, err)
			}
		}
	}
	return nil
}

// Run computes the outputs for batch samples, in holding batch × the manifest's
// input.shape values (row-major, sample after sample). The result holds batch × the
// output.shape values; it belongs to m and stays valid until m's next Run. An output
// that is NaN or infinite is an error wrapping ErrNonFinite.
//
// On the native backend Run allocates nothing (with OpenBLAS; gonum's pure-Go BLAS starts
// goroutines for large products).
func (m *Model) Run(in []float32, batch int) ([]float32, error) {
	c := m.c
	if batch < 1 || batch > c.maxBatch {
		return nil, fmt.Errorf("runtime: %w: batch %d, the model was loaded for 1 to %d (Options.MaxBatch)", ErrInput, batch, c.maxBatch)
	}
	if len(in) != batch*c.inSize {
		return nil, fmt.Errorf("runtime: %w: %d input values, batch %d of %v needs %d", ErrInput, len(in), batch, c.manifest.Input.Shape, batch*c.inSize)
	}
	var out []float32
	var err error
	if m.g != nil {
		out, err = m.g.run(in, batch, m.out[:batch*c.outSize])
	} else {
		out, err = m.exec(in, batch)
	}
	if err != nil {
		return nil, err
	}
	for i, v := range out {
		if v-v != 0 {
			return nil, fmt.Errorf("runtime: output %q[%d] is %g: %w", c.manifest.Output.Name, i, v, ErrNonFinite)
		}
	}
	return out, nil
}

func (m *Model) exec(in []float32, batch int) ([]float32, error) {
	c := m.c
	sh := m.shapes
	sh[c.input] = c.inShape
	sh[c.input].d[0] = batch
	m.vals[c.input] = in
	for i := range c.steps {
		s := &c.steps[i]
		o, err := s.k.infer(sh, s)
		if err != nil {
			// Load inferred every batch size up to MaxBatch: this is a bug.
			return nil, fmt.Errorf("runtime: %w", &OpError{Op: s.opType, Node: s.node, Err: err})
		}
		sh[s.out] = o
		if b := m.bufs[s.out]; b != nil {
			m.vals[s.out] = b[:o.numel()]
		}
		s.k.run(m, s)
	}
	m.vals[c.input] = nil // do not keep the caller's slice
	out := m.vals[c.output]
	if c.copyOut {
		out = m.out[:copy(m.out, out)]
	}
	return out, nil
}

// Clone returns a Model for another goroutine. On the native backend it shares the
// weights and the compiled graph and has its own buffers (it runs the golden input once
// at MaxBatch to size the nn layers' scratch). A gorgonia Model's clones share one
// Gorgonia graph and take turns on its mutex.
func (m *Model) Clone() *Model {
	if m.g != nil {
		return &Model{c: m.c, backend: m.backend, g: m.g, out: make([]float32, len(m.out))}
	}
	n := m.c.instance()
	n.backend = m.backend
	_, _ = n.Run(slices.Repeat(m.c.golden, m.c.maxBatch), m.c.maxBatch) // as in the self-check
	return n
}

// Manifest is the model's manifest (shared by clones: do not modify).
func (m *Model) Manifest() *onnxio.Manifest { return m.c.manifest }

// SHA256 is the file's sha256 as verified by Load ("" after LoadBytes).
func (m *Model) SHA256() string { return m.c.sha256 }

// Ops lists the op types the model runs, in order of first use (for the native backend,
// only nodes the output depends on).
func (m *Model) Ops() []string { return slices.Clone(m.c.ops) }

// Backend is the backend's name.
func (m *Model) Backend() string { return m.backend }

// MaxBatch is the largest batch Run accepts.
func (m *Model) MaxBatch() int { return m.c.maxBatch }

// InputSize is the number of input values per sample (the product of input.shape).
func (m *Model) InputSize() int { return m.c.inSize }

// OutputSize is the number of output values per sample.
func (m *Model) OutputSize() int { return m.c.outSize }
