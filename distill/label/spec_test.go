package label

import (
	"math"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
		check     func(Spec) bool
	}{
		{"oracle", "oracle", func(s Spec) bool { return math.IsInf(s.Beta, 1) && s.Gamma == 1 && math.IsInf(s.Skip, -1) }},
		{"vlm", "vlm", func(s Spec) bool { return s.VLM }},
		{"mistake:0.2", "mistake:0.2", func(s Spec) bool { return s.Epsilon == 0.2 }},
		{"noisy:2", "noisy:2", func(s Spec) bool { return s.Beta == 2 }},
		{"noisy:inf", "oracle", func(s Spec) bool { return math.IsInf(s.Beta, 1) }},
		{"equal:0.5", "equal:0.5", func(s Spec) bool { return s.Equal == 0.5 }},
		{"skip:1", "skip:1", func(s Spec) bool { return s.Skip == 1 }},
		{"skip:-3", "skip:-3", func(s Spec) bool { return s.Skip == -3 }},
		{"myopic:0.9", "myopic:0.9", func(s Spec) bool { return s.Gamma == 0.9 }},
		{"biased:0.3", "biased:0.3", func(s Spec) bool { return s.Bias == 0.3 }},
		{" mistake : 0.1 + myopic:0.5 ", "myopic:0.5+mistake:0.1", func(s Spec) bool { return s.Epsilon == 0.1 && s.Gamma == 0.5 }},
		{"oracle+mistake:0", "oracle", func(s Spec) bool { return s.Epsilon == 0 }},
		{"biased:0.2+noisy:1", "noisy:1+biased:0.2", func(s Spec) bool { return s.Bias == 0.2 && s.Beta == 1 }},
	} {
		s, err := ParseSpec(tc.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tc.in, err)
			continue
		}
		if !tc.check(s) || s.String() != tc.canon {
			t.Errorf("ParseSpec(%q) = %+v (%s), want %s", tc.in, s, s, tc.canon)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"", `labeler spec "": empty; want vlm, oracle, or terms like mistake:0.2 joined by +`},
		{"orcale", `labeler spec "orcale": unknown term "orcale"; want vlm, oracle, mistake:ε, noisy:β, myopic:γ, skip:thr, equal:thr or biased:p`},
		{"mistake", `labeler spec "mistake": mistake needs a value (mistake:ε)`},
		{"mistake:x", `labeler spec "mistake:x": mistake needs ε in [0, 1], got "x"`},
		{"mistake:1.5", `labeler spec "mistake:1.5": mistake needs ε in [0, 1], got "1.5"`},
		{"mistake:nan", `labeler spec "mistake:nan": mistake needs ε in [0, 1], got "nan"`},
		{"noisy:0", `labeler spec "noisy:0": noisy needs β > 0, got "0"`},
		{"noisy:-1", `labeler spec "noisy:-1": noisy needs β > 0, got "-1"`},
		{"myopic:0", `labeler spec "myopic:0": myopic needs γ in (0, 1], got "0"`},
		{"myopic:1.1", `labeler spec "myopic:1.1": myopic needs γ in (0, 1], got "1.1"`},
		{"equal:-1", `labeler spec "equal:-1": equal needs a threshold ≥ 0, got "-1"`},
		{"skip:inf", `labeler spec "skip:inf": skip needs a finite threshold, got "inf"`},
		{"biased:2", `labeler spec "biased:2": biased needs p in [0, 1], got "2"`},
		{"vlm+mistake:0.1", `labeler spec "vlm+mistake:0.1": vlm cannot be combined with other terms`},
		{"vlm:gpt-4o", `labeler spec "vlm:gpt-4o": vlm takes no value (the model comes from --model)`},
		{"oracle:1", `labeler spec "oracle:1": oracle takes no value`},
		{"mistake:0.1+mistake:0.2", `labeler spec "mistake:0.1+mistake:0.2": mistake given twice`},
		{"mistake:0.1+", `labeler spec "mistake:0.1+": empty term`},
		{"Oracle", `labeler spec "Oracle": unknown term "Oracle"; want vlm, oracle, mistake:ε, noisy:β, myopic:γ, skip:thr, equal:thr or biased:p`},
	} {
		_, err := ParseSpec(tc.in)
		if err == nil || err.Error() != tc.err {
			t.Errorf("ParseSpec(%q):\n got  %v\n want %s", tc.in, err, tc.err)
		}
	}
}

// FuzzParseSpec: no panics, and every spec that parses has a canonical form that parses
// back to the same spec.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"oracle", "vlm", "mistake:0.2", "noisy:1+myopic:0.9", "skip:1e3+equal:0.1+biased:0.5", "mistake:", "+", "noisy:0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s)
		if err != nil {
			if _, ok := err.(*SpecError); !ok {
				t.Fatalf("error %T is not a *SpecError", err)
			}
			return
		}
		again, err := ParseSpec(spec.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", spec.String(), s, err)
		}
		if again != spec {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, spec, spec.String(), again)
		}
	})
}

func TestSpecExponents(t *testing.T) {
	s, err := ParseSpec("skip:1e+07+mistake:1e-2")
	if err != nil || s.Skip != 1e7 || s.Epsilon != 0.01 || s.String() != "skip:1e07+mistake:0.01" {
		t.Fatalf("%+v %v %s", s, err, s)
	}
}
