// Package rosnodetest runs Debian's ROS1 master (`rosmaster --core`) on a free loopback
// port for integration tests and benchmarks, and starts ROS command-line tools (rostopic,
// rosservice, rosparam) against it. Every process it starts runs in its own process group;
// Stop ends them all and checks that nothing is left running.
package rosnodetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/apimaster"
)

// ErrNoROS reports that rosmaster is not installed.
var ErrNoROS = errors.New("rosnodetest: rosmaster not found (install Debian's ros-core, see scripts/bootstrap)")

// Master is a running rosmaster.
type Master struct {
	Port int
	// URI is ROS_MASTER_URI for this master (http://127.0.0.1:PORT/).
	URI string

	home string // ROS_HOME and ROS_LOG_DIR of the master and the tools

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
	tools  []*exec.Cmd
}

// ReadyTimeout bounds how long Start waits for the master to answer.
const ReadyTimeout = 15 * time.Second

// Start runs `rosmaster --core -p PORT` on a free loopback port and waits until it answers.
// dir holds the master's ROS_HOME (its log files); "" makes a temporary directory that Stop
// removes.
func Start(dir string) (*Master, error) {
	if _, err := exec.LookPath("rosmaster"); err != nil {
		return nil, ErrNoROS
	}
	m := &Master{home: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "rosnodetest-")
		if err != nil {
			return nil, fmt.Errorf("rosnodetest.Start: %w", err)
		}
		m.home = d
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("rosnodetest.Start: %w", err)
		}
		m.Port, m.URI = port, fmt.Sprintf("http://127.0.0.1:%d/", port)
		if lastErr = m.start(); lastErr == nil {
			return m, nil
		}
	}
	if dir == "" {
		os.RemoveAll(m.home)
	}
	return nil, fmt.Errorf("rosnodetest.Start: %w", lastErr)
}

// New starts a master for t and stops it when t ends, failing t if anything it started is
// left running. It skips t when rosmaster is not installed.
func New(t testing.TB) *Master {
	t.Helper()
	m, err := Start("")
	if errors.Is(err, ErrNoROS) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// FreePort returns a TCP port that was free on the loopback interface a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (m *Master) start() error {
	cmd := exec.Command("rosmaster", "--core", "-p", strconv.Itoa(m.Port))
	cmd.Env = m.Env()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rosmaster: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited, m.out = cmd, exited, out
	m.mu.Unlock()

	deadline := time.Now().Add(ReadyTimeout)
	for {
		if m.Answers() {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("rosmaster on port %d exited: %s", m.Port, bytes.TrimSpace(out.Bytes()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stopProcess(cmd, exited, true)
			return fmt.Errorf("rosmaster on port %d did not answer within %v: %s", m.Port, ReadyTimeout, bytes.TrimSpace(out.Bytes()))
		}
	}
}

// Answers reports whether the master answers an XML-RPC call now.
func (m *Master) Answers() bool {
	c := apimaster.NewClient(net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)), "/rosnodetest", &http.Client{Timeout: time.Second})
	_, err := c.GetURI()
	return err == nil
}

// Env is the environment for ROS processes talking to this master: the current
// environment with ROS_MASTER_URI, ROS_IP=127.0.0.1 (ROS_HOSTNAME removed) and ROS_HOME and
// ROS_LOG_DIR inside the master's directory.
func (m *Master) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := cutEq(kv); k {
		case "ROS_MASTER_URI", "ROS_IP", "ROS_HOSTNAME", "ROS_HOME", "ROS_LOG_DIR", "ROS_NAMESPACE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "ROS_MASTER_URI="+m.URI, "ROS_IP=127.0.0.1", "ROS_HOME="+m.home, "ROS_LOG_DIR="+m.home+"/log")
}

func cutEq(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// Command prepares a ROS tool (rostopic, rosservice, rosparam, …) with Env, in its own
// process group. Stop kills whatever is still running.
func (m *Master) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = m.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cancel ends the tool's whole group: rostopic runs Python threads and sometimes
	// children.
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	m.mu.Lock()
	m.tools = append(m.tools, cmd)
	m.mu.Unlock()
	return cmd
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Kill ends the master abruptly (SIGKILL), as a crash would, and waits for it to exit.
func (m *Master) Kill() error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	return m.stopProcess(cmd, exited, true)
}

// Restart kills the master and starts a new one on the same port, returning once it
// answers.
func (m *Master) Restart() error {
	if err := m.Kill(); err != nil {
		return fmt.Errorf("rosnodetest.Restart: %w", err)
	}
	var err error
	// The port is ours, but a kernel may hold it briefly; retry for a few seconds.
	for i := 0; i < 20; i++ {
		if err = m.start(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("rosnodetest.Restart: %w", err)
}

// Stop ends the master (SIGTERM, then SIGKILL after 5 s) and every tool started with
// Command, then checks that none of their processes is left and that the port is closed.
func (m *Master) Stop() error {
	var errs []error
	m.mu.Lock()
	tools := m.tools
	m.tools = nil
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	for _, t := range tools {
		if t.Process == nil {
			continue
		}
		pid := t.Process.Pid
		killGroup(t)
		// Whoever started the tool waits for it (reaping it); give them a moment.
		for i := 0; i < 250 && groupAlive(pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if groupAlive(pid) {
			errs = append(errs, fmt.Errorf("rosnodetest: %s (process group %d) still present after Stop (never waited for?)", t.Path, pid))
		}
	}
	if cmd != nil {
		if err := m.stopProcess(cmd, exited, false); err != nil {
			errs = append(errs, err)
		}
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)), time.Second); err == nil {
		c.Close()
		errs = append(errs, fmt.Errorf("rosnodetest: port %d still accepts connections after Stop", m.Port))
	}
	if m.home != "" && len(errs) == 0 {
		os.RemoveAll(m.home)
	}
	return errors.Join(errs...)
}

// stopProcess ends the master's process group and waits for it.
func (m *Master) stopProcess(cmd *exec.Cmd, exited chan struct{}, kill bool) error {
	pid := cmd.Process.Pid
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-pid, sig)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	// The group may outlive its leader (rosmaster runs no children, but check).
	for i := 0; i < 50 && groupAlive(pid); i++ {
		syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
	if groupAlive(pid) {
		return fmt.Errorf("rosnodetest: processes of rosmaster's group %d still running", pid)
	}
	return nil
}

// groupAlive reports whether any process is left in process group pgid.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// Log returns what the master has printed so far.
func (m *Master) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		return ""
	}
	return string(m.out.Bytes())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}
