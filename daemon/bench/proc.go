package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS returns the resident set size of process pid in bytes, from VmRSS in
// /proc/PID/status.
func RSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench.RSS: %w", err)
	}
	v, err := parseVmRSS(data)
	if err != nil {
		return 0, fmt.Errorf("bench.RSS: /proc/%d/status: %w", pid, err)
	}
	return v, nil
}

// parseVmRSS reads the "VmRSS:   12345 kB" line of a /proc/PID/status file.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"VmRSS: N kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("VmRSS line %q: %q is not a size", sc.Text(), f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a kernel thread, or a process that has exited?)")
}

// LoadAvg returns the 1-, 5- and 15-minute load averages from /proc/loadavg.
func LoadAvg() ([3]float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return [3]float64{}, fmt.Errorf("bench.LoadAvg: %w", err)
	}
	return parseLoadAvg(data)
}

func parseLoadAvg(data []byte) ([3]float64, error) {
	var l [3]float64
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return l, fmt.Errorf("bench.LoadAvg: %q: want three load averages", data)
	}
	for i := range l {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return l, fmt.Errorf("bench.LoadAvg: %q is not a load average", f[i])
		}
		l[i] = v
	}
	return l, nil
}
