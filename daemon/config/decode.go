package config

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The file is decoded by walking yaml.v3's node tree against Config's type rather than by
// yaml.Unmarshal with KnownFields: Unmarshal's errors name Go types ("field rat_hz not
// found in type config.Loop", "cannot unmarshal !!str `abc` into int") where the reader
// needs key paths, and it quietly truncates 1.5 into an int and reads yes/no as booleans.
// The walk rejects what KnownFields rejects (FuzzParse checks that whatever it accepts,
// yaml.v3 with KnownFields decodes to the same Config) and is stricter about scalars.

// Load reads the file at path and parses it (Parse). Errors start with the path.
func Load(path string) (Config, error) { return LoadWithOverrides(path, nil) }

// LoadWithOverrides reads the file at path, applies overrides ("key.path=value", as
// ApplyOverrides) and validates the result once, so that an override may repair a value
// the file gets wrong (a model path on a development machine, say).
func LoadWithOverrides(path string, overrides []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, lines, err := decode(data)
	if err == nil {
		err = applyOverrides(&c, lines, overrides)
	}
	if err == nil {
		err = validateWithLines(c, lines)
	}
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration from YAML over Default and validates it. The document must
// be one mapping with "version: 1"; unknown keys, duplicate keys and values of the wrong
// type are errors naming the key path and line.
func Parse(data []byte) (Config, error) {
	c, lines, err := decode(data)
	if err == nil {
		err = validateWithLines(c, lines)
	}
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// validateWithLines validates c and gives each error the line of its key, or of the
// nearest enclosing key the file sets (a default inside a section the file has).
func validateWithLines(c Config, lines map[string]int) error {
	fe := c.validate()
	for _, e := range fe {
		for k := e.Key; k != ""; k = parentKey(k) {
			if line, ok := lines[k]; ok {
				e.Line = max(line, 0) // overridden keys have no line (-1)
				break
			}
		}
	}
	// In file order; problems with defaults (no line) last.
	order := func(e *FieldError) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(fe, func(a, b *FieldError) int { return cmp.Compare(order(a), order(b)) })
	return joinFieldErrors(fe)
}

// parentKey is "a.b" for "a.b.c" and for "a.b[2]"; "" for "a".
func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i >= 0 {
		return k[:i]
	}
	return ""
}

// maxErrors bounds how many decoding errors one document reports.
const maxErrors = 20

// decode reads data over Default without validating it; lines maps each key path the
// file sets to its line.
func decode(data []byte) (Config, map[string]int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return Config{}, nil, fieldErr("version", "required, and the file is empty (start it with \"version: %d\")", Version)
	} else if err != nil {
		return Config{}, nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Config{}, nil, fmt.Errorf("line %d: a second YAML document (---): the configuration is one document", extra.Line)
	} else if err != io.EOF {
		return Config{}, nil, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, nil, fmt.Errorf("line %d: the configuration must be a mapping of keys (version: %d, ros: …), got %s", root.Line, Version, describe(root))
	}
	if err := checkVersion(root); err != nil {
		return Config{}, nil, err
	}
	c := Default()
	d := decoder{lines: map[string]int{}}
	d.value(root, reflect.ValueOf(&c).Elem(), "")
	if err := d.err(); err != nil {
		return Config{}, nil, err
	}
	return c, d.lines, nil
}

// checkVersion refuses a document whose version is missing or not Version before anything
// else is read: another version's keys may mean other things.
func checkVersion(root *yaml.Node) error {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "version" {
			var v int
			d := decoder{}
			d.value(root.Content[i+1], reflect.ValueOf(&v).Elem(), "version")
			if err := d.err(); err != nil {
				return err
			}
			if v != Version {
				return &FieldError{Key: "version", Line: k.Line, Msg: fmt.Sprintf("%d is not supported (this build reads version %d)", v, Version)}
			}
			return nil
		}
	}
	return &FieldError{Key: "version", Line: root.Line, Msg: fmt.Sprintf("required (this build reads \"version: %d\")", Version)}
}

// decoder walks a yaml node against a Go value of the schema, collecting errors.
type decoder struct {
	lines map[string]int // key path → line, when not nil
	errs  []*FieldError
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	if len(d.errs) <= maxErrors {
		d.errs = append(d.errs, &FieldError{Key: key, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
	}
}

func (d *decoder) err() error {
	if len(d.errs) > maxErrors {
		d.errs = append(d.errs[:maxErrors], &FieldError{Key: d.errs[maxErrors].Key, Line: d.errs[maxErrors].Line, Msg: "too many errors, stopping"})
	}
	return joinFieldErrors(d.errs)
}

var durationType = reflect.TypeOf(time.Duration(0))

// value decodes n into v; key is v's path ("" for the root).
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	if d.lines != nil && key != "" {
		if _, ok := d.lines[key]; !ok { // mapping records keys at their key's line
			d.lines[key] = n.Line
		}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, key, "alias to nothing")
			return
		}
		n = n.Alias // an anchor cannot name an alias, so one step is enough
	}
	scalar := n.Kind == yaml.ScalarNode
	tag := n.ShortTag()
	switch {
	case v.Type() == durationType:
		if !scalar || tag != "!!str" {
			d.fail(n, key, "want a duration such as \"100ms\", got %s", describe(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, key, "want a duration such as \"100ms\", got %q", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, key)
	case v.Kind() == reflect.Array:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, key, "want a list of %d numbers, got %s", v.Len(), describe(n))
			return
		}
		if len(n.Content) != v.Len() {
			d.fail(n, key, "want %d numbers, got %d", v.Len(), len(n.Content))
			return
		}
		for i, item := range n.Content {
			d.value(item, v.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
	case v.Kind() == reflect.String:
		if !scalar || tag != "!!str" {
			d.fail(n, key, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case v.Kind() == reflect.Bool:
		var b bool
		if !scalar || tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, key, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		var i int64
		if !scalar || tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(n, key, "want an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case v.Kind() == reflect.Float64:
		var f float64
		if !scalar || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n, key, "want a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: no decoding for %s at %q", v.Type(), key))
	}
}

// mapping decodes a mapping node into struct v. A null section (a key with nothing under
// it) keeps its defaults.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && key != "" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of keys (%s), got %s", strings.Join(keysOf(v.Type()), ", "), describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, key, "keys must be names, got %s", describe(k))
			continue
		}
		path := joinKey(key, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(k, path, "duplicate key (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByKey(v, k.Value)
		if !ok {
			d.fail(k, path, "unknown key (%s)", knownKeys(v.Type(), key))
			continue
		}
		if d.lines != nil {
			d.lines[path] = k.Line
		}
		d.value(val, f, path)
	}
}

func joinKey(parent, k string) string {
	if parent == "" {
		return k
	}
	return parent + "." + k
}

// fieldByKey is the field of struct v whose yaml tag is k.
func fieldByKey(v reflect.Value, k string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == k {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func keysOf(t reflect.Type) []string {
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = yamlKey(t.Field(i))
	}
	return keys
}

func knownKeys(t reflect.Type, parent string) string {
	where := "top-level keys"
	if parent != "" {
		where = parent + " has"
	}
	return where + ": " + strings.Join(keysOf(t), ", ")
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return fmt.Sprintf("a list of %d", len(n.Content))
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	case 0:
		return "nothing"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null (remove the key to get its default)"
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int", "!!float", "!!bool":
		return n.Value
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
}

// Paths lists every key path of the schema, depth first in file order (sections, then
// their keys; arrays are leaves).
func Paths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			p := joinKey(prefix, yamlKey(f))
			out = append(out, p)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}
