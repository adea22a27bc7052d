package vlm

import (
	"strings"
	"testing"
	"unicode/utf8"

	"robodistill/distill/label"
)

func TestParseAnswer(t *testing.T) {
	F, S, E, U, X := label.ChoiceFirst, label.ChoiceSecond, label.ChoiceEqual, label.ChoiceUnsure, label.ChoiceInvalid
	for _, tc := range []struct {
		in   string
		want label.Choice
	}{
		// JSON, as asked.
		{`{"answer": "first"}`, F},
		{`{"answer":"second"}`, S},
		{`{"answer": "equal"}`, E},
		{`{"answer": "unsure"}`, U},
		{`{"Answer": "Second"}`, S},
		{"```json\n{\"answer\": \"first\"}\n```", F},
		{`{"answer": "Image 2"}`, S},
		{`{"answer": 1}`, F},
		{`{"choice": 2, "reason": "the drawer is open"}`, S},
		{`{"result": {"answer": "second"}}`, S},
		{`{"reasoning": "Image 1 has the gripper far away {not close}", "answer": "second"}`, S},
		{`Sure! {"answer": "first"} is my answer.`, F},
		{`{"answer": "first"} wait, no: {"answer": "second"}`, S},
		{`{"answer": "the first image"}`, F},
		{`{"answer": "tie"}`, E},
		{`{"answer": "cannot tell"}`, U},
		{`{"answer": "both"}`, E},
		{`{"answer": 0}`, X},
		{`{"answer": "maybe"}`, X},
		// Short replies.
		{"Image 1", F},
		{"image 2.", S},
		{"1", F},
		{"2", S},
		{" Second ", S},
		{"The second image", S},
		{"the first one", F},
		{"Image #2", S},
		{"Image two", S},
		{"Equal.", E},
		{"Same", E},
		{"Neither", E},
		{"No difference", E},
		{"Unsure", U},
		{"I can't tell.", U},
		{"Not sure", U},
		{"I don't know", U},
		{"The second image shows more progress.", S},
		{"Image 1 is better", F},
		{"Both images show the same progress.", E},
		// Markers.
		{"The gripper in image 1 is near the handle.\nFinal answer: Image 2", S},
		{"**Answer:** first", F},
		{"**Answer:**\nSecond", S},
		{"Analysis: image 1 shows the drawer closed, image 2 open.\nAnswer: 2", S},
		{"Verdict - equal", E},
		{"The answer is the first image.", F},
		{"My answer would be image 2.", S},
		// Reasoning blocks.
		{"<think>Image 1 looks like first... or second?</think>\n{\"answer\":\"second\"}", S},
		{"<think>hmm</think>Image 1", F},
		// Sentences.
		{"Looking at both, image 2 shows more progress than image 1.", S},
		{"There is more progress in the first image.", F},
		{"In Image 1 the drawer is closed. In Image 2 it is open, so Image 2 is closer to the goal.", S},
		{"Image 2 is further along than Image 1.", S},
		{"More progress is visible in image 1 than in image 2.", F},
		// Ambiguous or negated: nothing rather than a guess.
		{"", X},
		{"Both images show a robot arm over a table.", X},
		{"Image 1 and image 2", X},
		{"Not the first", X},
		{"Image 1 shows less progress than image 2.", X},
		{"In image 1 the gripper is further from the goal.", X},
		{"first or second", X},
		{"I refuse.", X},
		{"{", X},
		{`{"answer": }`, X},
		{"Answer:", X},
	} {
		if got := ParseAnswer(tc.in); got != tc.want {
			t.Errorf("ParseAnswer(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAnswer: no panics, bounded work, and the canonical JSON answers of every
// choice still read the same with any reply text before them.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"answer": "first"}`, "Image 2", "**Answer:** equal", "<think>x</think>2",
		"Image 2 shows more progress than image 1.", "{{{{", `{"a":{"b":{"c":{"answer":1}}}}`, "İmage 1", "no 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseAnswer(s)
		if c > label.ChoiceUnsure {
			t.Fatalf("choice %d", c)
		}
		if ParseAnswer(s) != c {
			t.Fatal("not deterministic")
		}
		if strings.Contains(s, "{") || !utf8.ValidString(s) || len(s) > maxParse/2 {
			return
		}
		for _, want := range []label.Choice{label.ChoiceFirst, label.ChoiceSecond, label.ChoiceEqual, label.ChoiceUnsure} {
			if got := ParseAnswer(s + "\n" + `{"answer": "` + want.String() + `"}`); got != want {
				t.Fatalf("%q then the JSON answer %s reads as %s", s, want, got)
			}
		}
	})
}

func BenchmarkParseAnswer(b *testing.B) {
	long := strings.Repeat("Image 1 shows the gripper above the drawer handle while image 2 shows it pulling. ", 20) + "\nFinal answer: Image 2"
	for b.Loop() {
		ParseAnswer(long)
	}
}
