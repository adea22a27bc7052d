package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process in its own process group, its stderr in a log file with the
// last few kilobytes kept for error messages.
type proc struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	log  *os.File
	done chan struct{}
	err  error // Wait's result, set before done closes
}

// startProc starts args[0] with args[1:]; stdout goes to stdout (nil: the log file too).
func startProc(name string, env []string, dir string, stdout io.Writer, logPath string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, tail: &tailBuffer{max: 4096}, log: f, done: make(chan struct{})}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stderr = io.MultiWriter(f, p.tail)
	cmd.Stdout = stdout
	if stdout == nil {
		cmd.Stdout = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process's id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// failure describes a process that ended on its own: exit status and stderr's tail.
func (p *proc) failure() error {
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.tail.String())
}

// stop sends sig to the process group and waits up to grace, then kills the group. It
// returns the process's exit error (nil for status 0) and whether it had to be killed.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) (killed bool, err error) {
	if !p.exited() {
		syscall.Kill(-p.pid(), sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
			killed = true
		}
	}
	// Children the process left in its group.
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	return killed, p.err
}

// stopped turns stop's result into an error naming the process, or nil for a clean exit.
func (p *proc) stopped(sig syscall.Signal, grace time.Duration) error {
	killed, err := p.stop(sig, grace)
	switch {
	case killed:
		return fmt.Errorf("%s did not exit within %v of %v and was killed; its last output:\n%s", p.name, grace, sig, p.tail.String())
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 0 {
			return nil
		}
		return fmt.Errorf("%s: %v after %v; its last output:\n%s", p.name, err, sig, p.tail.String())
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.b))
	if len(t.b) >= t.max {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = "…" + s[i:]
		}
	}
	return s
}
