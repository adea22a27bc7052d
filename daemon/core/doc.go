// Package core wires robodistilld: it loads and checks the reward ensemble and the
// policy, joins the ROS graph (daemon/rosio over control/rosnode), runs the control
// cycle at a fixed rate on a locked OS thread (control/loop), passes every action
// through the safety filter (control/safety), records transitions (daemon/translog),
// and reports to Prometheus, /healthz, the diagnostics topic and systemd (daemon/obs).
//
// The control cycle (controller.step) reads only the latest-value slots, runs the
// models and publishes; it allocates nothing in steady state and never blocks on I/O.
// Everything else — diagnostics, model reloads, the watchdog, the HTTP server — runs on
// other goroutines and talks to the cycle through atomics and a one-slot channel.
//
// See docs/daemon.md.
package core
