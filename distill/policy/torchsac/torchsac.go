// Package torchsac times one SAC update in PyTorch (Debian's python3-torch through
// /usr/bin/python3, one thread) at the shapes distill/policy uses, as the reference
// `robodistill bench policy` prints next to the Go update. It is a development tool: it
// starts a Python process and is never imported by the daemon.
package torchsac

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed sac_update.py
var script []byte

// Python is the interpreter that can import Debian's torch.
const Python = "/usr/bin/python3"

// Times runs steps timed SAC updates (after warmup untimed ones) on random data with
// obs/act dimensions, hidden width and batch size, and returns their durations and
// torch's version.
func Times(ctx context.Context, obs, act, hidden, batch, steps, warmup int) ([]time.Duration, string, error) {
	dir, err := os.MkdirTemp("", "torchsac-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sac_update.py")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		return nil, "", err
	}
	args := []string{path}
	for _, n := range []int{obs, act, hidden, batch, steps, warmup} {
		args = append(args, strconv.Itoa(n))
	}
	cmd := exec.CommandContext(ctx, Python, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			lines := strings.Split(strings.TrimSpace(string(ee.Stderr)), "\n")
			msg = lines[len(lines)-1]
		}
		return nil, "", fmt.Errorf("torchsac: %s sac_update.py: %w: %s (needs python3-torch)", Python, err, msg)
	}
	var res struct {
		Torch string    `json:"torch"`
		Times []float64 `json:"times_ms"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Times) != steps {
		return nil, "", fmt.Errorf("torchsac: unexpected answer %q: %v", out, err)
	}
	ts := make([]time.Duration, steps)
	for i, ms := range res.Times {
		ts[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return ts, res.Torch, nil
}
