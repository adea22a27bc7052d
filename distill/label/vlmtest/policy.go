package vlmtest

import (
	"fmt"
	"image"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"robodistill/distill/label/labeltest"
)

// Policy answers a validated question with the assistant's reply text.
// Implementations must be safe for concurrent use.
type Policy interface {
	Reply(q *Question) string
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(q *Question) string

// Reply implements Policy.
func (f PolicyFunc) Reply(q *Question) string { return f(q) }

// Truthful answers from the images: it scores the first two images of the conversation
// (default labeltest.ReadProgress) and prefers the higher score; scores within Tolerance
// (default 0.02) are "equal". In the analysis stage it describes both scores. With
// Varied it words its answers in turn as JSON, fenced JSON, "Image 2", "2", a sentence,
// a "**Answer:**" line and a <think> block followed by JSON, to exercise the parser.
type Truthful struct {
	Score     func(image.Image) float64
	Tolerance float64
	Varied    bool
	n         atomic.Uint64
}

// Reply implements Policy.
func (t *Truthful) Reply(q *Question) string {
	if len(q.Images) < 2 {
		return "I need two images to compare."
	}
	score := t.Score
	if score == nil {
		score = labeltest.ReadProgress
	}
	a, b := score(q.Images[0]), score(q.Images[1])
	if q.Analysis {
		return fmt.Sprintf("Image 1: the bar is about %.0f%% full. Image 2: the bar is about %.0f%% full.", 100*a, 100*b)
	}
	tol := t.Tolerance
	if tol == 0 {
		tol = 0.02
	}
	ans := "equal"
	switch {
	case a-b > tol:
		ans = "first"
	case b-a > tol:
		ans = "second"
	}
	if !t.Varied {
		return `{"answer": "` + ans + `"}`
	}
	return Word(ans, int(t.n.Add(1)))
}

// Word phrases an answer ("first", "second", "equal", "unsure") in style k of the styles
// a VLM replies in.
func Word(ans string, k int) string {
	num := map[string]string{"first": "1", "second": "2"}[ans]
	switch k % 7 {
	case 0:
		return `{"answer": "` + ans + `"}`
	case 1:
		return "```json\n{\"answer\": \"" + ans + "\"}\n```"
	case 2:
		if num != "" {
			return "Image " + num
		}
		return strings.ToUpper(ans[:1]) + ans[1:]
	case 3:
		if num != "" {
			return num
		}
		return ans + "."
	case 4:
		if num != "" {
			return "The " + ans + " image shows more progress toward the goal."
		}
		if ans == "equal" {
			return "Both images show the same progress."
		}
		return "I cannot tell."
	case 5:
		return "**Answer:** " + ans
	default:
		return "<think>Compare how full the bars are; the other image is not the " + ans + ".</think>\n{\"answer\":\"" + ans + "\"}"
	}
}

// PositionBiased answers "first" with probability P whatever the images show, and
// otherwise as Inner: a VLM's position bias. Its randomness comes from the request's
// content, so a repeated request gets the same answer.
type PositionBiased struct {
	P     float64
	Inner Policy
	Seed  uint64
}

// Reply implements Policy.
func (p *PositionBiased) Reply(q *Question) string {
	if !q.Analysis && q.Rand(p.Seed).Float64() < p.P {
		return `{"answer": "first"}`
	}
	return p.Inner.Reply(q)
}

// Garbled replies with text that names no choice with probability P (retry prompts
// included), and otherwise as Inner.
type Garbled struct {
	P     float64
	Inner Policy
	Seed  uint64
}

// Reply implements Policy.
func (g *Garbled) Reply(q *Question) string {
	if !q.Analysis && q.Rand(g.Seed^0x9e3779b97f4a7c15).Float64() < g.P {
		return "Both images show a robot arm over a table."
	}
	return g.Inner.Reply(q)
}

// Constant always replies s.
func Constant(s string) Policy { return PolicyFunc(func(*Question) string { return s }) }

// Instant is a minimal handler for benchmarks: it reads and discards the request and
// answers every POST with the same chat completion, so that what is measured is the
// client.
func Instant(model, content string) http.Handler {
	body := []byte(fmt.Sprintf(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":300,"completion_tokens":5,"total_tokens":305}}`, model, content))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}
