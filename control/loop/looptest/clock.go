// Package looptest provides a fake loop.Clock for deterministic tests of code driven by
// control/loop.
package looptest

import (
	"sync"
	"time"
)

// Clock is a fake loop.Clock. Time moves only when the loop sleeps (to the deadline,
// plus the oversleep) or when the test calls Advance, e.g. from the step function to
// model its compute time. It is safe for concurrent use.
type Clock struct {
	mu        sync.Mutex
	now       time.Time
	oversleep time.Duration
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SleepUntil moves the time to t plus the oversleep when t is ahead, like a sleep that
// wakes late; it returns at once, without moving time, when t has passed.
func (c *Clock) SleepUntil(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t.Add(c.oversleep)
	}
}

// Advance moves the time forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// SetOversleep sets how late every following sleep wakes.
func (c *Clock) SetOversleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.oversleep = d
}
