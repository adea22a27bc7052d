//go:build !linux

package loop

import (
	"errors"
	"time"
)

func sleep(d time.Duration) { time.Sleep(d) }

func setRealtime(int) error {
	return errors.New("realtime scheduling is only implemented on Linux")
}

func clearRealtime() error { return nil }
