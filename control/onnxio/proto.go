package onnxio

// The subset of onnx.proto (ONNX 1.12, proto2 syntax) this package writes and reads, as
// plain Go values. Field numbers are onnx.proto's; they are listed next to each encoder.
// Messages and fields not declared here are skipped on decoding and never written.

// DataType is TensorProto.DataType.
type DataType int32

// DataType values this package uses (onnx.proto has more).
const (
	Undefined DataType = 0
	Float     DataType = 1
	Int32     DataType = 6
	Int64     DataType = 7
)

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// AttrType values this package reads and writes.
const (
	AttrFloat   AttrType = 1
	AttrInt     AttrType = 2
	AttrString  AttrType = 3
	AttrTensor  AttrType = 4
	AttrFloats  AttrType = 6
	AttrInts    AttrType = 7
	AttrStrings AttrType = 8
)

// Model is ModelProto.
type Model struct {
	IRVersion       int64 // 1
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *Graph
	OpsetImport     []OpsetID
	Metadata        []StringEntry // metadata_props
}

// OpsetID is OperatorSetIdProto. An empty Domain is the default "ai.onnx" domain.
type OpsetID struct {
	Domain  string
	Version int64
}

// StringEntry is StringStringEntryProto.
type StringEntry struct {
	Key, Value string
}

// Graph is GraphProto (without sparse initializers and quantization annotations).
type Graph struct {
	Nodes        []Node
	Name         string
	Initializers []Tensor
	DocString    string
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	ValueInfo    []ValueInfo
}

// Node is NodeProto.
type Node struct {
	Inputs     []string
	Outputs    []string
	Name       string
	OpType     string
	Attributes []Attribute
	DocString  string
	Domain     string
}

// Attribute is AttributeProto for the scalar, string, tensor and list kinds. Type says
// which value field is meant; the encoder writes that field even when it holds its zero
// value (the ONNX checker wants exactly one value field present).
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings [][]byte
}

// Tensor is TensorProto with its float, int32, int64 and raw data fields. Values written by
// this package are in RawData (little-endian), as ONNX recommends for initializers.
type Tensor struct {
	Dims      []int64
	DataType  DataType
	FloatData []float32
	Int32Data []int32
	Int64Data []int64
	Name      string
	RawData   []byte
	DocString string
}

// ValueInfo is ValueInfoProto. Type is nil when the proto has no type or a non-tensor one
// (sequences, maps, optionals), which this package does not describe.
type ValueInfo struct {
	Name      string
	Type      *TensorType
	DocString string
}

// TensorType is TypeProto.Tensor. Shape is nil when the shape is unknown (absent), and an
// empty Shape for a scalar.
type TensorType struct {
	ElemType DataType
	Shape    *Shape
}

// Shape is TensorShapeProto.
type Shape struct {
	Dims []Dim
}

// Dim is TensorShapeProto.Dimension: a fixed size (HasValue), a symbolic name (Param), or
// neither (an unknown size).
type Dim struct {
	Value    int64
	Param    string
	HasValue bool
}

// DimValue is a fixed dimension.
func DimValue(n int64) Dim { return Dim{Value: n, HasValue: true} }

// DimParam is a symbolic dimension such as the batch size.
func DimParam(name string) Dim { return Dim{Param: name} }

// MetadataValue returns the value of a metadata_props key.
func (m *Model) MetadataValue(key string) (string, bool) {
	for _, e := range m.Metadata {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// Opset is the version imported for the default domain, or 0.
func (m *Model) Opset() int64 {
	for _, o := range m.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// Ops lists the distinct op types of the graph's nodes in the order they first appear.
func (g *Graph) Ops() []string {
	var ops []string
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if !seen[n.OpType] {
			seen[n.OpType] = true
			ops = append(ops, n.OpType)
		}
	}
	return ops
}
