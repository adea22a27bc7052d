package label_test

import (
	"context"
	"testing"

	"robodistill/distill/label"
)

// scriptJudge answers from a table keyed by order and sample, in the terms of the
// question (first = shown first).
type scriptJudge struct {
	answers map[label.Order][]label.Choice
}

func (j *scriptJudge) Info() label.LabelerInfo { return label.LabelerInfo{Kind: "vlm", Spec: "script"} }

func (j *scriptJudge) Judge(_ context.Context, _ label.Query, o label.Order, s int) (label.Verdict, error) {
	c := j.answers[o][s]
	return label.Verdict{Choice: c, Raw: c.String(), Usage: label.Usage{Requests: 1, PromptTokens: 10}}, nil
}

func TestConsistent(t *testing.T) {
	F, S, E, U, X := label.ChoiceFirst, label.ChoiceSecond, label.ChoiceEqual, label.ChoiceUnsure, label.ChoiceInvalid
	type want struct {
		answer     label.Answer
		conf       float64
		consistent string // "yes", "no", ""
	}
	for _, tc := range []struct {
		name   string
		opt    label.ConsistentOptions
		ab, ba []label.Choice
		want   want
	}{
		{"agree first", label.ConsistentOptions{}, []label.Choice{F}, []label.Choice{S}, want{label.First, 1, "yes"}},
		{"agree second", label.ConsistentOptions{}, []label.Choice{S}, []label.Choice{F}, want{label.Second, 1, "yes"}},
		{"agree equal", label.ConsistentOptions{}, []label.Choice{E}, []label.Choice{E}, want{label.Tie, 1, "yes"}},
		{"position bias, tie", label.ConsistentOptions{}, []label.Choice{F}, []label.Choice{F}, want{label.Tie, 1, "no"}},
		{"position bias, drop", label.ConsistentOptions{OnDisagree: label.DropOnDisagree}, []label.Choice{F}, []label.Choice{F}, want{label.Abstain, 0, "no"}},
		{"first vs equal, tie", label.ConsistentOptions{}, []label.Choice{F}, []label.Choice{E}, want{label.Tie, 0.5, "no"}},
		{"one order unsure", label.ConsistentOptions{}, []label.Choice{F}, []label.Choice{U}, want{label.Abstain, 0, ""}},
		{"one order unreadable", label.ConsistentOptions{}, []label.Choice{X}, []label.Choice{S}, want{label.Abstain, 0, ""}},
		{"votes 2 of 3 each", label.ConsistentOptions{Samples: 3}, []label.Choice{F, F, S}, []label.Choice{S, X, S}, want{label.First, 4.0 / 5, "yes"}},
		{"tied vote in one order", label.ConsistentOptions{Samples: 2}, []label.Choice{F, S}, []label.Choice{S, S}, want{label.Abstain, 0, ""}},
		{"one order only", label.ConsistentOptions{Orders: 1, Samples: 3}, []label.Choice{S, S, E}, nil, want{label.Second, 2.0 / 3, ""}},
		{"one order unsure only", label.ConsistentOptions{Orders: 1}, []label.Choice{U}, nil, want{label.Abstain, 0, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := label.NewConsistent(&scriptJudge{map[label.Order][]label.Choice{label.OrderAB: tc.ab, label.OrderBA: tc.ba}}, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			l, err := c.Label(context.Background(), label.Query{})
			if err != nil {
				t.Fatal(err)
			}
			cons := ""
			if l.Consistent != nil {
				cons = map[bool]string{true: "yes", false: "no"}[*l.Consistent]
			}
			if l.Answer != tc.want.answer || cons != tc.want.consistent || abs(l.Confidence-tc.want.conf) > 1e-9 {
				t.Errorf("answer %s conf %.3f consistent %q; want %+v (votes %+v)", l.Answer, l.Confidence, cons, tc.want, *l.Votes)
			}
			wantAnswers := len(tc.ab) + len(tc.ba)
			if l.Usage.Requests != wantAnswers || len(l.Orders) != max(1, min(2, len(tc.ba)+1)) {
				t.Errorf("usage %+v, %d orders", *l.Usage, len(l.Orders))
			}
			if len(l.Orders) == 2 && l.Orders[1].Shown != label.OrderBA {
				t.Errorf("second order shown %s", l.Orders[1].Shown)
			}
		})
	}
	info := mustConsistent(t, label.ConsistentOptions{Samples: 3, OnDisagree: label.DropOnDisagree}).Info()
	if info.Params["samples"] != 3 || info.Params["orders"] != 2 || info.OnDisagree != "drop" {
		t.Errorf("info %+v", info)
	}
	for _, o := range []label.ConsistentOptions{{Orders: 3}, {Samples: -1}, {OnDisagree: "flip"}} {
		if _, err := label.NewConsistent(&scriptJudge{}, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func mustConsistent(t *testing.T, o label.ConsistentOptions) *label.Consistent {
	c, err := label.NewConsistent(&scriptJudge{}, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
