// Package bench measures robodistilld from the outside, as an operator would: it starts
// Debian's rosmaster, the sim bridge (real time, with a camera on its own schedule) and
// the daemon binary with a generated configuration, scrapes the daemon's Prometheus
// metrics and /proc, and reports wake lateness, cycle compute time, camera-to-command
// latency, allocations per cycle, RSS growth, overruns and the highest loop rate the
// daemon sustains. The same control cycle written in Python (rospy + PyTorch, pyloop.py,
// embedded) runs against the same bridge and models for comparison.
//
// It uses only the daemon's documented interfaces (docs/daemon-config.md: the YAML
// configuration, --set, /metrics, /healthz, SIGTERM) and never imports daemon/core, so it
// measures the binary that ships. The models are either given or exported here, untrained
// but of the real shapes, with control/nn and control/onnxio (daemon/ may not import
// distill/). See docs/daemon-bench.md.
package bench
