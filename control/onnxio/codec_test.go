package onnxio

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"robodistill/control/nn"
	"robodistill/vision"
)

// smallNet is a tiny network with every exported layer kind, for codec tests and fuzz seeds.
func smallNet() *nn.Sequential {
	rng := rand.New(rand.NewPCG(1, 2))
	return nn.NewSequential(
		nn.NewConv2d(1, 2, 3, 2, 1, rng), nn.NewReLU(), nn.NewFlatten(),
		nn.NewLinear(2*2*2, 5, rng), nn.NewLayerNorm(5), nn.NewTanh(),
		nn.NewLinear(5, 2, rng),
	)
}

func smallManifest() Manifest {
	cfg := vision.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Channels, cfg.Mean, cfg.Std = 4, 4, vision.Gray, []float64{0}, []float64{1}
	return Manifest{
		Version: ManifestVersion, Kind: KindPolicy,
		Input:       Input{Name: "image", Shape: []int{1, 4, 4}, Vision: &cfg},
		Output:      Output{Name: "action", Shape: []int{2}, Meaning: "test"},
		Training:    Training{Labeler: "ground-truth"},
		CodeVersion: "test", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// smallModel is smallNet's export.
func smallModel(t testing.TB) *Model {
	t.Helper()
	model, _, err := Build(smallNet(), smallManifest())
	if err != nil {
		t.Fatal(err)
	}
	return model
}

func TestMarshalDecodeRoundTrip(t *testing.T) {
	model := smallModel(t)
	// Fields Export does not use, so that the round trip covers them too.
	model.Domain, model.ModelVersion, model.DocString = "org.example", 3, "doc"
	model.Graph.DocString = "graph doc"
	model.Graph.ValueInfo = []ValueInfo{
		{Name: "unknown-shape", Type: &TensorType{ElemType: Float}},
		{Name: "scalar", Type: &TensorType{ElemType: Int64, Shape: &Shape{}}, DocString: "d"},
		{Name: "no-type"},
		{Name: "dims", Type: &TensorType{ElemType: Float, Shape: &Shape{Dims: []Dim{DimValue(0), DimParam("B"), {}}}}},
	}
	model.Graph.Nodes[0].Attributes = append(model.Graph.Nodes[0].Attributes,
		Attribute{Name: "f", Type: AttrFloat, F: 0},
		Attribute{Name: "i", Type: AttrInt, I: -5},
		Attribute{Name: "s", Type: AttrString, S: []byte("text")},
		Attribute{Name: "fs", Type: AttrFloats, Floats: []float32{1.5, -2}},
		Attribute{Name: "ss", Type: AttrStrings, Strings: [][]byte{[]byte("a"), {}}},
		Attribute{Name: "t", Type: AttrTensor, T: &Tensor{Dims: []int64{2}, DataType: Int64, Int64Data: []int64{-1, 1 << 40}}},
	)
	model.Graph.Initializers = append(model.Graph.Initializers,
		Tensor{Name: "fd", Dims: []int64{2}, DataType: Float, FloatData: []float32{1, float32(math.Inf(-1))}, DocString: "x"},
		Tensor{Name: "i32", Dims: []int64{3}, DataType: Int32, Int32Data: []int32{-7, 0, 7}},
		Tensor{Name: "empty", Dims: []int64{0}, DataType: Float, RawData: []byte{}},
	)
	model.Graph.Nodes[0].Inputs = append(model.Graph.Nodes[0].Inputs, "") // an omitted optional input
	model.Graph.Nodes[0].Domain, model.Graph.Nodes[0].DocString = "ai.onnx", "node doc"

	b := model.Marshal()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, model) {
		t.Fatalf("round trip changed the model:\n got %+v\nwant %+v", got.Graph.Nodes[0], model.Graph.Nodes[0])
	}
	if b2 := got.Marshal(); !bytes.Equal(b, b2) {
		t.Fatal("re-encoding gives other bytes")
	}
	// Decode must not share memory with its input.
	for i := range b {
		b[i] = 0
	}
	if !reflect.DeepEqual(got, model) {
		t.Fatal("the decoded model changed when its input bytes did")
	}
}

// TestDecodeForeignEncodings feeds what other writers produce: packed dims and ints,
// unpacked float_data, unknown fields, fields out of order and a repeated graph field,
// which protobuf merges.
func TestDecodeForeignEncodings(t *testing.T) {
	var tensor []byte
	tensor = appendString(tensor, 8, "w")
	tensor = appendMessage(tensor, 1, protowire.AppendVarint(protowire.AppendVarint(nil, 2), 3)) // packed dims
	for _, f := range []float32{1, 2} {                                                          // unpacked float_data
		tensor = protowire.AppendTag(tensor, 4, protowire.Fixed32Type)
		tensor = protowire.AppendFixed32(tensor, math.Float32bits(f))
	}
	tensor = appendInt(tensor, 2, int64(Float))
	tensor = protowire.AppendTag(tensor, 99, protowire.Fixed64Type) // unknown
	tensor = protowire.AppendFixed64(tensor, 7)

	var attr []byte
	attr = appendString(attr, 1, "pads")
	attr = appendMessage(attr, 8, protowire.AppendVarint(protowire.AppendVarint(nil, 1), 2)) // packed ints
	attr = appendInt(attr, 20, int64(AttrInts))

	var node []byte
	node = appendString(node, 4, "Conv")
	node = appendMessage(node, 5, attr)
	node = appendString(node, 1, "x")

	var b []byte
	b = appendMessage(b, 7, appendMessage(nil, 5, tensor))
	b = protowire.AppendTag(b, 30, protowire.StartGroupType) // an unknown group, skipped
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 30, protowire.EndGroupType)
	b = appendMessage(b, 7, appendMessage(nil, 1, node)) // merges into the graph above
	b = appendInt(b, 1, 8)

	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &Model{IRVersion: 8, Graph: &Graph{
		Nodes:        []Node{{Inputs: []string{"x"}, OpType: "Conv", Attributes: []Attribute{{Name: "pads", Type: AttrInts, Ints: []int64{1, 2}}}}},
		Initializers: []Tensor{{Name: "w", Dims: []int64{2, 3}, FloatData: []float32{1, 2}, DataType: Float}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m.Graph, want.Graph)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := smallModel(t).Marshal()
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)-3], "malformed: "},
		{"bad tag", []byte{0x80}, "onnxio.Decode: malformed: ModelProto: unexpected EOF"},
		{"field 0", []byte{0x00}, "onnxio.Decode: malformed: ModelProto: invalid field number"},
		{"ir_version as bytes", appendMessage(nil, 1, nil), "onnxio.Decode: malformed: ModelProto field 1: wire type 2, want 0"},
		{"graph as varint", append(tag(7, protowire.VarintType), 1), "onnxio.Decode: malformed: ModelProto field 7: wire type 0, want 2"},
		{"packed floats of 3 bytes", appendMessage(nil, 7, appendMessage(nil, 5, appendMessage(nil, 4, []byte{1, 2, 3}))),
			"onnxio.Decode: malformed: TensorProto field 4: packed floats of 3 bytes"},
		{"dims as fixed64", appendMessage(nil, 7, appendMessage(nil, 5, protowire.AppendFixed64(tag(1, protowire.Fixed64Type), 1))),
			"onnxio.Decode: malformed: TensorProto field 1: wire type 1, want varint or packed"},
		{"length past the end", append(tag(2, protowire.BytesType), 5, 'a'), "onnxio.Decode: malformed: ModelProto field 2: unexpected EOF"},
		{"unmatched end group", tag(5, protowire.EndGroupType), "onnxio.Decode: malformed: ModelProto field 5: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(smallModel(f).Marshal())
	f.Add([]byte{})
	f.Add(appendMessage(nil, 7, appendMessage(nil, 11, appendMessage(nil, 2, appendMessage(nil, 1, appendMessage(nil, 2, appendMessage(nil, 1, nil)))))))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// Once normalised by a decode, encoding is stable: decode(encode(m)) encodes the same.
		b1 := m.Marshal()
		m2, err := Decode(b1)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if b2 := m2.Marshal(); !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable:\n%x\n%x", b1, b2)
		}
		_ = Describe(&bytes.Buffer{}, m)
		_, _, _ = Inspect(data)
	})
}
