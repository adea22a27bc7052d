package loop_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

func threadScheduling(t *testing.T) (policy, prio uint32) {
	a, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy, a.Priority
}
