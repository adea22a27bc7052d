package onnxio

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrFormat means bytes are not a well-formed ONNX model (or, for a manifest, not a
// well-formed manifest). Decoding errors wrap it.
var ErrFormat = errors.New("malformed")

// Decode parses ONNX protobuf bytes into the fields this package knows; other fields are
// skipped, as protobuf readers do. Repeated numbers are accepted packed or unpacked. A
// field with the wrong wire type is an error. The result shares no memory with data.
func Decode(data []byte) (*Model, error) {
	m := &Model{}
	err := fields("ModelProto", data, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return varint(typ, b, &m.IRVersion)
		case 2:
			return str(typ, b, &m.ProducerName)
		case 3:
			return str(typ, b, &m.ProducerVersion)
		case 4:
			return str(typ, b, &m.Domain)
		case 5:
			return varint(typ, b, &m.ModelVersion)
		case 6:
			return str(typ, b, &m.DocString)
		case 7:
			if m.Graph == nil {
				m.Graph = &Graph{}
			}
			// A repeated occurrence of a message field merges into the first (protobuf rules).
			return message(typ, b, m.Graph.decode)
		case 8:
			var o OpsetID
			n, err := message(typ, b, func(b []byte) error {
				return fields("OperatorSetIdProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
					switch num {
					case 1:
						return str(typ, b, &o.Domain)
					case 2:
						return varint(typ, b, &o.Version)
					}
					return 0, nil
				})
			})
			m.OpsetImport = append(m.OpsetImport, o)
			return n, err
		case 14:
			var kv StringEntry
			n, err := message(typ, b, kv.decode)
			m.Metadata = append(m.Metadata, kv)
			return n, err
		}
		return 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnxio.Decode: %w", err)
	}
	return m, nil
}

func (kv *StringEntry) decode(b []byte) error {
	return fields("StringStringEntryProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return str(typ, b, &kv.Key)
		case 2:
			return str(typ, b, &kv.Value)
		}
		return 0, nil
	})
}

func (g *Graph) decode(b []byte) error {
	return fields("GraphProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			var n Node
			c, err := message(typ, b, n.decode)
			g.Nodes = append(g.Nodes, n)
			return c, err
		case 2:
			return str(typ, b, &g.Name)
		case 5:
			var t Tensor
			c, err := message(typ, b, t.decode)
			g.Initializers = append(g.Initializers, t)
			return c, err
		case 10:
			return str(typ, b, &g.DocString)
		case 11, 12, 13:
			var v ValueInfo
			c, err := message(typ, b, v.decode)
			switch num {
			case 11:
				g.Inputs = append(g.Inputs, v)
			case 12:
				g.Outputs = append(g.Outputs, v)
			default:
				g.ValueInfo = append(g.ValueInfo, v)
			}
			return c, err
		}
		return 0, nil
	})
}

func (n *Node) decode(b []byte) error {
	return fields("NodeProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1, 2:
			var s string
			c, err := str(typ, b, &s)
			if num == 1 {
				n.Inputs = append(n.Inputs, s)
			} else {
				n.Outputs = append(n.Outputs, s)
			}
			return c, err
		case 3:
			return str(typ, b, &n.Name)
		case 4:
			return str(typ, b, &n.OpType)
		case 5:
			var a Attribute
			c, err := message(typ, b, a.decode)
			n.Attributes = append(n.Attributes, a)
			return c, err
		case 6:
			return str(typ, b, &n.DocString)
		case 7:
			return str(typ, b, &n.Domain)
		}
		return 0, nil
	})
}

func (a *Attribute) decode(b []byte) error {
	return fields("AttributeProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return str(typ, b, &a.Name)
		case 2:
			var bits uint32
			c, err := fixed32(typ, b, &bits)
			a.F = math.Float32frombits(bits)
			return c, err
		case 3:
			return varint(typ, b, &a.I)
		case 4:
			return bytesField(typ, b, &a.S)
		case 5:
			if a.T == nil {
				a.T = &Tensor{}
			}
			return message(typ, b, a.T.decode)
		case 7:
			return floats(typ, b, &a.Floats)
		case 8:
			return int64s(typ, b, &a.Ints)
		case 9:
			var s []byte
			c, err := bytesField(typ, b, &s)
			a.Strings = append(a.Strings, s)
			return c, err
		case 20:
			var t int64
			c, err := varint(typ, b, &t)
			a.Type = AttrType(int32(t))
			return c, err
		}
		return 0, nil
	})
}

func (t *Tensor) decode(b []byte) error {
	return fields("TensorProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return int64s(typ, b, &t.Dims)
		case 2:
			var v int64
			c, err := varint(typ, b, &v)
			t.DataType = DataType(int32(v))
			return c, err
		case 4:
			return floats(typ, b, &t.FloatData)
		case 5:
			var vs []int64
			c, err := int64s(typ, b, &vs)
			for _, v := range vs {
				t.Int32Data = append(t.Int32Data, int32(v))
			}
			return c, err
		case 7:
			return int64s(typ, b, &t.Int64Data)
		case 8:
			return str(typ, b, &t.Name)
		case 9:
			return bytesField(typ, b, &t.RawData)
		case 12:
			return str(typ, b, &t.DocString)
		}
		return 0, nil
	})
}

func (v *ValueInfo) decode(b []byte) error {
	return fields("ValueInfoProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return str(typ, b, &v.Name)
		case 2:
			return message(typ, b, v.decodeType)
		case 3:
			return str(typ, b, &v.DocString)
		}
		return 0, nil
	})
}

// decodeType reads TypeProto, keeping only its tensor_type case.
func (v *ValueInfo) decodeType(b []byte) error {
	return fields("TypeProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			if v.Type == nil {
				v.Type = &TensorType{}
			}
			return message(typ, b, v.Type.decode)
		case 4, 5, 8, 9: // the oneof's other cases replace a tensor type
			if typ == protowire.BytesType {
				v.Type = nil
			}
		}
		return 0, nil
	})
}

func (tt *TensorType) decode(b []byte) error {
	return fields("TypeProto.Tensor", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			var v int64
			c, err := varint(typ, b, &v)
			tt.ElemType = DataType(int32(v))
			return c, err
		case 2:
			if tt.Shape == nil {
				tt.Shape = &Shape{}
			}
			return message(typ, b, tt.Shape.decode)
		}
		return 0, nil
	})
}

func (s *Shape) decode(b []byte) error {
	return fields("TensorShapeProto", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num != 1 {
			return 0, nil
		}
		var d Dim
		c, err := message(typ, b, d.decode)
		s.Dims = append(s.Dims, d)
		return c, err
	})
}

func (d *Dim) decode(b []byte) error {
	return fields("TensorShapeProto.Dimension", b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		// dim_value and dim_param are a oneof: the last one seen wins.
		switch num {
		case 1:
			var v int64
			c, err := varint(typ, b, &v)
			*d = DimValue(v)
			return c, err
		case 2:
			var s string
			c, err := str(typ, b, &s)
			*d = DimParam(s)
			return c, err
		}
		return 0, nil
	})
}

// fields calls fn for each field of the message in b. fn returns how many bytes of the
// field's value it consumed, or 0 to have the field skipped.
func fields(msg string, b []byte, fn func(num protowire.Number, typ protowire.Type, b []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %s: %s", ErrFormat, msg, parseMsg(n))
		}
		b = b[n:]
		c, err := fn(num, typ, b)
		if err != nil {
			var we wireError
			if errors.As(err, &we) {
				return fmt.Errorf("%w: %s field %d: %s", ErrFormat, msg, num, we.why)
			}
			return err
		}
		if c == 0 {
			if c = protowire.ConsumeFieldValue(num, typ, b); c < 0 {
				return fmt.Errorf("%w: %s field %d: %s", ErrFormat, msg, num, parseMsg(c))
			}
		}
		b = b[c:]
	}
	return nil
}

// wireError is a problem with one field's value; fields adds the message and field number.
type wireError struct{ why string }

func (e wireError) Error() string { return e.why }

func wantType(typ, want protowire.Type) error {
	if typ != want {
		return wireError{fmt.Sprintf("wire type %d, want %d", typ, want)}
	}
	return nil
}

func parseErr(n int) error { return wireError{parseMsg(n)} }

// parseMsg is protowire's message for a negative length, without the "proto:" prefix,
// which the protobuf module follows with a space or a no-break space at random (so that
// nobody matches its messages).
func parseMsg(n int) string {
	s := protowire.ParseError(n).Error()
	if rest, ok := strings.CutPrefix(s, "proto:"); ok {
		s = strings.TrimLeft(rest, " \u00a0")
	}
	return s
}

func varint(typ protowire.Type, b []byte, v *int64) (int, error) {
	if err := wantType(typ, protowire.VarintType); err != nil {
		return 0, err
	}
	x, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, parseErr(n)
	}
	*v = int64(x)
	return n, nil
}

func fixed32(typ protowire.Type, b []byte, v *uint32) (int, error) {
	if err := wantType(typ, protowire.Fixed32Type); err != nil {
		return 0, err
	}
	x, n := protowire.ConsumeFixed32(b)
	if n < 0 {
		return 0, parseErr(n)
	}
	*v = x
	return n, nil
}

func bytesField(typ protowire.Type, b []byte, v *[]byte) (int, error) {
	if err := wantType(typ, protowire.BytesType); err != nil {
		return 0, err
	}
	x, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, parseErr(n)
	}
	*v = bytes.Clone(x)
	if *v == nil {
		*v = []byte{}
	}
	return n, nil
}

func str(typ protowire.Type, b []byte, v *string) (int, error) {
	if err := wantType(typ, protowire.BytesType); err != nil {
		return 0, err
	}
	x, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, parseErr(n)
	}
	*v = string(x)
	return n, nil
}

// message decodes a length-delimited submessage with dec.
func message(typ protowire.Type, b []byte, dec func([]byte) error) (int, error) {
	if err := wantType(typ, protowire.BytesType); err != nil {
		return 0, err
	}
	x, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, parseErr(n)
	}
	return n, dec(x)
}

// int64s appends one varint, or a packed run of them.
func int64s(typ protowire.Type, b []byte, vs *[]int64) (int, error) {
	switch typ {
	case protowire.VarintType:
		var v int64
		n, err := varint(typ, b, &v)
		*vs = append(*vs, v)
		return n, err
	case protowire.BytesType:
		p, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, parseErr(n)
		}
		for len(p) > 0 {
			x, m := protowire.ConsumeVarint(p)
			if m < 0 {
				return 0, parseErr(m)
			}
			*vs = append(*vs, int64(x))
			p = p[m:]
		}
		return n, nil
	}
	return 0, wireError{fmt.Sprintf("wire type %d, want varint or packed", typ)}
}

// floats appends one fixed32 float, or a packed run of them.
func floats(typ protowire.Type, b []byte, vs *[]float32) (int, error) {
	switch typ {
	case protowire.Fixed32Type:
		var bits uint32
		n, err := fixed32(typ, b, &bits)
		*vs = append(*vs, math.Float32frombits(bits))
		return n, err
	case protowire.BytesType:
		p, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, parseErr(n)
		}
		if len(p)%4 != 0 {
			return 0, wireError{fmt.Sprintf("packed floats of %d bytes", len(p))}
		}
		for i := 0; i < len(p); i += 4 {
			x, _ := protowire.ConsumeFixed32(p[i:])
			*vs = append(*vs, math.Float32frombits(x))
		}
		return n, nil
	}
	return 0, wireError{fmt.Sprintf("wire type %d, want fixed32 or packed", typ)}
}
