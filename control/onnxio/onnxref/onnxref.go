// Package onnxref runs the references an exported ONNX model is checked against: Debian's
// onnx checker (python3-onnx through /usr/bin/python3, check_model with full_check) and
// ONNX Runtime (npm onnxruntime-node through Node.js, CPU, one thread).
//
// It is a development tool for tests and the offline CLI: it starts Python and Node
// processes and is never imported by the daemon. A missing tool is an error that says how
// to install it (ErrNoChecker, ErrNoORT), never a silent skip.
package onnxref

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultPython is the interpreter that sees Debian's Python packages.
const DefaultPython = "/usr/bin/python3"

// ORTVersion is the onnxruntime-node release the checks use; scripts/install-onnxruntime-node
// installs the same one (a test keeps them equal).
const ORTVersion = "1.22.0"

// ORTDirEnv overrides DefaultORTDir.
const ORTDirEnv = "ROBODISTILL_ORT_NODE"

var (
	// ErrNoChecker means the Python interpreter cannot import onnx.
	ErrNoChecker = errors.New("the onnx checker is not available")
	// ErrNoORT means Node.js or onnxruntime-node is missing.
	ErrNoORT = errors.New("ONNX Runtime for Node.js is not available")
)

//go:embed check.py
var checkScript []byte

//go:embed ortrun.js
var ortScript []byte

// Tools locates the reference programs. Zero fields take defaults.
type Tools struct {
	Python string // DefaultPython
	Node   string // "node" on PATH
	ORTDir string // DefaultORTDir(): holds node_modules/onnxruntime-node
}

func (t Tools) python() string {
	if t.Python == "" {
		return DefaultPython
	}
	return t.Python
}

func (t Tools) node() string {
	if t.Node == "" {
		return "node"
	}
	return t.Node
}

func (t Tools) ortDir() string {
	if t.ORTDir == "" {
		return DefaultORTDir()
	}
	return t.ORTDir
}

// DefaultORTDir is $ROBODISTILL_ORT_NODE, or .cache/ort-node in the robodistill module
// that contains the working directory (found by its go.mod), or "" outside one.
func DefaultORTDir() string {
	if d := os.Getenv(ORTDirEnv); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module robodistill\n")) {
			return filepath.Join(dir, ".cache", "ort-node")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// InstallCommand is the npm command that installs the pinned onnxruntime-node into dir.
// --ignore-scripts: the package carries its CPU libraries (libonnxruntime.so.1); its
// install script only fetches optional GPU ones.
func InstallCommand(dir string) string {
	return fmt.Sprintf("npm install --prefix %s --ignore-scripts --no-audit --no-fund onnxruntime-node@%s", dir, ORTVersion)
}

func installHint(dir string) string {
	return fmt.Sprintf("run scripts/install-onnxruntime-node (it runs: %s)", InstallCommand(dir))
}

// Check runs onnx.checker.check_model(model, full_check=True) on each file and returns
// onnx's version. A model the checker rejects gives an error carrying its message.
func (t Tools) Check(ctx context.Context, paths ...string) (version string, err error) {
	if out, err := exec.CommandContext(ctx, t.python(), "-c", "import onnx").CombinedOutput(); err != nil {
		return "", fmt.Errorf("onnxref: %w: %s cannot import onnx (%v: %s); install Debian's python3-onnx (apt-get install -y python3-onnx)",
			ErrNoChecker, t.python(), err, lastLine(out))
	}
	dir, err := os.MkdirTemp("", "onnxref")
	if err != nil {
		return "", fmt.Errorf("onnxref.Check: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "check.py")
	if err := os.WriteFile(script, checkScript, 0o644); err != nil {
		return "", fmt.Errorf("onnxref.Check: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, t.python(), append([]string{script}, paths...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("onnxref.Check: checker rejected the model: %s (%v)", lastLine(stderr.Bytes()), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Tensor is a float32 value by name.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// ORTResult is what ONNX Runtime computed.
type ORTResult struct {
	Version     string
	InputNames  []string
	OutputNames []string
	Runs        [][]Tensor // per run, the outputs in OutputNames order
}

// RunORT loads the model in ONNX Runtime (CPU, one thread, default graph optimisations)
// and runs it once per element of runs, each a set of named inputs.
func (t Tools) RunORT(ctx context.Context, model string, runs ...[]Tensor) (*ORTResult, error) {
	ortDir := t.ortDir()
	if ortDir == "" {
		return nil, fmt.Errorf("onnxref: %w: no folder for onnxruntime-node (set %s, or run inside the robodistill module); %s",
			ErrNoORT, ORTDirEnv, installHint(".cache/ort-node"))
	}
	if _, err := exec.LookPath(t.node()); err != nil {
		return nil, fmt.Errorf("onnxref: %w: %v; install Node.js (Debian: apt-get install -y nodejs npm), then %s",
			ErrNoORT, err, installHint(ortDir))
	}
	if _, err := os.Stat(filepath.Join(ortDir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		return nil, fmt.Errorf("onnxref: %w: onnxruntime-node is not installed in %s; %s", ErrNoORT, ortDir, installHint(ortDir))
	}
	abs, err := filepath.Abs(model)
	if err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: %w", err)
	}
	type jsTensor struct {
		Name string `json:"name"`
		Dims []int  `json:"dims"`
		Data string `json:"data"`
	}
	spec := struct {
		ORTDir string       `json:"ort_dir"`
		Model  string       `json:"model"`
		Runs   [][]jsTensor `json:"runs"`
	}{ORTDir: ortDir, Model: abs}
	for _, run := range runs {
		var in []jsTensor
		for _, x := range run {
			in = append(in, jsTensor{Name: x.Name, Dims: x.Shape, Data: encodeFloats(x.Data)})
		}
		spec.Runs = append(spec.Runs, in)
	}
	dir, err := os.MkdirTemp("", "onnxref")
	if err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: %w", err)
	}
	defer os.RemoveAll(dir)
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), specJSON, 0o644); err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ortrun.js"), ortScript, 0o644); err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, t.node(), filepath.Join(dir, "ortrun.js"), filepath.Join(dir, "spec.json"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return nil, fmt.Errorf("onnxref: %w: %s; %s", ErrNoORT, lastLine(stderr.Bytes()), installHint(ortDir))
		}
		return nil, fmt.Errorf("onnxref.RunORT: ONNX Runtime failed: %s (%v)", lastLine(stderr.Bytes()), err)
	}
	var res struct {
		Version     string       `json:"version"`
		InputNames  []string     `json:"input_names"`
		OutputNames []string     `json:"output_names"`
		Runs        [][]jsTensor `json:"runs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("onnxref.RunORT: reading the runner's output: %w", err)
	}
	out := &ORTResult{Version: res.Version, InputNames: res.InputNames, OutputNames: res.OutputNames}
	for _, run := range res.Runs {
		var ts []Tensor
		for _, x := range run {
			data, err := decodeFloats(x.Data)
			if err != nil {
				return nil, fmt.Errorf("onnxref.RunORT: output %q: %w", x.Name, err)
			}
			ts = append(ts, Tensor{Name: x.Name, Shape: x.Dims, Data: data})
		}
		out.Runs = append(out.Runs, ts)
	}
	return out, nil
}

func encodeFloats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeFloats(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes is not a float32 array", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no output"
	}
	return s
}
