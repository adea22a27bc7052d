// Package safety is the daemon's last word before a command reaches the arm: a
// deterministic filter between the policy's action and the actuators.
//
// Each control cycle the caller passes the policy's action, the end-effector position,
// the stamps of the latest camera frame and robot state, the estop input and the time
// (the filter never reads a clock), and gets back the command to send, the filter's
// [State] and the [Reason] for it:
//
//	f, err := safety.New(cfg)
//	out := f.Filter(safety.Input{Now: tick.Woke, Action: a, EEPos: ee,
//		CameraStamp: camAt, StateStamp: stateAt, Estop: estop})
//	if out.Changed { log and publish out.State, out.Reason }
//	send(out.Command)
//
// The rules, by priority: an engaged estop gives [EStop] in the same cycle, and its
// release gives [Stop]; a latched Stop holds until [Filter.Reset]; a stale or
// non-finite input gives [Hold] (zero velocity, gripper kept), and a Hold that lasts
// Config.StopAfter after the arm has moved latches Stop; otherwise the action is
// clipped to its range, to the workspace (the hand's target EEPos + action·Scale stays
// inside the box) and to the rate limit relative to the last command ([Clipped]), or
// passed unchanged ([OK]). Every command zeroes velocity outside OK and Clipped, so
// after a Hold or Stop the velocities ramp up from zero at MaxDelta per cycle.
//
// Filter, Stop and Reset allocate nothing. A Filter is owned by one goroutine.
package safety
