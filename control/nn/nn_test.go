package nn

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// smallCNN is the reward network of the "Distilled reward" issue on 3×64×64 frames.
func smallCNN(rng *rand.Rand, hidden int) *Sequential {
	return NewSequential(
		NewConv2d(3, 16, 5, 2, 0, rng), NewReLU(),
		NewConv2d(16, 32, 3, 2, 0, rng), NewReLU(),
		NewFlatten(),
		NewLinear(32*14*14, hidden, rng), NewReLU(),
		NewLinear(hidden, 1, rng),
	)
}

// trainer is one Bradley-Terry training step on a fixed batch of pairs.
type trainer struct {
	net    *Sequential
	opt    *Adam
	x      *Tensor // [2P, 3, 64, 64]: first frames, then second frames
	target []float32
	dr     *Tensor
	bt     BradleyTerry
}

func newTrainer(t testing.TB, seed uint64, pairs int) *trainer {
	rng := rand.New(rand.NewPCG(seed, 7))
	net := smallCNN(rng, 32)
	opt, err := NewAdam(net.Params(), AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4})
	if err != nil {
		t.Fatal(err)
	}
	tr := &trainer{net: net, opt: opt, x: NewTensor(2*pairs, 3, 64, 64), target: make([]float32, pairs),
		dr: NewTensor(2*pairs, 1), bt: BradleyTerry{Smoothing: 0.05}}
	for i := range tr.x.Data {
		tr.x.Data[i] = rng.Float32()
	}
	for i := range tr.target {
		tr.target[i] = float32(i%3) / 2
	}
	return tr
}

func (tr *trainer) step() float64 {
	p := len(tr.target)
	tr.net.ZeroGrad()
	r := tr.net.Forward(tr.x)
	loss := tr.bt.Loss(r.Data[:p], r.Data[p:2*p], tr.target, tr.dr.Data[:p], tr.dr.Data[p:])
	tr.net.Backward(tr.dr, false)
	tr.opt.Step()
	return loss
}

func TestZeroAllocs(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 1))
		net := smallCNN(rng, 32)
		x := NewTensor(1, 3, 64, 64)
		net.Forward(x)
		infer := testing.AllocsPerRun(20, func() { net.Forward(x) })
		tr := newTrainer(t, 1, 4)
		tr.step()
		train := testing.AllocsPerRun(5, func() { tr.step() })
		t.Logf("allocations: inference (batch 1) %v, training step (4 pairs) %v", infer, train)
		if CurrentBackend() == OpenBLAS && (infer != 0 || train != 0) {
			t.Errorf("OpenBLAS: inference %v allocations, training step %v, want 0", infer, train)
		}
	})
}

func TestDeterministic(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		a, b := newTrainer(t, 3, 4), newTrainer(t, 3, 4)
		for i := 0; i < 3; i++ {
			if la, lb := a.step(), b.step(); la != lb {
				t.Fatalf("step %d: losses %v and %v from the same seed", i, la, lb)
			}
		}
		for i, p := range a.net.Params() {
			q := b.net.Params()[i]
			for j := range p.Value {
				if math.Float32bits(p.Value[j]) != math.Float32bits(q.Value[j]) {
					t.Fatalf("%s[%d]: %v and %v after the same steps", p.Name, j, p.Value[j], q.Value[j])
				}
			}
		}
		c := newTrainer(t, 4, 4)
		if c.net.Params()[0].Value[0] == a.net.Params()[0].Value[0] {
			t.Error("a different seed gave the same initialisation")
		}
	})
}

func TestBackendsAgree(t *testing.T) {
	if len(Backends()) < 2 {
		t.Skip("only one backend linked (built without cgo or with -tags noopenblas)")
	}
	// Outputs and gradients of one step, then outputs after it. Adam's first step moves
	// every weight by about ±lr whatever the gradient's size, so the last comparison is
	// looser: a tiny gradient may round to a different update.
	type result struct{ out, grad, after []float32 }
	var rs []result
	for _, b := range Backends() {
		prev, _ := SetBackend(b)
		tr := newTrainer(t, 5, 4)
		var r result
		r.out = append(r.out, tr.net.Forward(tr.x).Data...)
		tr.step()
		for _, p := range tr.net.Params() {
			r.grad = append(r.grad, p.Grad...)
		}
		r.after = append(r.after, tr.net.Forward(tr.x).Data...)
		rs = append(rs, r)
		SetBackend(prev)
	}
	for _, c := range []struct {
		what      string
		got, want []float32
		tol       float64
	}{
		{"outputs", rs[1].out, rs[0].out, 1e-5},
		{"gradients", rs[1].grad, rs[0].grad, 1e-5},
		{"outputs after one Adam step", rs[1].after, rs[0].after, 1e-4},
	} {
		if e := normRelErr(to64(c.got), to64(c.want)); e > c.tol {
			t.Errorf("%s: pure Go vs OpenBLAS relative error %.3g > %g", c.what, e, c.tol)
		} else {
			t.Logf("%s: pure Go vs OpenBLAS %.2g", c.what, e)
		}
	}
}

func TestSetBackend(t *testing.T) {
	if _, err := SetBackend("mkl"); err == nil || !strings.Contains(err.Error(), `unknown backend "mkl"`) {
		t.Errorf("SetBackend(mkl) = %v", err)
	}
	if CurrentBackend() != Backends()[0] {
		t.Errorf("default backend %s, want %s", CurrentBackend(), Backends()[0])
	}
}

func TestShapeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		l    Layer
		in   []int
		want string
	}{
		{NewLinear(4, 2, rng), []int{3, 5}, "linear: input shape [3 5], want [N 4]"},
		{NewLinear(4, 2, rng), []int{4}, "linear: input shape [4], want [N 4]"},
		{NewConv2d(3, 8, 5, 2, 0, rng), []int{1, 1, 64, 64}, "conv2d: input shape [1 1 64 64], want [N 3 H W]"},
		{NewConv2d(3, 8, 5, 2, 1, rng), []int{1, 3, 2, 64}, "conv2d: input 2x64 smaller than kernel 5 (padding 1)"},
		{NewFlatten(), []int{5}, "flatten: input rank 1, want 2 to 8"},
		{NewLayerNorm(8), []int{2, 7}, "layernorm: input shape [2 7], last dimension must be 8"},
		{NewReLU(), []int{1, 2, 3, 4, 5}, "relu: input rank 5, want 1 to 4"},
		{NewSpatialSoftmax(), []int{2, 8}, "spatialsoftmax: input shape [2 8], want [N C H W]"},
		{NewSpatialSoftmax(), []int{1, 4, 0, 3}, "spatialsoftmax: input shape [1 4 0 3] has no channels or positions"},
	}
	for _, tc := range cases {
		_, err := tc.l.OutShape(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%T.OutShape(%v) = %v, want %q", tc.l, tc.in, err, tc.want)
		}
	}
	net := smallCNN(rng, 8)
	if _, err := net.OutShape([]int{1, 3, 32, 32}); err == nil || err.Error() != "layer 5 (*nn.Linear): linear: input shape [1 1152], want [N 6272]" {
		t.Errorf("Sequential.OutShape = %v", err)
	}
	if out, err := net.OutShape([]int{7, 3, 64, 64}); err != nil || !sameShape(out, []int{7, 1}) {
		t.Errorf("Sequential.OutShape = %v, %v", out, err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "want [N 3 H W]") {
			t.Errorf("Forward on a bad shape: panic %v", r)
		}
	}()
	net.Forward(NewTensor(1, 4, 64, 64))
}

func TestAdamConfigValidate(t *testing.T) {
	cases := []struct {
		mod  func(*AdamConfig)
		want string
	}{
		{func(c *AdamConfig) {}, ""},
		{func(c *AdamConfig) { c.LR = 0 }, "lr: must be positive and finite, got 0"},
		{func(c *AdamConfig) { c.LR = math.NaN() }, "lr: must be positive and finite, got NaN"},
		{func(c *AdamConfig) { c.Beta1 = 1 }, "beta1: must be in [0, 1), got 1"},
		{func(c *AdamConfig) { c.Beta2 = -0.1 }, "beta2: must be in [0, 1), got -0.1"},
		{func(c *AdamConfig) { c.Eps = 0 }, "eps: must be positive and finite, got 0"},
		{func(c *AdamConfig) { c.WeightDecay = -1 }, "weight_decay: must be non-negative and finite, got -1"},
	}
	for _, tc := range cases {
		c := DefaultAdam()
		tc.mod(&c)
		err := c.Validate()
		if got := errString(err); got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
	}
	if _, err := NewAdam(nil, DefaultAdam()); errString(err) != "nn.NewAdam: no parameters" {
		t.Errorf("NewAdam(nil) = %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestAdamStep(t *testing.T) {
	// One scalar, two steps, by hand in float64.
	for _, tc := range []struct {
		name      string
		wd        float64
		decoupled bool
	}{{"plain", 0, false}, {"l2", 0.1, false}, {"adamw", 0.1, true}} {
		p := newParam("w", 1)
		p.Value[0] = 1
		cfg := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: tc.wd, Decoupled: tc.decoupled}
		opt, _ := NewAdam([]*Param{p}, cfg)
		w, m, v := 1.0, 0.0, 0.0
		for step, g := range []float64{0.5, -0.2} {
			p.Grad[0] = float32(g)
			opt.Step()
			if tc.decoupled {
				w *= 1 - cfg.LR*tc.wd
			} else {
				g += tc.wd * w
			}
			m = 0.9*m + 0.1*g
			v = 0.999*v + 0.001*g*g
			mh, vh := m/(1-math.Pow(0.9, float64(step+1))), v/(1-math.Pow(0.999, float64(step+1)))
			w -= cfg.LR * mh / (math.Sqrt(vh) + cfg.Eps)
			if math.Abs(float64(p.Value[0])-w) > 1e-6 {
				t.Errorf("%s step %d: w = %.8f, want %.8f", tc.name, step+1, p.Value[0], w)
			}
		}
		if opt.Steps() != 2 {
			t.Errorf("Steps() = %d", opt.Steps())
		}
	}
}

func TestParamsRoundTrip(t *testing.T) {
	a := newTrainer(t, 9, 2)
	a.step()
	var buf bytes.Buffer
	if err := WriteParams(&buf, a.net.Params()); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
	b := newTrainer(t, 10, 2)
	if err := ReadParams(bytes.NewReader(file), b.net.Params()); err != nil {
		t.Fatal(err)
	}
	for i, p := range a.net.Params() {
		if q := b.net.Params()[i]; !equal32(p.Value, q.Value) {
			t.Fatalf("%s differs after a round trip", p.Name)
		}
	}

	// Optimiser state: resuming from a checkpoint continues exactly.
	var st bytes.Buffer
	if err := a.opt.WriteState(&st); err != nil {
		t.Fatal(err)
	}
	if err := b.opt.ReadState(bytes.NewReader(st.Bytes())); err != nil {
		t.Fatal(err)
	}
	if b.opt.Steps() != 1 {
		t.Fatalf("restored step %d, want 1", b.opt.Steps())
	}
	b.x, b.target = a.x, a.target
	if la, lb := a.step(), b.step(); la != lb {
		t.Fatalf("resumed step: loss %v, uninterrupted %v", lb, la)
	}
	for i, p := range a.net.Params() {
		if q := b.net.Params()[i]; !equal32(p.Value, q.Value) {
			t.Fatalf("%s differs after a resumed step", p.Name)
		}
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestReadParamsErrors(t *testing.T) {
	params := func() []*Param {
		return []*Param{newParam("0.weight", 2, 3), newParam("0.bias", 2)}
	}
	write := func(ps []*Param) []byte {
		var buf bytes.Buffer
		if err := WriteParams(&buf, ps); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	good := write(params())
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-9] ^= 1 // inside the last value
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "nn.ReadParams: bad parameter file: truncated header: EOF"},
		{"magic", append([]byte("ONNX"), good[4:]...), `nn.ReadParams: bad parameter file: not a parameter file (magic "ONNX")`},
		{"version", append(append([]byte("RDNN"), 2, 0, 0, 0), good[8:]...), "nn.ReadParams: bad parameter file: version 2, this reader knows 1"},
		{"count", write(params()[:1]), "nn.ReadParams: bad parameter file: 1 tensors, want 2"},
		{"name", write([]*Param{newParam("0.weight", 2, 3), newParam("1.bias", 2)}), `nn.ReadParams: bad parameter file: unexpected tensor "1.bias"`},
		{"twice", write([]*Param{newParam("0.bias", 2), newParam("0.bias", 2)}), `nn.ReadParams: bad parameter file: tensor "0.bias" appears twice`},
		{"shape", write([]*Param{newParam("0.weight", 3, 2), newParam("0.bias", 2)}), "nn.ReadParams: bad parameter file: tensor \"0.weight\": dimension 0 is 3, want shape [2 3]"},
		{"rank", write([]*Param{newParam("0.weight", 6), newParam("0.bias", 2)}), "nn.ReadParams: bad parameter file: tensor \"0.weight\" has rank 1, want shape [2 3]"},
		{"truncated", good[:len(good)-6], "nn.ReadParams: bad parameter file: truncated: unexpected EOF"},
		{"checksum", flipped, "nn.ReadParams: bad parameter file: checksum"},
	}
	for _, tc := range cases {
		ps := params()
		for _, p := range ps {
			p.Value[0] = 42
		}
		err := ReadParams(bytes.NewReader(tc.file), ps)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v does not wrap ErrFormat", tc.name, err)
		}
		for _, p := range ps {
			if p.Value[0] != 42 {
				t.Errorf("%s: a failed read changed %s", tc.name, p.Name)
			}
		}
	}
}

func FuzzReadParams(f *testing.F) {
	params := func() []*Param { return []*Param{newParam("0.weight", 2, 3), newParam("0.bias", 2)} }
	var buf bytes.Buffer
	WriteParams(&buf, params())
	f.Add(buf.Bytes())
	f.Add([]byte("RDNN\x01\x00\x00\x00\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps := params()
		if err := ReadParams(bytes.NewReader(data), ps); err != nil {
			return
		}
		// Whatever was accepted writes out and reads back to the same values.
		var out bytes.Buffer
		if err := WriteParams(&out, ps); err != nil {
			t.Fatal(err)
		}
		again := params()
		if err := ReadParams(&out, again); err != nil {
			t.Fatal(err)
		}
		for i := range ps {
			if !equal32(ps[i].Value, again[i].Value) {
				t.Fatalf("%s does not round-trip", ps[i].Name)
			}
		}
	})
}

func TestFLOPs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	net := NewSequential(
		NewConv2d(3, 4, 3, 2, 0, rng), NewReLU(), NewFlatten(),
		NewSequential(NewLinear(4*3*3, 5, rng), NewLayerNorm(5), NewTanh()),
	)
	// Conv2d: out 2×4×3×3 = 72 values, each 2·3·3·3 + 1 = 55 flops; ReLU 72;
	// Linear 2×5 values of 2·36 + 1; LayerNorm 8·10; Tanh 10.
	want := int64(72*55 + 72 + 10*73 + 80 + 10)
	got, err := FLOPs(net, []int{2, 3, 7, 7})
	if err != nil || got != want {
		t.Fatalf("FLOPs = %d, %v; want %d", got, err, want)
	}
	if _, err := FLOPs(net, []int{2, 1, 7, 7}); err == nil {
		t.Error("FLOPs accepted an input with the wrong channel count")
	}
}
