package vlm

import (
	"encoding/json"
	"strings"

	"robodistill/distill/label"
)

// maxParse bounds the text ParseAnswer reads: the answer comes at the end of a reply.
const maxParse = 16 << 10

// ParseAnswer reads a VLM's reply leniently and returns the choice it states, or
// label.ChoiceInvalid when it cannot tell. In order, it tries:
//
//  1. JSON objects (the last one first) with a key such as "answer", "choice" or
//     "preference" whose value reads as a choice ("first", "Image 2", 1, "equal", ...);
//  2. the text after the last marker such as "Final answer:", "Answer:" or "Verdict:";
//  3. the whole reply, if it is short ("Image 1", "2", "the second image", "Equal.");
//  4. the last sentences, for a comparative statement about one image ("Image 2 shows
//     more progress than image 1.", "There is more progress in the first image.").
//
// Reasoning blocks (<think>…</think>) are ignored. A short phrase that names both images,
// or negates ("not the first"), reads as nothing rather than as a guess.
func ParseAnswer(s string) label.Choice {
	if len(s) > maxParse {
		s = s[len(s)-maxParse:]
	}
	s = asciiLower(s)
	for _, end := range []string{"</think>", "</thinking>", "</reasoning>"} {
		if i := strings.LastIndex(s, end); i >= 0 {
			s = s[i+len(end):]
		}
	}
	if c := fromJSON(s); c != label.ChoiceInvalid {
		return c
	}
	if c := fromMarker(s); c != label.ChoiceInvalid {
		return c
	}
	if c := phrase(s, 12); c != label.ChoiceInvalid {
		return c
	}
	return fromSentences(s)
}

// asciiLower lowercases ASCII letters only, so that byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var answerKeys = map[string]bool{
	"answer": true, "final_answer": true, "finalanswer": true, "final answer": true, "choice": true,
	"preference": true, "preferred": true, "better": true, "winner": true, "result": true,
	"verdict": true, "more_progress": true, "image": true, "selected": true, "output": true,
}

// fromJSON reads the last JSON object that holds an answer.
func fromJSON(s string) label.Choice {
	tries := 0
	for end := len(s); end > 0 && tries < 32; {
		i := strings.LastIndexByte(s[:end], '{')
		if i < 0 {
			break
		}
		end = i
		tries++
		j := matchBrace(s[i:])
		if j < 0 {
			continue
		}
		var v any
		if json.Unmarshal([]byte(s[i:i+j+1]), &v) != nil {
			continue
		}
		if c := choiceIn(v, 0); c != label.ChoiceInvalid {
			return c
		}
	}
	return label.ChoiceInvalid
}

// matchBrace returns the index of the brace closing s[0], or -1, looking at most 8 KiB.
func matchBrace(s string) int {
	depth, inStr, esc := 0, false, false
	for i := 0; i < len(s) && i < 8<<10; i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func choiceIn(v any, depth int) label.Choice {
	m, ok := v.(map[string]any)
	if !ok || depth > 3 {
		return label.ChoiceInvalid
	}
	for k, x := range m {
		if !answerKeys[strings.TrimSpace(k)] {
			continue
		}
		switch x := x.(type) {
		case string:
			if strings.EqualFold(strings.TrimSpace(x), "both") { // {"answer": "both"}: neither is ahead
				return label.ChoiceEqual
			}
			if c := phrase(x, 12); c != label.ChoiceInvalid {
				return c
			}
		case float64:
			switch x {
			case 1:
				return label.ChoiceFirst
			case 2:
				return label.ChoiceSecond
			}
		}
	}
	for _, x := range m {
		if c := choiceIn(x, depth+1); c != label.ChoiceInvalid {
			return c
		}
	}
	return label.ChoiceInvalid
}

var markers = []string{"final answer", "answer", "verdict", "conclusion", "choice", "winner", "preferred image", "preference"}

// fromMarker reads the phrase after the last answer marker, up to the end of its line.
func fromMarker(s string) label.Choice {
	type hit struct{ at, n int }
	var hits []hit
	for _, m := range markers {
		for from := 0; len(hits) < 64; {
			i := strings.Index(s[from:], m)
			if i < 0 {
				break
			}
			hits = append(hits, hit{from + i, len(m)})
			from += i + len(m)
		}
	}
	// Latest marker first.
	for k := 0; k < len(hits) && k < 8; k++ {
		best := -1
		for i, h := range hits {
			if h.at >= 0 && (best < 0 || h.at > hits[best].at) {
				best = i
			}
		}
		h := hits[best]
		hits[best].at = -1
		rest := s[h.at+h.n:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			rest = rest[:nl]
			if strings.Trim(rest, " \t*:_#-=>`") == "" { // "**Answer:**\nImage 2"
				rest = s[h.at+h.n+nl+1:]
				if nl2 := strings.IndexByte(rest, '\n'); nl2 >= 0 {
					rest = rest[:nl2]
				}
			}
		}
		words := tokenize(rest)
		for len(words) > 0 && (words[0] == "is" || words[0] == "s" || words[0] == "would" || words[0] == "be") {
			words = words[1:]
		}
		if c := classify(words, 10); c != label.ChoiceInvalid {
			return c
		}
	}
	return label.ChoiceInvalid
}

// phrase classifies a short text of at most maxWords words.
func phrase(s string, maxWords int) label.Choice { return classify(tokenize(s), maxWords) }

// tokenize splits lowercase text into runs of letters and digits.
func tokenize(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
}

var (
	firstWords  = map[string]bool{"first": true, "1": true, "1st": true, "former": true}
	secondWords = map[string]bool{"second": true, "2": true, "2nd": true, "latter": true}
	equalWords  = map[string]bool{"equal": true, "equally": true, "same": true, "tie": true, "tied": true,
		"neither": true, "similar": true, "identical": true, "indistinguishable": true, "equivalent": true}
	unsureWords = map[string]bool{"unsure": true, "uncertain": true, "unknown": true, "unclear": true,
		"undetermined": true, "undecided": true, "idk": true, "indeterminate": true}
	nounWords   = map[string]bool{"image": true, "picture": true, "frame": true, "photo": true, "img": true, "option": true, "number": true, "no": true}
	negateWords = map[string]bool{"not": true, "no": true, "nor": true, "never": true, "isn": true, "doesn": true, "don": true, "cannot": true, "t": true}
	// Multi-word phrases, matched before single words (and then removed).
	unsurePhrases = [][]string{{"not", "sure"}, {"can", "t", "tell"}, {"cannot", "tell"}, {"cant", "tell"},
		{"cannot", "determine"}, {"can", "t", "determine"}, {"cannot", "be", "determined"}, {"don", "t", "know"},
		{"do", "not", "know"}, {"hard", "to", "tell"}, {"impossible", "to", "tell"}, {"not", "possible", "to", "tell"},
		{"unable", "to", "tell"}, {"unable", "to", "determine"}, {"not", "clear"}, {"no", "way", "to", "tell"}}
	equalPhrases = [][]string{{"no", "difference"}, {"no", "clear", "difference"}, {"no", "discernible", "difference"}}
)

// classify reads a short phrase: it must name exactly one of first, second, equal and
// unsure, without negation.
func classify(words []string, maxWords int) label.Choice {
	if len(words) == 0 || len(words) > maxWords {
		return label.ChoiceInvalid
	}
	var hits [5]bool
	rest := make([]bool, len(words)) // words not consumed by a phrase
	for i := range rest {
		rest[i] = true
	}
	for _, set := range []struct {
		c       label.Choice
		phrases [][]string
	}{{label.ChoiceUnsure, unsurePhrases}, {label.ChoiceEqual, equalPhrases}} {
		for _, p := range set.phrases {
			for i := 0; i+len(p) <= len(words); i++ {
				if equalWordsAt(words, i, p) {
					hits[set.c] = true
					for k := i; k < i+len(p); k++ {
						rest[k] = false
					}
				}
			}
		}
	}
	for i, w := range words {
		if !rest[i] {
			continue
		}
		prevNoun := i > 0 && nounWords[words[i-1]]
		switch {
		case (negateWords[w] || lessWords[w]) && !(w == "no" && i+1 < len(words) && (words[i+1] == "1" || words[i+1] == "2")),
			moreWords[w] && i+1 < len(words) && words[i+1] == "from":
			// "not the first", "image 1 shows less", "further from the goal"
			return label.ChoiceInvalid
		case firstWords[w], w == "one" && prevNoun:
			hits[label.ChoiceFirst] = true
		case secondWords[w], w == "two" && prevNoun:
			hits[label.ChoiceSecond] = true
		case equalWords[w]:
			hits[label.ChoiceEqual] = true
		case unsureWords[w]:
			hits[label.ChoiceUnsure] = true
		}
	}
	found := label.ChoiceInvalid
	for c := label.ChoiceFirst; c <= label.ChoiceUnsure; c++ {
		if hits[c] {
			if found != label.ChoiceInvalid {
				return label.ChoiceInvalid
			}
			found = c
		}
	}
	return found
}

func equalWordsAt(words []string, i int, p []string) bool {
	for k, w := range p {
		if words[i+k] != w {
			return false
		}
	}
	return true
}

var (
	moreWords = map[string]bool{"more": true, "most": true, "greater": true, "further": true, "farther": true,
		"closer": true, "closest": true, "better": true, "higher": true, "advanced": true, "ahead": true, "larger": true, "bigger": true}
	lessWords = map[string]bool{"less": true, "least": true, "fewer": true, "worse": true, "lower": true,
		"behind": true, "smaller": true, "not": true, "no": true, "t": true, "away": true}
)

// fromSentences looks in the last sentences for one comparative statement naming one
// image as ahead: "Image 2 shows more progress than image 1".
func fromSentences(s string) label.Choice {
	sentences := strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '\n' || r == ';' })
	for k, n := len(sentences)-1, 0; k >= 0 && n < 6; k-- {
		words := tokenize(sentences[k])
		if len(words) == 0 {
			continue
		}
		n++
		if c := comparative(words); c != label.ChoiceInvalid {
			return c
		}
	}
	return label.ChoiceInvalid
}

// mention returns which image words[i:] names ("image 2", "the first image"), and how
// many words the mention takes.
func mention(words []string, i int) (label.Choice, int) {
	w := words[i]
	if nounWords[w] && w != "no" && w != "number" && i+1 < len(words) {
		switch n := words[i+1]; {
		case n == "1" || n == "one" || n == "first":
			return label.ChoiceFirst, 2
		case n == "2" || n == "two" || n == "second":
			return label.ChoiceSecond, 2
		}
	}
	if (w == "first" || w == "second" || w == "former" || w == "latter") && i+1 < len(words) &&
		(nounWords[words[i+1]] || words[i+1] == "one") {
		if w == "first" || w == "former" {
			return label.ChoiceFirst, 2
		}
		return label.ChoiceSecond, 2
	}
	return label.ChoiceInvalid, 0
}

func comparative(words []string) label.Choice {
	if len(words) > 60 {
		return label.ChoiceInvalid
	}
	type at struct {
		c label.Choice
		i int
	}
	var mentions []at
	more, than := -1, -1
	for i := 0; i < len(words); i++ {
		w := words[i]
		if lessWords[w] {
			return label.ChoiceInvalid
		}
		if moreWords[w] {
			if i+1 < len(words) && words[i+1] == "from" { // "further from the goal"
				return label.ChoiceInvalid
			}
			if more < 0 {
				more = i
			}
		}
		if w == "than" && than < 0 {
			than = i
		}
		if c, n := mention(words, i); n > 0 {
			mentions = append(mentions, at{c, i})
			i += n - 1
		}
	}
	if more < 0 || len(mentions) == 0 {
		return label.ChoiceInvalid
	}
	// The image named nearest before the comparative word is its subject...
	var subject label.Choice
	for _, m := range mentions {
		if m.i < more {
			subject = m.c
		}
	}
	// ...or, in "more progress in image 2 (than in image 1)", the first one after it.
	if subject == label.ChoiceInvalid {
		for _, m := range mentions {
			if m.i > more && (than < 0 || m.i < than) {
				subject = m.c
				break
			}
		}
	}
	if subject == label.ChoiceInvalid {
		return label.ChoiceInvalid
	}
	// Everything else named must be the other image, after "than".
	for _, m := range mentions {
		if m.c != subject && (than < 0 || m.i < than) {
			return label.ChoiceInvalid
		}
	}
	return subject
}
