package config

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse checks that Parse never panics and either returns a valid configuration or an
// error with an empty one, and that whatever it accepts, yaml.v3's own decoder with
// KnownFields reads into the same Config: the schema walk is no looser than yaml.v3.
func FuzzParse(f *testing.F) {
	for _, k := range []string{"ROS_MASTER_URI", "ROS_NAMESPACE", "ROS_HOSTNAME", "ROS_IP"} {
		f.Setenv(k, "")
	}
	r, p := testModels(f)
	models := "models:\n  reward: " + r + "\n  policy: " + p + "\n"
	f.Add([]byte(""))
	example := string(Example())
	example = strings.Replace(example, "  reward: /var/lib/robodistill/models/reward.onnx\n", "  reward: "+r+"\n", 1)
	example = strings.Replace(example, "  policy: /var/lib/robodistill/models/policy.onnx\n", "  policy: "+p+"\n", 1)
	f.Add([]byte(example))
	for _, s := range []string{
		"version: 1\n" + models,
		"{version: 1, loop: {rate_hz: 100, spin_us: 50}}\n" + models,
		"version: 1\nsafety:\n  action: {low: &a [-1, -1, -1, -1], high: [1, 1, 1, 1]}\n  max_delta: *a\n" + models,
		"version: 1\nloop:\n  rate_hz: 1.5\n",
		"version: 1\nloop:\n  <<: {rate_hz: 3}\n" + models,
		"version: 1\nsafety:\n  camera_max_age: 100\n" + models,
		"version: 1\n---\nversion: 1\n",
		"version: 2\n",
		"version: 1\nros: {node: n, host: \"10.0.0.1\", namespace: /a/b}\nhttp: {listen: ''}\n" + models,
		"version: 1\nmodels:\n  watch: !!bool true\n  reward: " + r + "\n  policy: " + p + "\n",
		"version: 1\nlog: {chunk: 90s, queue: 0x10}\n" + models,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != (Config{}) {
				t.Fatalf("error %v with a config %+v", err, c)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
		ref := Default()
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&ref); err != nil {
			t.Fatalf("Parse accepted what yaml.v3 with KnownFields refuses: %v\n%s", err, data)
		}
		if ref != c {
			t.Fatalf("Parse and yaml.v3 disagree:\nParse  %+v\nyaml.v3 %+v\n%s", c, ref, data)
		}
	})
}
