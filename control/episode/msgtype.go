package episode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/bluenviron/goroslib/v2/pkg/msgproc"
	"github.com/bluenviron/goroslib/v2/pkg/protocommon"
)

// msgType is what a connection record says about a goroslib message type.
type msgType struct {
	name, md5, definition string
}

var msgTypes sync.Map // reflect.Type -> *msgType

// typeOf describes m, a pointer to a goroslib message struct (computed once per type).
func typeOf(m any) (*msgType, error) {
	rt := reflect.TypeOf(m)
	if rt == nil || rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("message %T is not a pointer to a message struct", m)
	}
	if t, ok := msgTypes.Load(rt); ok {
		return t.(*msgType), nil
	}
	// msgproc takes the struct value, not the pointer.
	v := reflect.Zero(rt.Elem()).Interface()
	name, err := msgproc.Type(v)
	if err != nil {
		return nil, fmt.Errorf("message type of %T: %w", m, err)
	}
	md5, err := msgproc.MD5(v)
	if err != nil {
		return nil, fmt.Errorf("md5 of %s: %w", name, err)
	}
	def, err := msgproc.Definition(v)
	if err != nil {
		return nil, fmt.Errorf("definition of %s: %w", name, err)
	}
	// Writers compare types by pointer: when two goroutines describe a type at once, both
	// must get the one that was stored first.
	t, _ := msgTypes.LoadOrStore(rt, &msgType{name: name, md5: md5, definition: def})
	return t.(*msgType), nil
}

// encodeMsg serializes m as a bag's message data (ROS serialization, no length prefix).
func encodeMsg(buf *bytes.Buffer, m any) ([]byte, error) {
	buf.Reset()
	if err := protocommon.MessageEncode(buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes()[4:], nil
}

// decodeMsg decodes message data into dst (a pointer to a goroslib message struct).
func decodeMsg(data []byte, dst any) error {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(data)))
	return protocommon.MessageDecode(&prefixed{n: n, data: data}, dst)
}

// prefixed reads a 4-byte length and then data, as MessageDecode expects.
type prefixed struct {
	n    [4]byte
	data []byte
	pos  int
}

func (p *prefixed) Read(b []byte) (int, error) {
	if p.pos >= 4+len(p.data) {
		return 0, io.EOF
	}
	var n int
	if p.pos < 4 {
		n = copy(b, p.n[p.pos:])
	} else {
		n = copy(b, p.data[p.pos-4:])
	}
	p.pos += n
	return n, nil
}
