// Package translog is the daemon's transition log: every control cycle's camera frame,
// robot state, command (after the safety filter, plus the policy's raw action), distilled
// reward and safety state, written as recorded episodes (docs/episodes.md) that
// `robodistill` reads like a simulated collection, Debian's rosbag tools open, and a
// kill -9 damages by at most the last second (docs/translog.md).
//
// The control thread calls Record, which copies the transition into a preallocated slot
// of a bounded ring and returns at once, without allocating; when the ring is full the
// transition is dropped and counted. One writer goroutine drains the ring into one ROS
// bag per episode, flushing a chunk and fsyncing at least every Config.FlushEvery, and
// Close drains it within the caller's deadline.
//
// The bags are written by this package rather than through control/episode's Writer
// because that writer (go-rosbag underneath) emits a chunk only when it is full, so an
// unfinished bag could lose far more than a second; the bags are read back, in the tests
// and by every consumer, with control/episode.
package translog
