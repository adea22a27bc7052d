// Package rosio is the daemon's ROS side: the input topics (camera, hand pose, joint
// states, object poses, goal, estop) kept in latest-value slots, the builder that turns
// those slots into the policy's 39-D MetaWorld observation exactly as the simulator
// computes it, and the output topics (velocity and gripper commands, reward, diagnostics,
// safety state).
//
// The ROS node is a control/rosnode.Node, shared by Inputs and Outputs, so the daemon
// reads ROS_MASTER_URI / ROS_IP like any ROS node and re-registers after a rosmaster
// restart.
//
// Threads. goroslib calls each subscriber's callback from its own goroutine; a callback
// decodes and validates the message with the plain Decode* functions, copies it into
// the slot's spare buffer and swaps it in under the slot's mutex. A malformed message is
// counted and logged (at most once per LogInterval per topic, naming the topic and what
// was wrong) and the slot keeps its previous value. The control thread reads the slots
// with Inputs.Read and Inputs.ReadFrame into buffers it allocated once, and builds the
// observation with Builder.Build; in steady state none of these allocate. Outputs
// publish from the control thread; goroslib encodes messages later on its own
// goroutines, so a published message is never reused: Outputs hand out message structs
// from slabs and allocate once per slab.
//
// See docs/daemon-rosio.md.
package rosio
