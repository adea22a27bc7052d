package bench

import (
	"os"
	"strings"
	"testing"
)

func TestRSS(t *testing.T) {
	v, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if v < 1<<20 || v > 1<<40 {
		t.Errorf("this test's RSS is %d bytes", v)
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Error("RSS of a process that does not exist")
	}
	got, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\nThreads: 1\n"))
	if err != nil || got != 12345*1024 {
		t.Errorf("parse: %d, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"Name:\tkthreadd\n", "no VmRSS line (a kernel thread, or a process that has exited?)"},
		{"VmRSS:\t12 MB\n", `VmRSS line "VmRSS:\t12 MB": want "VmRSS: N kB"`},
		{"VmRSS:\tx kB\n", `VmRSS line "VmRSS:\tx kB": "x" is not a size`},
	} {
		if _, err := parseVmRSS([]byte(tc.in)); err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadAvg(t *testing.T) {
	if _, err := LoadAvg(); err != nil {
		t.Fatal(err)
	}
	l, err := parseLoadAvg([]byte("7.25 8.00 9.5 3/200 1234\n"))
	if err != nil || l != [3]float64{7.25, 8, 9.5} {
		t.Errorf("%v %v", l, err)
	}
	for _, in := range []string{"1 2", "1 x 3 1/2 3"} {
		if _, err := parseLoadAvg([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "bench.LoadAvg: ") {
			t.Errorf("%q: %v", in, err)
		}
	}
}
