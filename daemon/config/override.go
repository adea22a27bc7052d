package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ApplyOverrides sets keys from "key.path=value" strings (the daemon's repeated --set
// flag) and returns the validated result; c itself is not changed.
//
// The key path is checked against the same schema as the file ("loop.rate_hz",
// "safety.max_delta[3]", or a whole section); value is YAML, read like the file's value
// for that key: "loop.rate_hz=100", "models.policy=/x/policy.onnx",
// "safety.workspace.min=[-0.4, 0.4, 0.05]", "http.listen=" (empty: disable). Later
// overrides win over earlier ones.
func ApplyOverrides(c Config, overrides []string) (Config, error) {
	if err := applyOverrides(&c, nil, overrides); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// applyOverrides sets overrides in *c without validating; in lines (when not nil) it marks
// the keys it sets as having no line in the file.
func applyOverrides(c *Config, lines map[string]int, overrides []string) error {
	for _, o := range overrides {
		key, value, ok := strings.Cut(o, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return fmt.Errorf("override %q: want KEY=VALUE, e.g. loop.rate_hz=100", o)
		}
		if key == "version" {
			return fmt.Errorf("override %q: version: set it in the file", o)
		}
		field, err := lookup(reflect.ValueOf(c).Elem(), key)
		if err != nil {
			return fmt.Errorf("override %q: %w", o, err)
		}
		node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
		if strings.TrimSpace(value) != "" {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
				return fmt.Errorf("override %q: %s: value: %w", o, key, err)
			}
			if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
				return fmt.Errorf("override %q: %s: value is not one YAML value", o, key)
			}
			node = doc.Content[0]
		}
		// Decode into a copy so that a bad value leaves nothing half set.
		tmp := reflect.New(field.Type()).Elem()
		tmp.Set(field)
		d := decoder{}
		d.value(node, tmp, key)
		for _, e := range d.errs {
			e.Line = 0 // lines inside a one-line value mean nothing to the reader
		}
		if err := d.err(); err != nil {
			return fmt.Errorf("override %q: %w", o, err)
		}
		field.Set(tmp)
		if lines != nil {
			for k := range lines {
				if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
					delete(lines, k)
				}
			}
			lines[key] = -1 // set here, not in the file
		}
	}
	return nil
}

// lookup finds the value of key path key ("a.b", "a.b[2]") inside struct v.
func lookup(v reflect.Value, key string) (reflect.Value, error) {
	path := ""
	for _, part := range strings.Split(key, ".") {
		name, index, hasIndex := strings.Cut(part, "[")
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fieldErr(path, "has no keys below it (not a section)")
		}
		f, ok := fieldByKey(v, name)
		if !ok {
			return reflect.Value{}, fieldErr(joinKey(path, name), "unknown key (%s)", knownKeys(v.Type(), path))
		}
		path = joinKey(path, name)
		v = f
		if hasIndex {
			i, err := strconv.Atoi(strings.TrimSuffix(index, "]"))
			if !strings.HasSuffix(index, "]") || err != nil {
				return reflect.Value{}, fieldErr(path, "bad index in %q: want %s[N]", part, name)
			}
			if v.Kind() != reflect.Array {
				return reflect.Value{}, fieldErr(path, "is not a list")
			}
			if i < 0 || i >= v.Len() {
				return reflect.Value{}, fieldErr(path, "index %d out of range: it has %d numbers", i, v.Len())
			}
			path = fmt.Sprintf("%s[%d]", path, i)
			v = v.Index(i)
		}
	}
	return v, nil
}
