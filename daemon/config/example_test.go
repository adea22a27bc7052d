package config

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"robodistill/control/rosiface"
)

var update = flag.Bool("update", false, "rewrite systemd/daemon.yaml from example.yaml")

const (
	shippedExample = "../../systemd/daemon.yaml"
	docsFile       = "../../docs/daemon-config.md"
)

// TestExampleIsDefault checks the example's claim that every value in it is the default,
// with and without a ROS environment (the environment's keys are commented out in it).
func TestExampleIsDefault(t *testing.T) {
	for _, env := range []map[string]string{
		{"ROS_MASTER_URI": "", "ROS_NAMESPACE": "", "ROS_HOSTNAME": "", "ROS_IP": ""},
		{"ROS_MASTER_URI": "http://10.0.0.1:11311/", "ROS_NAMESPACE": "/cell", "ROS_HOSTNAME": "", "ROS_IP": "10.0.0.9"},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		c, _, err := decode(Example())
		if err != nil {
			t.Fatal(err)
		}
		if c != Default() {
			t.Fatalf("environment %v:\nexample %+v\ndefault %+v", env, c, Default())
		}
		// With the models installed, the example is a valid configuration.
		c.Models.Reward, c.Models.Policy = testModels(t)
		if err := c.Validate(); err != nil {
			t.Fatalf("environment %v: %v", env, err)
		}
	}
}

// TestShippedExample keeps systemd/daemon.yaml, what a robot installs, equal to Example.
// go test ./daemon/config -run ShippedExample -update rewrites it.
func TestShippedExample(t *testing.T) {
	if *update {
		if err := os.WriteFile(shippedExample, Example(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(shippedExample)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Example()) {
		t.Fatalf("%s differs from daemon/config/example.yaml; run go test ./daemon/config -run ShippedExample -update", shippedExample)
	}
	clearROSEnv(t)
	// The installed file parses once the models exist (overrides stand in for them).
	dir := t.TempDir()
	path := dir + "/daemon.yaml"
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	r, p := testModels(t)
	c, err := LoadWithOverrides(path, []string{"models.reward=" + r, "models.policy=" + p})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Models.Reward, want.Models.Policy = r, p
	if c != want {
		t.Fatalf("shipped file:\ngot  %+v\nwant %+v", c, want)
	}
}

// TestExampleCoversSchema checks that the example shows every key: set, or for the keys
// whose default comes from the environment, as a commented-out line.
func TestExampleCoversSchema(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Example(), &doc); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinKey(prefix, n.Content[i].Value)
			inFile = append(inFile, p)
			if n.Content[i+1].Kind == yaml.MappingNode {
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(doc.Content[0], "")
	for _, p := range Paths() {
		switch {
		case slices.Contains(envKeys, p):
			leaf := p[strings.LastIndex(p, ".")+1:]
			if slices.Contains(inFile, p) || !bytes.Contains(Example(), []byte("  # "+leaf+": ")) {
				t.Errorf("example: %s should be a commented-out line (its default comes from the environment)", p)
			}
		case !slices.Contains(inFile, p):
			t.Errorf("example: key %s missing", p)
		}
	}
	if len(inFile)+len(envKeys) != len(Paths()) {
		t.Errorf("example has %d keys and %d commented, the schema %d", len(inFile), len(envKeys), len(Paths()))
	}
}

// TestDocsCoverSchema checks that docs/daemon-config.md documents every key, with its
// default where the key is a leaf.
func TestDocsCoverSchema(t *testing.T) {
	docs, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Paths() {
		if !bytes.Contains(docs, []byte("`"+p+"`")) {
			t.Errorf("%s does not document `%s`", docsFile, p)
		}
	}
}

// TestTopicsMatchROSInterface checks the default topics against the ROS interface the sim
// bridge publishes (control/rosiface), which is ARCHITECTURE.md's table.
func TestTopicsMatchROSInterface(t *testing.T) {
	for _, ns := range []string{"/", "/robot1"} {
		got := Default().Topics.Resolve(ns)
		want := rosiface.DefaultTopics(ns)
		pairs := [][2]string{
			{got.Image, want.Image}, {got.CameraInfo, want.CameraInfo}, {got.EEPose, want.EEPose},
			{got.JointStates, want.JointStates}, {got.Goal, want.Goal}, {got.Estop, want.Estop},
			{got.CmdVel, want.CmdVel}, {got.Gripper, want.Gripper}, {got.Reward, want.Reward},
			{got.Diagnostics, want.Diagnostics}, {got.ObjectPose("puck"), want.ObjectPose("puck")},
		}
		for _, p := range pairs {
			if p[0] != p[1] {
				t.Errorf("namespace %s: config %s, rosiface %s", ns, p[0], p[1])
			}
		}
		if len(pairs) != len((&Topics{}).fields()) {
			t.Errorf("%d topics compared, %d in the config", len(pairs), len((&Topics{}).fields()))
		}
	}
}
