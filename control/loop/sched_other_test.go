//go:build !linux

package loop_test

import "testing"

func threadScheduling(*testing.T) (policy, prio uint32) { return 0, 0 }
