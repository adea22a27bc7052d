package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad command lines exit 2 with a message naming the flag, before anything starts.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sweep", "50,fast"}, `daemonbench: --sweep: "fast" is not a rate in Hz (want e.g. 50,100,200 or none)`},
		{[]string{"--daemon", "/bin/true", "--robodistill", "/bin/true", "--size", "640"}, "--size: 640 px outside 1..480 (the renderer's limit; 640×480 is not supported)"},
		{[]string{"--daemon", "/nonexistent/robodistilld", "--robodistill", "/bin/true"}, "--daemon: stat /nonexistent/robodistilld: no such file or directory (build it with make build)"},
		{[]string{"--daemon", "/bin/true", "--robodistill", "/bin/true", "--reward", "r.onnx"}, "--reward and --policy: give both or neither"},
		{[]string{"--daemon", "/bin/true", "--robodistill", "/bin/true", "--sweep", "100,50"}, "--sweep: rates must increase within 1..1000 Hz, got [100 50]"},
		{[]string{"extra"}, `daemonbench: unexpected arguments ["extra"]`},
		{[]string{"--no-such-flag"}, "daemonbench: unknown flag: --no-such-flag (see --help)"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %s)", tc.args, code, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", tc.args, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--sweep-duration") {
		t.Errorf("--help: exit %d, %s", code, errb.String())
	}
	if rates, err := parseRates("none"); err != nil || rates != nil {
		t.Errorf("none: %v %v", rates, err)
	}
	if rates, err := parseRates("50, 100"); err != nil || len(rates) != 2 || rates[1] != 100 {
		t.Errorf("50, 100: %v %v", rates, err)
	}
}
