package vlmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"robodistill/distill/label/labeltest"
)

func img(w, h int) string {
	f := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 1, Steps: 1, W: w, H: h})
	fs, _ := f.Frames(0)
	fr, _ := f.Frame(fs[0].Hash)
	return "data:image/png;base64," + labeltest.PNGBase64(fr)
}

func do(t *testing.T, s *Server, method, path, key string, body any) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if str, ok := body.(string); ok {
			b = []byte(str)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func userMsg(content any) map[string]any {
	return map[string]any{"model": "fake-vlm", "messages": []any{map[string]any{"role": "user", "content": content}}}
}

func TestServerValidates(t *testing.T) {
	s := NewServer(Config{APIKey: "k", ImageW: 16, ImageH: 16})
	defer s.Close()
	good := img(16, 16)
	parts := func(url string) []any {
		return []any{map[string]any{"type": "text", "text": "q"}, map[string]any{"type": "image_url", "image_url": map[string]any{"url": url}}}
	}
	for _, tc := range []struct {
		name, key string
		body      any
		status    int
		msg       string
	}{
		{"ok", "k", userMsg(parts(good)), 200, ""},
		{"no key", "", userMsg("hi"), 401, "Incorrect API key"},
		{"not JSON", "k", "{", 400, "could not parse the JSON body"},
		{"no model", "k", map[string]any{"messages": []any{}}, 400, "you must provide a model parameter"},
		{"wrong model", "k", map[string]any{"model": "gpt", "messages": []any{map[string]any{"role": "user", "content": "x"}}}, 404, "The model `gpt` does not exist"},
		{"no messages", "k", map[string]any{"model": "fake-vlm", "messages": []any{}}, 400, "at least one message"},
		{"unknown field", "k", map[string]any{"model": "fake-vlm", "messages": []any{}, "frobnicate": 1}, 400, "Unrecognized request argument supplied: frobnicate"},
		{"bad role", "k", map[string]any{"model": "fake-vlm", "messages": []any{map[string]any{"role": "robot", "content": "x"}}}, 400, `role \"robot\"`},
		{"temperature", "k", map[string]any{"model": "fake-vlm", "temperature": 3, "messages": []any{map[string]any{"role": "user", "content": "x"}}}, 400, "temperature: 3"},
		{"image in assistant", "k", map[string]any{"model": "fake-vlm", "messages": []any{map[string]any{"role": "assistant", "content": parts(good)}}}, 400, "only allowed in user messages"},
		{"wrong size", "k", userMsg(parts(img(32, 16))), 400, "image is 32x16, this server expects 16x16"},
		{"bad base64", "k", userMsg(parts("data:image/png;base64,!!!")), 400, "invalid base64"},
		{"not a PNG", "k", userMsg(parts("data:image/png;base64,aGVsbG8=")), 400, "not a valid image/png"},
		{"http URL", "k", userMsg(parts("https://example.com/x.png")), 400, "does not fetch image URLs"},
		{"unknown part", "k", userMsg([]any{map[string]any{"type": "audio"}}), 400, `unknown part type \"audio\"`},
		{"text part without text", "k", userMsg([]any{map[string]any{"type": "text"}}), 400, "text part without a text string"},
		{"both token limits", "k", map[string]any{"model": "fake-vlm", "max_tokens": 5, "max_completion_tokens": 5, "messages": []any{map[string]any{"role": "user", "content": "x"}}}, 400, "cannot both be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m, raw := do(t, s, "POST", "/v1/chat/completions", tc.key, tc.body)
			if st != tc.status || tc.msg != "" && !strings.Contains(raw, tc.msg) {
				t.Fatalf("status %d %s; want %d %q", st, raw, tc.status, tc.msg)
			}
			if st != 200 {
				e, _ := m["error"].(map[string]any)
				if e == nil || e["message"] == "" || e["type"] == "" {
					t.Errorf("error shape %s", raw)
				}
			}
		})
	}
	if st, _, raw := do(t, s, "GET", "/v1/models", "k", nil); st != 200 || !strings.Contains(raw, `"id":"fake-vlm"`) {
		t.Errorf("models: %d %s", st, raw)
	}
	if st, _, _ := do(t, s, "POST", "/v1/completions", "k", userMsg("x")); st != 404 {
		t.Errorf("unknown path: %d", st)
	}
}

func TestServerResponseShapes(t *testing.T) {
	s := NewServer(Config{Policy: Constant("Image 1")})
	defer s.Close()
	body := userMsg("hello there")
	body["n"] = 2
	body["max_tokens"] = 1
	st, m, raw := do(t, s, "POST", "/v1/chat/completions", "", body)
	if st != 200 || m["object"] != "chat.completion" || !strings.HasPrefix(m["id"].(string), "chatcmpl-") || m["model"] != "fake-vlm" {
		t.Fatalf("%d %s", st, raw)
	}
	chs := m["choices"].([]any)
	if len(chs) != 2 {
		t.Fatalf("%d choices", len(chs))
	}
	c1 := chs[1].(map[string]any)
	msg := c1["message"].(map[string]any)
	if c1["index"].(float64) != 1 || msg["role"] != "assistant" || msg["content"] != "Imag" || c1["finish_reason"] != "length" {
		t.Errorf("choice %v", c1)
	}
	u := m["usage"].(map[string]any)
	if u["total_tokens"].(float64) != u["prompt_tokens"].(float64)+u["completion_tokens"].(float64) {
		t.Errorf("usage %v", u)
	}

	// Streaming only when asked, in server-sent events ending with [DONE].
	body = userMsg("x")
	body["stream"] = true
	body["stream_options"] = map[string]any{"include_usage": true}
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.URL+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var content strings.Builder
	var last string
	sawUsage := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		last = strings.TrimPrefix(line, "data: ")
		if last == "[DONE]" {
			break
		}
		var ch struct {
			Object  string
			Choices []struct{ Delta struct{ Content string } }
			Usage   *struct {
				TotalTokens int `json:"total_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(last), &ch); err != nil || ch.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %s: %v", last, err)
		}
		for _, c := range ch.Choices {
			content.WriteString(c.Delta.Content)
		}
		sawUsage = sawUsage || ch.Usage != nil
	}
	if last != "[DONE]" || content.String() != "Image 1" || !sawUsage {
		t.Errorf("stream: last %q content %q usage %v", last, content.String(), sawUsage)
	}
	if st := s.Stats(); st.Completions != 2 || st.Streams != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerFaults(t *testing.T) {
	s := NewServer(Config{})
	defer s.Close()
	s.Inject(Fault{Kind: RateLimited, RetryAfter: "3"}, Fault{Kind: BadGateway}, Fault{Kind: Garbage}, Fault{Kind: EmptyChoices}, Fault{Kind: Unauthorized})
	for _, want := range []struct {
		status int
		sub    string
	}{{429, "rate_limit_exceeded"}, {502, "Bad Gateway"}, {200, "upstream connect error"}, {200, `"choices":[]`}, {401, "invalid_api_key"}} {
		st, _, raw := do(t, s, "POST", "/v1/chat/completions", "", userMsg("x"))
		if st != want.status || !strings.Contains(raw, want.sub) {
			t.Errorf("status %d %q, want %d %q", st, raw, want.status, want.sub)
		}
	}
	s.Inject(Fault{Kind: Truncated})
	b, _ := json.Marshal(userMsg("x"))
	resp, err := http.Post(s.URL+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("truncated response read without error")
	}
	// The same request answered twice is a question paid twice.
	do(t, s, "POST", "/v1/chat/completions", "", userMsg("same"))
	do(t, s, "POST", "/v1/chat/completions", "", userMsg("same"))
	if st := s.Stats(); st.DuplicatePaid != 1 || st.Faults != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestWordStylesParse(t *testing.T) {
	// Word's styles are what Truthful{Varied} sends; the judge tests check they parse.
	for k := 0; k < 7; k++ {
		for _, a := range []string{"first", "second", "equal"} {
			if Word(a, k) == "" {
				t.Errorf("style %d of %s empty", k, a)
			}
		}
	}
}
