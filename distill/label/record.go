package label

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RecordVersion is the version of the record format. It changes when a reader of the
// previous version would misread a record; added optional fields keep it.
const RecordVersion = 1

// Record is one label, one line of a label file.
type Record struct {
	V int `json:"v"`
	// A and B are the hashes of the two frames compared (the last frames of segments);
	// Answer First means A shows more progress.
	A string `json:"a"`
	B string `json:"b"`
	// Where the frames come from.
	AEpisode string `json:"a_episode"`
	AStep    int    `json:"a_step"`
	BEpisode string `json:"b_episode"`
	BStep    int    `json:"b_step"`
	// ASegment and BSegment list all frames of multi-frame segments in step order.
	ASegment []string `json:"a_segment,omitempty"`
	BSegment []string `json:"b_segment,omitempty"`

	Task string `json:"task"`
	Goal string `json:"goal"`

	Labeler LabelerInfo `json:"labeler"`

	Answer Answer `json:"answer"`
	// Confidence is the labeller's probability for its answer: the share of votes for it
	// (VLM), or the teacher model's probability of the answer it gave.
	Confidence float64 `json:"confidence"`
	Votes      *Votes  `json:"votes,omitempty"`
	// Orders holds every raw answer of a judge, one entry per order asked.
	Orders []OrderResult `json:"orders,omitempty"`
	// Consistent tells whether the two orders agreed; absent when only one order was
	// asked or one order gave no decisive verdict.
	Consistent *bool `json:"consistent,omitempty"`

	// Truth is the simulator's ground truth for the two sides, when known.
	Truth *Truth    `json:"truth,omitempty"`
	Usage *Usage    `json:"usage,omitempty"`
	Time  time.Time `json:"time"`
}

// LabelerInfo is a label's provenance.
type LabelerInfo struct {
	Kind string `json:"kind"` // "teacher" or "vlm"
	// Spec is the canonical labeller spec ("mistake:0.2", "vlm").
	Spec string `json:"spec"`
	// Model and Endpoint (scheme and host of the base URL) of a VLM.
	Model    string `json:"model,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// PromptVersion names the prompt texts and mode ("pairwise-v1/two-stage");
	// PromptDigest is a hash of the texts themselves.
	PromptVersion string `json:"prompt_version,omitempty"`
	PromptDigest  string `json:"prompt_digest,omitempty"`
	// Params are numeric settings: teacher parameters, or sampling settings, orders and
	// samples per order of a judge.
	Params map[string]float64 `json:"params,omitempty"`
	// OnDisagree is what a judge's order disagreement becomes: "tie" or "drop".
	OnDisagree string `json:"on_disagree,omitempty"`
	Seed       uint64 `json:"seed"`
}

// Key identifies the labeller for resuming a run: a pair already labelled by a labeller
// with the same key is not asked again. The seed and the endpoint are not part of it.
func (l LabelerInfo) Key() string {
	var b strings.Builder
	b.WriteString(l.Kind + "|" + l.Spec + "|" + l.Model + "|" + l.PromptVersion + "|" + l.PromptDigest + "|" + l.OnDisagree)
	names := make([]string, 0, len(l.Params))
	for k := range l.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString("|" + k + "=" + strconv.FormatFloat(l.Params[k], 'g', -1, 64))
	}
	return b.String()
}

// Name is a short human name: the spec, with the model for a VLM.
func (l LabelerInfo) Name() string {
	if l.Model != "" {
		return l.Spec + " " + l.Model + " " + l.PromptVersion
	}
	return l.Spec
}

// Votes counts a judge's answers over all orders and samples, in record terms.
type Votes struct {
	First   int `json:"first"`
	Second  int `json:"second"`
	Equal   int `json:"equal"`
	Unsure  int `json:"unsure"`
	Invalid int `json:"invalid"`
}

func (v *Votes) add(c Choice) {
	switch c {
	case ChoiceFirst:
		v.First++
	case ChoiceSecond:
		v.Second++
	case ChoiceEqual:
		v.Equal++
	case ChoiceUnsure:
		v.Unsure++
	default:
		v.Invalid++
	}
}

// Decisive counts first, second and equal votes.
func (v Votes) Decisive() int { return v.First + v.Second + v.Equal }

// OrderResult holds a judge's answers to one order of the pair.
type OrderResult struct {
	Shown   Order    `json:"shown"`
	Answers []Sample `json:"answers"`
	// Verdict is the order's vote, in record terms (first = frame A).
	Verdict Choice `json:"verdict"`
}

// Sample is one answer of a judge.
type Sample struct {
	// Raw is the final answer text; Analysis the first stage's text in two-stage mode.
	Raw      string `json:"raw"`
	Analysis string `json:"analysis,omitempty"`
	// Parsed is the answer as read, in the terms of the question: first = shown first.
	Parsed  Choice `json:"parsed"`
	Retried bool   `json:"retried,omitempty"`
	Cached  bool   `json:"cached,omitempty"`
}

// Truth is simulator ground truth: each side's return (the sum of its frames' rewards)
// and whether its last frame is a success.
type Truth struct {
	A        float64 `json:"a"`
	B        float64 `json:"b"`
	ASuccess bool    `json:"a_success,omitempty"`
	BSuccess bool    `json:"b_success,omitempty"`
}

// Gap is the progress gap between the two sides.
func (t Truth) Gap() float64 { return math.Abs(t.A - t.B) }

// Usage counts a labeller's requests, tokens and estimated cost.
type Usage struct {
	Requests         int     `json:"requests"`
	Cached           int     `json:"cached"`
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// Add accumulates o.
func (u *Usage) Add(o Usage) {
	u.Requests += o.Requests
	u.Cached += o.Cached
	u.PromptTokens += o.PromptTokens
	u.CompletionTokens += o.CompletionTokens
	u.CostUSD += o.CostUSD
}

// PairKey identifies the record's pair (see Pair.Key).
func (r *Record) PairKey() string {
	a, b := r.ASegment, r.BSegment
	if len(a) == 0 {
		a = []string{r.A}
	}
	if len(b) == 0 {
		b = []string{r.B}
	}
	return pairKey(a, b)
}

// recordKey is the store's identity of a label: labeller and pair.
type recordKey [16]byte

func makeKey(labelerKey, pairKey string) recordKey {
	h := sha256.New()
	h.Write([]byte(labelerKey))
	h.Write([]byte{0})
	h.Write([]byte(pairKey))
	var k recordKey
	copy(k[:], h.Sum(nil))
	return k
}

// Validate checks what every reader relies on.
func (r *Record) Validate() error {
	var errs []error
	if r.V != RecordVersion {
		errs = append(errs, fmt.Errorf("v: version %d is not supported (this reader knows %d)", r.V, RecordVersion))
	}
	if r.A == "" || r.B == "" {
		errs = append(errs, errors.New("a, b: a frame hash is missing"))
	} else if r.A == r.B && strings.Join(r.ASegment, ",") == strings.Join(r.BSegment, ",") {
		errs = append(errs, errors.New("a, b: the two sides are the same"))
	}
	if len(r.ASegment) > 0 && r.ASegment[len(r.ASegment)-1] != r.A {
		errs = append(errs, errors.New("a_segment: does not end with a"))
	}
	if len(r.BSegment) > 0 && r.BSegment[len(r.BSegment)-1] != r.B {
		errs = append(errs, errors.New("b_segment: does not end with b"))
	}
	if r.Labeler.Kind == "" {
		errs = append(errs, errors.New("labeler.kind: missing"))
	}
	if !r.Answer.Valid() {
		errs = append(errs, fmt.Errorf("answer: %q is not first, second, tie or abstain", r.Answer))
	}
	if !(r.Confidence >= 0 && r.Confidence <= 1) {
		errs = append(errs, fmt.Errorf("confidence: %v outside [0, 1]", r.Confidence))
	}
	return errors.Join(errs...)
}
