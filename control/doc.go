// Package control holds what the robot-side loop and the simulator share: the ROS
// interface (control/rosiface), the recorded-episode format (control/episode) and, later,
// the model runtime, observation builder, safety filter and fixed-rate loop.
package control
