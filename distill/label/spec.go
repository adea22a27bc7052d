package label

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Spec is a parsed labeller spec. The grammar (docs/labels.md):
//
//	spec  = "vlm" | term { "+" term }
//	term  = "oracle" | name ":" number
//	name  = "mistake" | "noisy" | "myopic" | "skip" | "equal" | "biased"
//
// "oracle" is the rational scripted teacher; the other terms change one parameter of it
// (B-Pref's teacher family) and combine, e.g. "myopic:0.9+mistake:0.1". Each name may
// appear once. "vlm" stands alone: the VLM's settings come from flags.
type Spec struct {
	// VLM selects the VLM labeller; the teacher fields are then unused.
	VLM bool
	// Beta is the Boltzmann rationality of "noisy:β": P(A ≻ B) = σ(β·(R_A − R_B)).
	// +Inf answers deterministically (the oracle).
	Beta float64
	// Gamma is the myopic discount of "myopic:γ" over a segment's rewards; 1 is none.
	Gamma float64
	// Skip abstains when both returns are below it ("skip:thr"); -Inf never skips.
	Skip float64
	// Equal answers tie when the returns differ by less than it ("equal:thr"); equal
	// returns are a tie whatever it is.
	Equal float64
	// Epsilon flips a decisive answer with this probability ("mistake:ε").
	Epsilon float64
	// Bias is the probability that the position-biased teacher ("biased:p") answers
	// "the frame shown first" whatever it sees; it is a Judge, asked in both orders.
	Bias float64
}

// Oracle is the embedded default labeller: the rational scripted teacher.
var Oracle = Spec{Beta: math.Inf(1), Gamma: 1, Skip: math.Inf(-1)}

type specTerm struct {
	name  string
	check func(v float64) bool
	want  string
	field func(s *Spec) *float64
}

// specTerms in canonical order: the order B-Pref applies them in.
var specTerms = []specTerm{
	{"noisy", func(v float64) bool { return v > 0 }, "β > 0", func(s *Spec) *float64 { return &s.Beta }},
	{"myopic", func(v float64) bool { return v > 0 && v <= 1 }, "γ in (0, 1]", func(s *Spec) *float64 { return &s.Gamma }},
	{"skip", func(v float64) bool { return !math.IsInf(v, 0) }, "a finite threshold", func(s *Spec) *float64 { return &s.Skip }},
	{"equal", func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }, "a threshold ≥ 0", func(s *Spec) *float64 { return &s.Equal }},
	{"mistake", func(v float64) bool { return v >= 0 && v <= 1 }, "ε in [0, 1]", func(s *Spec) *float64 { return &s.Epsilon }},
	{"biased", func(v float64) bool { return v >= 0 && v <= 1 }, "p in [0, 1]", func(s *Spec) *float64 { return &s.Bias }},
}

// SpecError is a spec that does not parse; its message names the spec and the bad term.
type SpecError struct {
	Spec, Msg string
}

func (e *SpecError) Error() string { return fmt.Sprintf("labeler spec %q: %s", e.Spec, e.Msg) }

// ParseSpec parses a labeller spec.
func ParseSpec(s string) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, &SpecError{Spec: s, Msg: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty; want vlm, oracle, or terms like mistake:0.2 joined by +")
	}
	spec := Oracle
	seen := map[string]bool{}
	terms := splitTerms(s)
	for _, raw := range terms {
		term := strings.TrimSpace(raw)
		name, val, hasVal := strings.Cut(term, ":")
		name = strings.TrimSpace(name)
		switch {
		case term == "":
			return bad("empty term")
		case name == "vlm":
			if len(terms) > 1 {
				return bad("vlm cannot be combined with other terms")
			}
			if hasVal {
				return bad("vlm takes no value (the model comes from --model)")
			}
			return Spec{VLM: true, Beta: math.Inf(1), Gamma: 1, Skip: math.Inf(-1)}, nil
		case name == "oracle":
			if hasVal {
				return bad("oracle takes no value")
			}
			if seen[name] {
				return bad("oracle given twice")
			}
			seen[name] = true
			continue
		}
		var t *specTerm
		for i := range specTerms {
			if specTerms[i].name == name {
				t = &specTerms[i]
			}
		}
		if t == nil {
			return bad("unknown term %q; want vlm, oracle, mistake:ε, noisy:β, myopic:γ, skip:thr, equal:thr or biased:p", name)
		}
		if !hasVal {
			return bad("%s needs a value (%s:%s)", name, name, strings.SplitN(t.want, " ", 2)[0])
		}
		if seen[name] {
			return bad("%s given twice", name)
		}
		seen[name] = true
		val = strings.TrimSpace(val)
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(v) || !t.check(v) {
			return bad("%s needs %s, got %q", name, t.want, val)
		}
		*t.field(&spec) = v
	}
	return spec, nil
}

// splitTerms splits at each "+" that starts a term (is followed by a letter, after
// spaces), so that a number's exponent sign ("skip:1e+07") stays in its term.
func splitTerms(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			continue
		}
		j := i + 1
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j == len(s) || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || s[j] == '+' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// String is the canonical form of the spec: ParseSpec(s.String()) == s.
func (s Spec) String() string {
	if s.VLM {
		return "vlm"
	}
	var parts []string
	for _, p := range s.params() {
		// No "e+" exponents: "+" joins terms.
		parts = append(parts, p.name+":"+strings.Replace(strconv.FormatFloat(p.v, 'g', -1, 64), "e+", "e", 1))
	}
	if len(parts) == 0 {
		return "oracle"
	}
	return strings.Join(parts, "+")
}

type namedValue struct {
	name string
	v    float64
}

// params lists the terms that differ from the oracle, in canonical order.
func (s Spec) params() []namedValue {
	var out []namedValue
	for _, t := range specTerms {
		v := *t.field(&s)
		if v != *t.field(&Oracle) {
			out = append(out, namedValue{t.name, v})
		}
	}
	return out
}

// Params returns the teacher parameters that differ from the oracle, by term name, for
// a label's provenance.
func (s Spec) Params() map[string]float64 {
	ps := s.params()
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]float64, len(ps))
	for _, p := range ps {
		m[p.name] = p.v
	}
	return m
}
