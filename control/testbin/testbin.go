// Package testbin builds the project's commands for tests that run them as the separate
// processes they are in production (the sim bridge under the daemon, the demo's stages).
package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The main packages tests run.
const (
	Robodistill  = "robodistill/distill/cmd/robodistill"
	Robodistilld = "robodistill/daemon/cmd/robodistilld"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{} // package -> binary
)

// Build builds the main packages (import paths) that this test process has not built yet,
// concurrently and nice'd, into one temporary folder, and returns the binaries' paths in
// the order asked. The binaries are named after the packages' last element, so they sit
// beside each other as they do in bin/. Main (from TestMain) deletes the folder.
func Build(t testing.TB, pkgs ...string) []string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "robodistill-testbin-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	gobin, err := GoCommand()
	if err != nil {
		t.Fatalf("testbin: building %v: %v", pkgs, err)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(pkgs))
		outs = make([]string, len(pkgs))
	)
	for i, pkg := range pkgs {
		if b, ok := built[pkg]; ok {
			outs[i] = b
			continue
		}
		outs[i] = filepath.Join(dir, filepath.Base(pkg))
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{gobin, "build", "-o", outs[i], pkg}
			if nice, err := exec.LookPath("nice"); err == nil {
				args = append([]string{nice, "-n", "15"}, args...)
			}
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("testbin: building %s: %v\n%s", pkg, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, pkg := range pkgs {
		built[pkg] = outs[i]
	}
	return outs
}

// GoCommand is the go command that runs this test (GOROOT's), else the first on PATH.
func GoCommand() (string, error) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err == nil {
		return gobin, nil
	}
	return exec.LookPath("go")
}

// Main runs the tests and then deletes the binaries' folder: a package whose tests call
// Build has func TestMain(m *testing.M) { testbin.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	remove()
	os.Exit(code)
}

// remove deletes the binaries' folder.
func remove() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]string{}
	}
}
