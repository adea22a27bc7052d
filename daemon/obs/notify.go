package obs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells systemd about the daemon's life (sd_notify(3)): ready, status text,
// stopping, and watchdog keep-alives, as datagrams on $NOTIFY_SOCKET. Outside systemd
// (no NOTIFY_SOCKET) every method does nothing and returns nil.
type Notifier struct {
	watchdog time.Duration
}

// NewNotifier reads the watchdog settings systemd passes (WATCHDOG_USEC, for this process
// when WATCHDOG_PID names it). A malformed value is an error.
func NewNotifier() (*Notifier, error) {
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("obs.NewNotifier: %w", err)
	}
	return &Notifier{watchdog: wd}, nil
}

// WatchdogInterval is the service's WatchdogSec: without a keep-alive for this long,
// systemd kills and restarts the daemon. 0 when no watchdog watches this process.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Enabled reports whether a service manager listens ($NOTIFY_SOCKET is set).
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Ready reports that start-up is finished: with Type=notify, systemd starts the units
// ordered after the daemon only now.
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// Stopping reports that shutdown has begun.
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Watchdog is one keep-alive.
func (n *Notifier) Watchdog() error { return n.send(daemon.SdNotifyWatchdog) }

// Status sets the one-line status `systemctl status` shows. Line breaks become spaces:
// each line of a notification is an assignment of its own.
func (n *Notifier) Status(s string) error {
	return n.send("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

func (n *Notifier) send(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("obs.Notifier: %s: %w", state, err)
	}
	return nil
}

// RunWatchdog sends a keep-alive every half WatchdogInterval while alive reports true
// (Health.Alive: the control loop made progress), so that a stalled loop, not just a dead
// process, gets the daemon restarted. It returns nil when ctx ends; without a watchdog it
// only waits for ctx. A failed send is returned: systemd will not be fed again.
func (n *Notifier) RunWatchdog(ctx context.Context, alive func() bool) error {
	if n.watchdog <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if alive() {
				if err := n.Watchdog(); err != nil {
					return err
				}
			}
		}
	}
}
