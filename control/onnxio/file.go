package onnxio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"robodistill/control/nn"
	"robodistill/vision"
)

// Errors Verify and CheckVision wrap, besides ErrFormat.
var (
	// ErrHash means the .onnx file's sha256 is not the one its sidecar names.
	ErrHash = errors.New("sha256 does not match")
	// ErrMismatch means two descriptions of a model disagree: the embedded and sidecar
	// manifests, the manifest and the graph, or the manifest and the daemon's config.
	ErrMismatch = errors.New("mismatch")
)

// SidecarPath is the sidecar's path for a model: the model's path with ".json" appended
// ("reward.onnx" -> "reward.onnx.json"), so the pair sorts together and a glob for *.onnx
// never picks up a sidecar.
func SidecarPath(model string) string { return model + ".json" }

// Save exports net to path and writes its sidecar beside it. Each file is written to a
// temporary name and renamed into place, model first: a crash in between leaves a model
// whose sidecar names another hash, which Verify refuses.
func Save(path string, net *nn.Sequential, m Manifest) (*Sidecar, error) {
	var buf bytes.Buffer
	done, err := Export(&buf, net, m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	sc := &Sidecar{Manifest: *done, SHA256: hex.EncodeToString(sum[:])}
	js, err := sc.JSON()
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("onnxio.Save: %w", err)
	}
	if err := writeFile(SidecarPath(path), js); err != nil {
		return nil, fmt.Errorf("onnxio.Save: %w", err)
	}
	return sc, nil
}

func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes 0600; the daemon may run as another user
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Verified is a model that passed Verify.
type Verified struct {
	Path     string
	SHA256   string
	Manifest *Manifest
	Model    *Model
	// Bytes is the .onnx file as hashed: load these rather than reading the path again,
	// so that what runs is what was checked.
	Bytes []byte
}

// Verify reads a model and its sidecar and checks that they belong together: the file's
// sha256 is the sidecar's (ErrHash), the embedded manifest equals the sidecar's, and the
// graph's input and output are the manifest's (ErrMismatch). Malformed files wrap
// ErrFormat.
func Verify(path string) (*Verified, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: %w", err)
	}
	scData, err := os.ReadFile(SidecarPath(path))
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: sidecar: %w", err)
	}
	sc, err := ParseSidecar(scData)
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: %s: %w", SidecarPath(path), err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sc.SHA256 {
		return nil, fmt.Errorf("onnxio.Verify: %s: %w: file %s, sidecar %s", path, ErrHash, got, sc.SHA256)
	}
	model, m, err := Inspect(data)
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: %s: %w", path, err)
	}
	a, err := m.JSON()
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: %w", err)
	}
	b, err := sc.Manifest.JSON()
	if err != nil {
		return nil, fmt.Errorf("onnxio.Verify: %w", err)
	}
	if !bytes.Equal(a, b) {
		return nil, fmt.Errorf("onnxio.Verify: %s: %w: the embedded manifest differs from the sidecar's", path, ErrMismatch)
	}
	return &Verified{Path: path, SHA256: sc.SHA256, Manifest: m, Model: model, Bytes: data}, nil
}

// CheckVision reports whether the model takes frames preprocessed exactly as cfg does,
// wrapping ErrMismatch when not.
func (m *Manifest) CheckVision(cfg vision.Config) error {
	if m.Input.Vision == nil {
		return fmt.Errorf("onnxio: %w: the model's input %q is not an image (no input.vision)", ErrMismatch, m.Input.Name)
	}
	if !m.Input.Vision.Equal(cfg) {
		have, _ := m.Input.Vision.JSON()
		want, _ := cfg.JSON()
		return fmt.Errorf("onnxio: %w: the model's input.vision is %s, the configuration's %s", ErrMismatch, have, want)
	}
	return nil
}
