// Package systemd holds robodistilld's unit files and the configuration a robot installs:
// robodistilld.service (the daemon, Type=notify with a watchdog fed by the control loop),
// rosmaster.service (a local ROS 1 master it can depend on) and daemon.yaml (the commented
// default configuration, kept equal to daemon/config's Example by that package's tests).
//
// The package has no Go API; its tests run systemd-analyze verify and security on the
// units.
package systemd
