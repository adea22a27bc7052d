package vlm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// PromptVersion names the current prompt texts. Change it whenever a text changes: it
// is stored with every label, and the golden files under testdata/prompts fail until
// they are rewritten (go test -run Prompt -update).
const PromptVersion = "pairwise-v1"

// Mode is how a question is asked.
type Mode string

// OneStage asks for the answer directly; TwoStage first asks for an analysis of both
// images, then, in the same conversation, for the answer.
const (
	OneStage Mode = "one-stage"
	TwoStage Mode = "two-stage"
)

// ParseMode parses "one-stage" or "two-stage".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case OneStage, TwoStage:
		return Mode(s), nil
	}
	return "", fmt.Errorf("prompt mode %q: want one-stage or two-stage", s)
}

// Prompt is one version of the prompt texts. {goal} in Intro is replaced by the task's
// goal text.
type Prompt struct {
	Version string
	Mode    Mode
	System  string
	// Intro comes before the images, each of which is preceded by its label
	// (ImageLabels), and Question or Analyse after them.
	Intro       string
	ImageLabels [2]string
	// Question asks for the answer (one-stage); Analyse asks for the analysis and Answer
	// then for the answer (two-stage).
	Question string
	Analyse  string
	Answer   string
	// Retry is sent once when a reply cannot be read.
	Retry string
}

const answerFormat = `Reply with only a JSON object, one of:
{"answer": "first"} if Image 1 shows more progress
{"answer": "second"} if Image 2 shows more progress
{"answer": "equal"} if both show the same progress
{"answer": "unsure"} if you cannot tell`

// Prompts returns the current prompt texts for mode.
func Prompts(mode Mode) Prompt {
	return Prompt{
		Version: PromptVersion,
		Mode:    mode,
		System: "You are an expert judge of robot manipulation. You are shown two camera images taken " +
			"while a robot arm attempted the same task, and you judge which image shows more progress " +
			"toward the task's goal. Judge the state of the scene in each image (where the gripper and " +
			"the objects are), not the image quality, and do not assume anything from the order of the images.",
		Intro:       "Task goal: {goal}\n\nHere are two camera images from attempts at this task.",
		ImageLabels: [2]string{"Image 1:", "Image 2:"},
		Question:    "Which image shows more progress toward the goal?\n" + answerFormat,
		Analyse: "First analyse the two images. For each image, describe where the robot's gripper is and " +
			"the state of the objects that matter for the goal, and estimate how close that image is to the " +
			"goal being achieved. Do not give a final answer yet.",
		Answer: "Based on your analysis, which image shows more progress toward the goal?\n" + answerFormat,
		Retry: "I could not read your reply. Reply with exactly one of these JSON objects and nothing else:\n" +
			`{"answer": "first"}` + "\n" + `{"answer": "second"}` + "\n" + `{"answer": "equal"}` + "\n" + `{"answer": "unsure"}`,
	}
}

// ID is the prompt's version and mode, as labels record it: "pairwise-v1/two-stage".
func (p Prompt) ID() string { return p.Version + "/" + string(p.Mode) }

// Digest is a short hash of the texts used in the prompt's mode.
func (p Prompt) Digest() string {
	h := sha256.New()
	for _, s := range []string{string(p.Mode), p.System, p.Intro, p.ImageLabels[0], p.ImageLabels[1], p.Question, p.Analyse, p.Answer, p.Retry} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// intro is Intro with the goal filled in.
func (p Prompt) intro(goal string) string { return strings.ReplaceAll(p.Intro, "{goal}", goal) }
