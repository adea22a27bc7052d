package runtime

import (
	"cmp"
	"errors"
	"slices"

	onnxgo "github.com/owulveryck/onnx-go"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/iterator"
	"gonum.org/v1/gonum/graph/simple"
	"gorgonia.org/tensor"
)

// decoded is the onnx-go Backend the decoder fills: one node per ONNX value (graph input,
// initializer, node output), an edge from each node output to each of its inputs weighted
// by the input's position, and the operations in the order of the graph's nodes. It only
// records; compile turns it into steps.
//
// Unlike gonum's simple graphs (and so onnx-go's Gorgonia backend) it keeps every edge,
// also a second one between the same two values: Mul(d, d) has two inputs here.
type decoded struct {
	nodes []*vnode
	ops   []decodedOp
}

type decodedOp struct {
	op      onnxgo.Operation
	outputs []*vnode
}

// vnode is a value of the graph.
type vnode struct {
	id    int64
	name  string
	t     tensor.Tensor // initializer, or the decoder's placeholder for inputs and outputs
	edges []simple.WeightedEdge
	op    int // index into decoded.ops of the producer, or -1
}

var _ onnxgo.Backend = (*decoded)(nil)

var errForeignNode = errors.New("decoded graph: an operation on a node that NewNode did not make")

// ID implements graph.Node.
func (n *vnode) ID() int64 { return n.id }

// SetName implements onnxgo.Namer.
func (n *vnode) SetName(s string) { n.name = s }

// GetName implements onnxgo.Namer.
func (n *vnode) GetName() string { return n.name }

// SetTensor implements onnxgo.DataCarrier.
func (n *vnode) SetTensor(t tensor.Tensor) error {
	n.t = t
	return nil
}

// GetTensor implements onnxgo.DataCarrier.
func (n *vnode) GetTensor() tensor.Tensor { return n.t }

// ApplyOperation implements onnxgo.OperationCarrier: it records the operation; whether it
// is supported is decided when compiling, where the node's name is known.
func (d *decoded) ApplyOperation(o onnxgo.Operation, outputs ...graph.Node) error {
	op := decodedOp{op: o}
	for _, n := range outputs {
		v, ok := n.(*vnode)
		if !ok {
			return errForeignNode
		}
		op.outputs = append(op.outputs, v)
	}
	d.ops = append(d.ops, op)
	return nil
}

// inputs are the values an operation reads, in order: the edges of its first output
// sorted by weight (the decoder weights the i-th input's edge i).
func (d *decoded) inputs(op decodedOp) []*vnode {
	if len(op.outputs) == 0 {
		return nil
	}
	edges := slices.Clone(op.outputs[0].edges)
	slices.SortStableFunc(edges, func(a, b simple.WeightedEdge) int { return cmp.Compare(a.W, b.W) })
	in := make([]*vnode, len(edges))
	for i, e := range edges {
		in[i] = e.T.(*vnode)
	}
	return in
}

// NewNode implements graph.NodeAdder.
func (d *decoded) NewNode() graph.Node { return &vnode{id: int64(len(d.nodes)), op: -1} }

// AddNode implements graph.NodeAdder.
func (d *decoded) AddNode(n graph.Node) {
	v, ok := n.(*vnode)
	if !ok || v.id != int64(len(d.nodes)) {
		panic("decoded graph: nodes must come from NewNode and be added in order")
	}
	d.nodes = append(d.nodes, v)
}

// NewWeightedEdge implements graph.WeightedEdgeAdder.
func (d *decoded) NewWeightedEdge(from, to graph.Node, w float64) graph.WeightedEdge {
	return simple.WeightedEdge{F: from, T: to, W: w}
}

// SetWeightedEdge implements graph.WeightedEdgeAdder. Every edge is kept.
func (d *decoded) SetWeightedEdge(e graph.WeightedEdge) {
	from, ok1 := e.From().(*vnode)
	to, ok2 := e.To().(*vnode)
	if !ok1 || !ok2 {
		panic("decoded graph: edge between foreign nodes")
	}
	from.edges = append(from.edges, simple.WeightedEdge{F: from, T: to, W: e.Weight()})
}

// Node implements graph.Graph.
func (d *decoded) Node(id int64) graph.Node {
	if id < 0 || id >= int64(len(d.nodes)) {
		return nil
	}
	return d.nodes[id]
}

// Nodes implements graph.Graph.
func (d *decoded) Nodes() graph.Nodes {
	ns := make([]graph.Node, len(d.nodes))
	for i, n := range d.nodes {
		ns[i] = n
	}
	return iterator.NewOrderedNodes(ns)
}

// From implements graph.Graph: the inputs of the operation that computes id.
func (d *decoded) From(id int64) graph.Nodes {
	n, ok := d.Node(id).(*vnode)
	if !ok {
		return graph.Empty
	}
	var ns []graph.Node
	for _, e := range n.edges {
		ns = append(ns, e.T)
	}
	return iterator.NewOrderedNodes(ns)
}

// To implements graph.Directed: the values computed from id.
func (d *decoded) To(id int64) graph.Nodes {
	var ns []graph.Node
	for _, n := range d.nodes {
		for _, e := range n.edges {
			if e.T.ID() == id {
				ns = append(ns, n)
				break
			}
		}
	}
	return iterator.NewOrderedNodes(ns)
}

// HasEdgeBetween implements graph.Graph.
func (d *decoded) HasEdgeBetween(xid, yid int64) bool {
	return d.HasEdgeFromTo(xid, yid) || d.HasEdgeFromTo(yid, xid)
}

// Edge implements graph.Graph.
func (d *decoded) Edge(uid, vid int64) graph.Edge {
	if n, ok := d.Node(uid).(*vnode); ok {
		for _, e := range n.edges {
			if e.T.ID() == vid {
				return e
			}
		}
	}
	return nil
}

// HasEdgeFromTo implements graph.Directed.
func (d *decoded) HasEdgeFromTo(uid, vid int64) bool { return d.Edge(uid, vid) != nil }
