package onnxio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"robodistill/vision"
)

// ManifestVersion is the manifest format this package writes and reads. It changes when a
// key changes meaning; a reader refuses other versions rather than guess.
const ManifestVersion = 1

// Kind is what a model computes.
type Kind string

// Kind values.
const (
	KindReward Kind = "reward" // camera frame -> scalar reward
	KindPolicy Kind = "policy" // observation -> action
)

// Manifest describes a model: what goes in, what comes out and what it means, where it
// came from, and a golden input/output pair for a load-time self-check. Its JSON is
// embedded in the .onnx file (metadata key MetadataKey) and written beside it in the
// sidecar, which adds the file's sha256 (see Sidecar).
type Manifest struct {
	Version int         `json:"version"`
	Kind    Kind        `json:"kind"`
	Task    string      `json:"task,omitempty"` // e.g. the MetaWorld task "reach-v2"
	Input   Input       `json:"input"`
	Output  Output      `json:"output"`
	Reward  *RewardNorm `json:"reward,omitempty"` // reward models only
	// Ensemble places the model in an ensemble of models trained together, whose
	// members are files named by MemberPath.
	Ensemble *Ensemble `json:"ensemble,omitempty"`
	// Control is how a policy's actions drive the robot: the rate it was trained at and
	// the displacement one unit of action means. Policies only.
	Control     *Control  `json:"control,omitempty"`
	Training    Training  `json:"training"`
	CodeVersion string    `json:"code_version"`
	Created     time.Time `json:"created"`
	Golden      Golden    `json:"golden"`
}

// Input is the model's one input. Shape is per sample, without the batch dimension (the
// graph's first dimension is a symbolic batch size).
type Input struct {
	Name  string `json:"name"`  // the graph input's name: "image" or "obs"
	Shape []int  `json:"shape"` // [C, H, W] for images, [F] for state vectors
	// Vision is the exact preprocessing of image inputs (vision.Config's own JSON form);
	// the daemon refuses the model unless its configuration is equal. Absent for state
	// inputs.
	Vision *vision.Config `json:"vision,omitempty"`
	// Observation names the layout of a state vector (which value is which), e.g.
	// "metaworld-v2-39". Absent for images.
	Observation string `json:"observation,omitempty"`
}

// Output is the model's one output, per sample.
type Output struct {
	Name    string `json:"name"`    // the graph output's name: "reward" or "action"
	Shape   []int  `json:"shape"`   // [1] for rewards, [action dims] for policies
	Meaning string `json:"meaning"` // what the numbers are, for people and for checks
}

// RewardNorm maps the network's raw output r to the published reward (r − Mean) / Std,
// with optional named thresholds on the published reward (e.g. "success").
type RewardNorm struct {
	Mean       float64     `json:"mean"`
	Std        float64     `json:"std"`
	Thresholds []Threshold `json:"thresholds,omitempty"`
	// Count, when set, divides the reward by N(o)^Beta, N(o) the number of visits to the
	// observation's cell (Motif's count-based exploration term). It is for the policy
	// trainer, which sees observations; the daemon publishes the reward without it.
	Count *CountTerm `json:"count,omitempty"`
}

// ThresholdFloor is the threshold below which the published reward is set to 0
// (Motif's quantile threshold), when a manifest has one.
const ThresholdFloor = "floor"

// CountTerm is the count-based exploration term r / N(o)^Beta. Observations are
// counted by cell: each value divided by Cell and rounded down.
type CountTerm struct {
	Beta float64 `json:"beta"`
	Cell float64 `json:"cell"`
}

// Control is a policy's control contract.
type Control struct {
	RateHz int `json:"rate_hz"` // control rate the policy was trained at
	// ActionScale is the end-effector displacement per control step, in metres, of an
	// action component of 1 (MetaWorld's mocap delta at that rate).
	ActionScale float64 `json:"action_scale_m"`
}

// Ensemble says which member of how many a model is.
type Ensemble struct {
	Member int `json:"member"` // from 0
	Size   int `json:"size"`
}

// MemberPath is the file of member m of the ensemble whose member 0 is path:
// "reward.onnx" for 0, "reward.1.onnx" for 1, and so on.
func MemberPath(path string, m int) string {
	if m == 0 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s.%d%s", strings.TrimSuffix(path, ext), m, ext)
}

// Threshold is a named level of the normalised reward.
type Threshold struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Training is the model's provenance. Hashes are lowercase hex sha256 digests.
type Training struct {
	DataSHA256   []string `json:"data_sha256,omitempty"`   // episode files trained on
	LabelsSHA256 []string `json:"labels_sha256,omitempty"` // label files (reward models)
	// Labeler is whoever gave the training signal: the VLM's model id and prompt version,
	// or a scripted teacher and its parameters (reward models); the reward model's sha256
	// or "ground-truth" (policies).
	Labeler string `json:"labeler"`
}

// Golden is a deterministic input (Pattern, see GoldenInput) and the output the exporting
// code computed for it at batch 1. A runtime that loads the model runs the same input and
// compares within Tolerance (maximum absolute difference).
type Golden struct {
	Pattern   string    `json:"pattern"`
	Output    []float32 `json:"output"`
	Tolerance float64   `json:"tolerance"`
}

// PatternLattice is the golden input pattern: element i (row-major, one sample) is
// ((97·i + 13) mod 256)/128 − 1, a value in [−1, 1) that float32 holds exactly, so every
// language computes the same input.
const PatternLattice = "lattice-v1"

// DefaultGoldenTolerance is the Tolerance Export fills in when a manifest has none: above
// the float32 differences between runtimes (about 1e-6 here), far below a wrong model.
const DefaultGoldenTolerance = 1e-4

// GoldenInput returns the pattern's values for n elements.
func GoldenInput(pattern string, n int) ([]float32, error) {
	if pattern != PatternLattice {
		return nil, fmt.Errorf("onnxio.GoldenInput: unknown pattern %q (want %q)", pattern, PatternLattice)
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((97*i+13)%256)/128 - 1
	}
	return x, nil
}

// CheckGolden compares a runtime's output for the golden input with the manifest's.
func (m *Manifest) CheckGolden(got []float32) error {
	if len(got) != len(m.Golden.Output) {
		return fmt.Errorf("onnxio: golden check: %d outputs, want %d", len(got), len(m.Golden.Output))
	}
	d := maxAbsDiff(got, m.Golden.Output)
	if !(d <= m.Golden.Tolerance) {
		return fmt.Errorf("onnxio: golden check: outputs differ by %g (tolerance %g)", d, m.Golden.Tolerance)
	}
	return nil
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		e := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(e) {
			return math.NaN()
		}
		d = max(d, e)
	}
	return d
}

// Validate reports the first problem, naming its key.
func (m *Manifest) Validate() error {
	switch {
	case m.Version != ManifestVersion:
		return fmt.Errorf("version: %d is not supported (this build reads %d)", m.Version, ManifestVersion)
	case m.Kind != KindReward && m.Kind != KindPolicy:
		return fmt.Errorf("kind: unknown value %q (want reward or policy)", m.Kind)
	}
	if err := m.Input.validate(); err != nil {
		return err
	}
	if err := m.Output.validate(m.Kind); err != nil {
		return err
	}
	if m.Input.Name == m.Output.Name {
		return fmt.Errorf("output.name: %q is also the input's name", m.Output.Name)
	}
	switch {
	case m.Kind == KindReward && m.Reward == nil:
		return fmt.Errorf("reward: required for kind reward")
	case m.Kind != KindReward && m.Reward != nil:
		return fmt.Errorf("reward: only for kind reward, not %s", m.Kind)
	}
	if m.Reward != nil {
		if err := m.Reward.validate(); err != nil {
			return err
		}
	}
	if c := m.Control; c != nil {
		switch {
		case m.Kind != KindPolicy:
			return fmt.Errorf("control: only for kind policy, not %s", m.Kind)
		case c.RateHz < 1 || c.RateHz > 10000:
			return fmt.Errorf("control.rate_hz: must be 1 to 10000, got %d", c.RateHz)
		case !(c.ActionScale > 0) || math.IsInf(c.ActionScale, 0):
			return fmt.Errorf("control.action_scale_m: must be positive and finite, got %g", c.ActionScale)
		}
	}
	if e := m.Ensemble; e != nil && (e.Size < 1 || e.Member < 0 || e.Member >= e.Size) {
		return fmt.Errorf("ensemble: member %d of %d is not a member", e.Member, e.Size)
	}
	if err := m.Training.validate(m.Kind); err != nil {
		return err
	}
	switch {
	case m.CodeVersion == "":
		return fmt.Errorf("code_version: required")
	case m.Created.IsZero():
		return fmt.Errorf("created: required")
	}
	return m.Golden.validate(numel(m.Output.Shape))
}

func (in *Input) validate() error {
	if err := checkName("input.name", in.Name); err != nil {
		return err
	}
	if err := checkShape("input.shape", in.Shape); err != nil {
		return err
	}
	if len(in.Shape) == 3 {
		if in.Vision == nil {
			return fmt.Errorf("input.vision: required for an image input (shape %v)", in.Shape)
		}
		if err := in.Vision.Validate(); err != nil {
			return fmt.Errorf("input.vision.%w", err)
		}
		if in.Observation != "" {
			return fmt.Errorf("input.observation: only for state inputs, not images")
		}
		v := in.Vision
		if want := []int{v.Channels.Count(), v.Height, v.Width}; !slices.Equal(in.Shape, want) {
			return fmt.Errorf("input.shape: %v, but input.vision gives %v (channels, height, width)", in.Shape, want)
		}
		return nil
	}
	if in.Vision != nil {
		return fmt.Errorf("input.vision: only for image inputs ([C H W]), not shape %v", in.Shape)
	}
	return nil
}

func (out *Output) validate(kind Kind) error {
	if err := checkName("output.name", out.Name); err != nil {
		return err
	}
	if err := checkShape("output.shape", out.Shape); err != nil {
		return err
	}
	if kind == KindReward && !slices.Equal(out.Shape, []int{1}) {
		return fmt.Errorf("output.shape: a reward model gives [1] per sample, not %v", out.Shape)
	}
	if out.Meaning == "" {
		return fmt.Errorf("output.meaning: required")
	}
	return nil
}

func (r *RewardNorm) validate() error {
	switch {
	case !finite(r.Mean):
		return fmt.Errorf("reward.mean: must be finite, got %g", r.Mean)
	case !(r.Std > 0) || math.IsInf(r.Std, 0):
		return fmt.Errorf("reward.std: must be positive and finite, got %g", r.Std)
	}
	seen := map[string]bool{}
	for i, t := range r.Thresholds {
		switch {
		case t.Name == "":
			return fmt.Errorf("reward.thresholds[%d].name: required", i)
		case seen[t.Name]:
			return fmt.Errorf("reward.thresholds[%d].name: %q appears twice", i, t.Name)
		case !finite(t.Value):
			return fmt.Errorf("reward.thresholds[%d].value: must be finite, got %g", i, t.Value)
		}
		seen[t.Name] = true
	}
	if c := r.Count; c != nil {
		switch {
		case !(c.Beta > 0 && c.Beta <= 4):
			return fmt.Errorf("reward.count.beta: must be in (0, 4], got %g", c.Beta)
		case !(c.Cell > 0) || math.IsInf(c.Cell, 0):
			return fmt.Errorf("reward.count.cell: must be positive and finite, got %g", c.Cell)
		}
	}
	return nil
}

func (t *Training) validate(kind Kind) error {
	for i, h := range t.DataSHA256 {
		if !isSHA256(h) {
			return fmt.Errorf("training.data_sha256[%d]: %q is not a lowercase hex sha256", i, h)
		}
	}
	for i, h := range t.LabelsSHA256 {
		if !isSHA256(h) {
			return fmt.Errorf("training.labels_sha256[%d]: %q is not a lowercase hex sha256", i, h)
		}
	}
	if kind == KindReward && len(t.LabelsSHA256) == 0 {
		return fmt.Errorf("training.labels_sha256: required for kind reward")
	}
	if t.Labeler == "" {
		return fmt.Errorf("training.labeler: required")
	}
	return nil
}

func (g *Golden) validate(n int) error {
	if g.Pattern != PatternLattice {
		return fmt.Errorf("golden.pattern: unknown value %q (want %q)", g.Pattern, PatternLattice)
	}
	if len(g.Output) != n {
		return fmt.Errorf("golden.output: %d values, output.shape needs %d", len(g.Output), n)
	}
	for i, v := range g.Output {
		if !finite(float64(v)) {
			return fmt.Errorf("golden.output[%d]: must be finite, got %g", i, v)
		}
	}
	if !(g.Tolerance > 0) || math.IsInf(g.Tolerance, 0) {
		return fmt.Errorf("golden.tolerance: must be positive and finite, got %g", g.Tolerance)
	}
	return nil
}

// maxDims and maxElems bound shapes: a manifest is outside bytes, and a shape sizes buffers.
const (
	maxDims  = 3
	maxElems = 1 << 24
)

func checkShape(key string, s []int) error {
	if len(s) == 0 || len(s) > maxDims {
		return fmt.Errorf("%s: %d dimensions, want 1 to %d", key, len(s), maxDims)
	}
	n := 1
	for i, d := range s {
		if d < 1 || d > maxElems {
			return fmt.Errorf("%s[%d]: must be between 1 and %d, got %d", key, i, maxElems, d)
		}
		if n *= d; n > maxElems {
			return fmt.Errorf("%s: %v has more than %d elements", key, s, maxElems)
		}
	}
	return nil
}

// checkName accepts the names we give graph values: a letter, then letters, digits, '_',
// '.', '-' or '/'.
func checkName(key, s string) error {
	if s == "" {
		return fmt.Errorf("%s: required", key)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/')
		if !ok || i >= 64 {
			return fmt.Errorf("%s: %q is not a valid name (a letter, then letters, digits or _.-/, at most 64)", key, s)
		}
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// JSON is the manifest's compact, stable form: keys in a fixed order, equal manifests
// give equal bytes. This is what Export embeds.
func (m *Manifest) JSON() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnxio: manifest: %w", err)
	}
	return b, nil
}

// ParseManifest reads a manifest from JSON, rejecting unknown keys and trailing data, and
// validates it.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictJSON(data, &m); err != nil {
		return nil, fmt.Errorf("onnxio.ParseManifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("onnxio.ParseManifest: %w", err)
	}
	return &m, nil
}

// Sidecar is the JSON file written beside a model (SidecarPath): the manifest's keys and,
// last, "sha256", the lowercase hex sha256 of the .onnx file's bytes.
type Sidecar struct {
	Manifest
	SHA256 string `json:"sha256"`
}

// ParseSidecar reads a sidecar, rejecting unknown keys and trailing data, and validates
// the manifest and the hash's form.
func ParseSidecar(data []byte) (*Sidecar, error) {
	var s Sidecar
	if err := strictJSON(data, &s); err != nil {
		return nil, fmt.Errorf("onnxio.ParseSidecar: %w", err)
	}
	if err := s.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("onnxio.ParseSidecar: %w", err)
	}
	if !isSHA256(s.SHA256) {
		return nil, fmt.Errorf("onnxio.ParseSidecar: sha256: %q is not a lowercase hex sha256", s.SHA256)
	}
	return &s, nil
}

// JSON is the sidecar's form on disk: indented for people, with a final newline.
func (s *Sidecar) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("onnxio: sidecar: %w", err)
	}
	return append(b, '\n'), nil
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the manifest", ErrFormat)
	}
	return nil
}
