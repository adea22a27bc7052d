package loop

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// sleep blocks the calling OS thread for d with clock_nanosleep on CLOCK_MONOTONIC (the
// clock Go's monotonic readings come from), to an absolute target so that a signal
// (the Go runtime preempts with SIGURG) only restarts the wait. time.Sleep parks the
// goroutine on the runtime's timers instead, which on Linux wake a few hundred µs late
// and need a hand-off to the locked thread.
func sleep(d time.Duration) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		time.Sleep(d)
		return
	}
	ts = unix.NsecToTimespec(unix.TimespecToNsec(ts) + int64(d))
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
	}
}

// setRealtime gives the calling thread SCHED_FIFO at prio (1–99).
func setRealtime(prio int) error {
	a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &a, 0); err != nil {
		return fmt.Errorf("SCHED_FIFO priority %d: %w (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least %d, e.g. systemd's LimitRTPRIO=)", prio, err, prio)
	}
	return nil
}

// clearRealtime returns the calling thread to SCHED_OTHER at nice 0's share.
func clearRealtime() error {
	a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
	return unix.SchedSetAttr(0, &a, 0)
}
