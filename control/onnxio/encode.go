package onnxio

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Marshal encodes the model as ONNX protobuf bytes. Fields are written in field-number
// order and zero-valued optional scalars are left out, so equal models give equal bytes.
// Repeated integers are written unpacked, as proto2 (onnx.proto's syntax) declares them,
// except the fields onnx.proto marks [packed = true].
func (m *Model) Marshal() []byte {
	var b []byte
	b = appendInt(b, 1, m.IRVersion)
	b = appendString(b, 2, m.ProducerName)
	b = appendString(b, 3, m.ProducerVersion)
	b = appendString(b, 4, m.Domain)
	b = appendInt(b, 5, m.ModelVersion)
	b = appendString(b, 6, m.DocString)
	if m.Graph != nil {
		b = appendMessage(b, 7, m.Graph.marshal(nil))
	}
	for _, o := range m.OpsetImport {
		var e []byte
		e = appendString(e, 1, o.Domain)
		e = appendInt(e, 2, o.Version)
		b = appendMessage(b, 8, e)
	}
	for _, kv := range m.Metadata {
		b = appendMessage(b, 14, kv.marshal(nil))
	}
	return b
}

func (kv StringEntry) marshal(b []byte) []byte {
	b = appendString(b, 1, kv.Key)
	return appendString(b, 2, kv.Value)
}

func (g *Graph) marshal(b []byte) []byte {
	for i := range g.Nodes {
		b = appendMessage(b, 1, g.Nodes[i].marshal(nil))
	}
	b = appendString(b, 2, g.Name)
	for i := range g.Initializers {
		b = appendMessage(b, 5, g.Initializers[i].marshal(nil))
	}
	b = appendString(b, 10, g.DocString)
	for i := range g.Inputs {
		b = appendMessage(b, 11, g.Inputs[i].marshal(nil))
	}
	for i := range g.Outputs {
		b = appendMessage(b, 12, g.Outputs[i].marshal(nil))
	}
	for i := range g.ValueInfo {
		b = appendMessage(b, 13, g.ValueInfo[i].marshal(nil))
	}
	return b
}

func (n *Node) marshal(b []byte) []byte {
	for _, s := range n.Inputs {
		b = appendStringAlways(b, 1, s) // an empty input name means "omitted" and keeps its place
	}
	for _, s := range n.Outputs {
		b = appendStringAlways(b, 2, s)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for i := range n.Attributes {
		b = appendMessage(b, 5, n.Attributes[i].marshal(nil))
	}
	b = appendString(b, 6, n.DocString)
	return appendString(b, 7, n.Domain)
}

func (a *Attribute) marshal(b []byte) []byte {
	b = appendString(b, 1, a.Name)
	if a.F != 0 || a.Type == AttrFloat {
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	}
	if a.I != 0 || a.Type == AttrInt {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	}
	if a.S != nil || a.Type == AttrString {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	}
	if a.T != nil {
		b = appendMessage(b, 5, a.T.marshal(nil))
	}
	for _, f := range a.Floats { // repeated float floats = 7 (unpacked in proto2)
		b = protowire.AppendTag(b, 7, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(f))
	}
	for _, v := range a.Ints {
		b = protowire.AppendTag(b, 8, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	for _, s := range a.Strings {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	if a.Type != 0 {
		b = protowire.AppendTag(b, 20, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(a.Type)))
	}
	return b
}

func (t *Tensor) marshal(b []byte) []byte {
	for _, d := range t.Dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = appendInt(b, 2, int64(t.DataType))
	if len(t.FloatData) > 0 { // [packed = true]
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(4*len(t.FloatData)))
		for _, f := range t.FloatData {
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	}
	if len(t.Int32Data) > 0 { // [packed = true]
		var p []byte
		for _, v := range t.Int32Data {
			p = protowire.AppendVarint(p, uint64(int64(v)))
		}
		b = appendMessage(b, 5, p)
	}
	if len(t.Int64Data) > 0 { // [packed = true]
		var p []byte
		for _, v := range t.Int64Data {
			p = protowire.AppendVarint(p, uint64(v))
		}
		b = appendMessage(b, 7, p)
	}
	b = appendString(b, 8, t.Name)
	if t.RawData != nil {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendBytes(b, t.RawData)
	}
	return appendString(b, 12, t.DocString)
}

func (v *ValueInfo) marshal(b []byte) []byte {
	b = appendString(b, 1, v.Name)
	if v.Type != nil {
		// TypeProto { Tensor tensor_type = 1 { int32 elem_type = 1; TensorShapeProto shape = 2 } }
		var tt []byte
		tt = appendInt(tt, 1, int64(v.Type.ElemType))
		if v.Type.Shape != nil {
			var sh []byte
			for _, d := range v.Type.Shape.Dims {
				sh = appendMessage(sh, 1, d.marshal(nil))
			}
			tt = appendMessage(tt, 2, sh)
		}
		b = appendMessage(b, 2, appendMessage(nil, 1, tt))
	}
	return appendString(b, 3, v.DocString)
}

func (d Dim) marshal(b []byte) []byte {
	switch {
	case d.HasValue:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d.Value))
	case d.Param != "":
		b = appendStringAlways(b, 2, d.Param)
	}
	return b
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringAlways(b, num, s)
}

func appendStringAlways(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendMessage writes an encoded submessage (or packed field) as a length-delimited field.
// An empty message is still written: its presence can matter (an empty shape is a scalar).
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
