package bench

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DaemonConfig is what the harness sets in robodistilld's configuration file
// (docs/daemon-config.md); every other key keeps its default. The sweep changes the rate
// and the policy with --set instead of writing new files.
type DaemonConfig struct {
	MasterURI      string // ros.master_uri
	Host           string // ros.host (127.0.0.1: everything is on loopback)
	Node           string // ros.node
	Rate           int    // loop.rate_hz
	Reward, Policy string // models.reward, models.policy (absolute paths)
	// Camera is the frame size the sim bridge sends, required through
	// vision.camera_width/height and camera_encoding rgb8, so that a frame of another size
	// is refused rather than measured.
	Camera int
	// LogDir is the transition log's folder; "" disables the log.
	LogDir string
	Listen string // http.listen, HOST:PORT
}

// YAML renders the configuration file.
func (c DaemonConfig) YAML() []byte {
	q := func(s string) string {
		b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
		return string(b)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by daemonbench (daemon/bench) for one benchmark run.\nversion: 1\n")
	fmt.Fprintf(&b, "ros:\n  master_uri: %s\n  host: %s\n  node: %s\n", q(c.MasterURI), q(c.Host), q(c.Node))
	fmt.Fprintf(&b, "loop:\n  rate_hz: %d\n", c.Rate)
	fmt.Fprintf(&b, "models:\n  reward: %s\n  policy: %s\n  watch: false\n", q(c.Reward), q(c.Policy))
	fmt.Fprintf(&b, "vision:\n  camera_width: %d\n  camera_height: %d\n  camera_encoding: rgb8\n", c.Camera, c.Camera)
	if c.LogDir == "" {
		fmt.Fprintf(&b, "log:\n  enabled: false\n")
	} else {
		fmt.Fprintf(&b, "log:\n  enabled: true\n  dir: %s\n", q(c.LogDir))
	}
	fmt.Fprintf(&b, "http:\n  listen: %s\n", q(c.Listen))
	fmt.Fprintf(&b, "logging:\n  format: json\n  level: info\n")
	return []byte(b.String())
}
