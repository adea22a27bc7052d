package onnxio

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Inspect decodes a model written by Export and returns it with its embedded manifest,
// after checking that the graph has the manifest's input and output (ErrMismatch).
func Inspect(data []byte) (*Model, *Manifest, error) {
	model, err := Decode(data)
	if err != nil {
		return nil, nil, err
	}
	v, ok := model.MetadataValue(MetadataVersionKey)
	if !ok {
		return nil, nil, fmt.Errorf("onnxio.Inspect: %w: no %s metadata (not exported by robodistill?)", ErrFormat, MetadataVersionKey)
	}
	if v != strconv.Itoa(ManifestVersion) {
		return nil, nil, fmt.Errorf("onnxio.Inspect: %w: manifest version %q, this build reads %d", ErrFormat, v, ManifestVersion)
	}
	js, ok := model.MetadataValue(MetadataKey)
	if !ok {
		return nil, nil, fmt.Errorf("onnxio.Inspect: %w: no %s metadata", ErrFormat, MetadataKey)
	}
	m, err := ParseManifest([]byte(js))
	if err != nil {
		return nil, nil, fmt.Errorf("onnxio.Inspect: embedded manifest: %w", err)
	}
	if err := checkGraph(model, m); err != nil {
		return nil, nil, fmt.Errorf("onnxio.Inspect: %w: %v", ErrMismatch, err)
	}
	return model, m, nil
}

// checkGraph compares the graph's signature with the manifest.
func checkGraph(model *Model, m *Manifest) error {
	g := model.Graph
	if g == nil {
		return fmt.Errorf("the model has no graph")
	}
	if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return fmt.Errorf("the graph has %d inputs and %d outputs, want 1 and 1", len(g.Inputs), len(g.Outputs))
	}
	if err := checkValue("input", g.Inputs[0], m.Input.Name, m.Input.Shape); err != nil {
		return err
	}
	return checkValue("output", g.Outputs[0], m.Output.Name, m.Output.Shape)
}

func checkValue(what string, v ValueInfo, name string, perSample []int) error {
	if v.Name != name {
		return fmt.Errorf("graph %s %q, manifest %s.name %q", what, v.Name, what, name)
	}
	want := valueInfo(name, perSample).Type
	if v.Type == nil || v.Type.ElemType != want.ElemType || v.Type.Shape == nil || !slices.Equal(v.Type.Shape.Dims, want.Shape.Dims) {
		return fmt.Errorf("graph %s %q is not float32 %v with batch dimension %q, as manifest %s.shape says", what, name, perSample, BatchDim, what)
	}
	return nil
}

// Describe writes a readable summary of a model: header, signature, nodes with their
// attributes, initializers' shapes and metadata keys. Values are left out, so the summary
// of an export does not depend on the weights (or on the BLAS that computed its golden
// output).
func Describe(w io.Writer, m *Model) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ir_version %d, opset %d, producer %q %q\n", m.IRVersion, m.Opset(), m.ProducerName, m.ProducerVersion)
	if g := m.Graph; g != nil {
		fmt.Fprintf(&b, "graph %q: ops %s\n", g.Name, strings.Join(g.Ops(), " "))
		for _, v := range g.Inputs {
			fmt.Fprintf(&b, "input  %s %s\n", v.Name, typeString(v.Type))
		}
		for _, v := range g.Outputs {
			fmt.Fprintf(&b, "output %s %s\n", v.Name, typeString(v.Type))
		}
		for _, n := range g.Nodes {
			fmt.Fprintf(&b, "node %s: %s(%s) -> %s", n.Name, n.OpType, strings.Join(n.Inputs, ", "), strings.Join(n.Outputs, ", "))
			for _, a := range n.Attributes {
				fmt.Fprintf(&b, " %s=%s", a.Name, attrString(a))
			}
			b.WriteByte('\n')
		}
		for _, t := range g.Initializers {
			fmt.Fprintf(&b, "initializer %s %s %v (%d raw bytes)\n", t.Name, dtypeString(t.DataType), t.Dims, len(t.RawData))
		}
	}
	for _, e := range m.Metadata {
		fmt.Fprintf(&b, "metadata %s\n", e.Key)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dtypeString(t DataType) string {
	switch t {
	case Float:
		return "float32"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	}
	return "dtype" + strconv.Itoa(int(t))
}

func typeString(t *TensorType) string {
	if t == nil {
		return "(not a tensor)"
	}
	if t.Shape == nil {
		return dtypeString(t.ElemType) + " [?]"
	}
	var dims []string
	for _, d := range t.Shape.Dims {
		switch {
		case d.HasValue:
			dims = append(dims, strconv.FormatInt(d.Value, 10))
		case d.Param != "":
			dims = append(dims, d.Param)
		default:
			dims = append(dims, "?")
		}
	}
	return dtypeString(t.ElemType) + " [" + strings.Join(dims, " ") + "]"
}

func attrString(a Attribute) string {
	switch a.Type {
	case AttrFloat:
		return strconv.FormatFloat(float64(a.F), 'g', -1, 32)
	case AttrInt:
		return strconv.FormatInt(a.I, 10)
	case AttrString:
		return strconv.Quote(string(a.S))
	case AttrFloats:
		return fmt.Sprint(a.Floats)
	case AttrInts:
		return fmt.Sprint(a.Ints)
	case AttrTensor:
		return "tensor"
	case AttrStrings:
		return fmt.Sprintf("%q", a.Strings)
	}
	return "type" + strconv.Itoa(int(a.Type))
}
