// Package vlmtest is an in-process VLM: an HTTP server (httptest) that speaks the
// OpenAI chat completions protocol as real servers do — it validates requests (model,
// messages, text and image_url parts, base64 PNG data URLs of the configured size, the
// bearer token, parameters it does not know), answers in the real response shapes
// (streaming only when asked), and produces 429s with Retry-After, 5xxs, hangs,
// truncated bodies and garbage on demand — and answers from a Policy: ground truth read
// from the images, position bias, unreadable replies.
//
// TestEndpoint is the conformance suite that this fake and a real endpoint both pass.
package vlmtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // data URLs may carry JPEG too
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server.
type Config struct {
	// Model is the one model served (default "fake-vlm").
	Model string
	// APIKey, when set, must come as "Authorization: Bearer <key>".
	APIKey string
	// ImageW and ImageH, when set, are the size every image must decode to.
	ImageW, ImageH int
	// Policy answers questions (default: a Truthful reading labeltest's progress bar).
	Policy Policy
	// Latency delays every answer.
	Latency time.Duration
	// FaultRate injects one of FaultKinds (default all but Hang) into this share of
	// requests, drawn from Seed.
	FaultRate  float64
	FaultKinds []FaultKind
	// RetryAfter is the Retry-After of injected 429s without their own (default "1").
	RetryAfter string
	Seed       uint64
}

// FaultKind is a failure the server produces on demand.
type FaultKind int

// Faults.
const (
	RateLimited  FaultKind = iota // 429 with Retry-After (Fault.RetryAfter, default "1")
	ServerError                   // 500
	BadGateway                    // 502 with an HTML body, as a proxy sends
	Unavailable                   // 503
	Hang                          // no answer until the client gives up (or Fault.Delay)
	Garbage                       // 200 with a body that is not JSON
	Truncated                     // 200 whose body stops half-way and the connection closes
	EmptyChoices                  // 200 with "choices": []
	Unauthorized                  // 401
)

// Fault is one injected failure.
type Fault struct {
	Kind       FaultKind
	RetryAfter string        // for RateLimited; "" sends Config.RetryAfter; "-" sends none
	Delay      time.Duration // for Hang: answer normally after this (0: never)
}

// Stats counts what the server saw.
type Stats struct {
	Requests    int         // HTTP requests to /v1/chat/completions
	Completions int         // 200 chat completions
	Faults      int         // injected failures
	Invalid     int         // requests refused as invalid (4xx other than injected)
	Streams     int         // streamed completions
	ByStatus    map[int]int // responses by status
	// DuplicatePaid counts completions whose request body had been answered with a 200
	// before: questions paid for twice.
	DuplicatePaid    int
	PromptTokens     int
	CompletionTokens int
	Models           int // GET /v1/models
}

// Server is the fake VLM endpoint.
type Server struct {
	*httptest.Server
	cfg Config

	mu     sync.Mutex
	faults []Fault
	rng    *rand.Rand
	stats  Stats
	paid   map[[32]byte]int
	seq    atomic.Uint64
}

// NewServer starts a server; Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.Model == "" {
		cfg.Model = "fake-vlm"
	}
	if cfg.Policy == nil {
		cfg.Policy = &Truthful{}
	}
	if len(cfg.FaultKinds) == 0 {
		cfg.FaultKinds = []FaultKind{RateLimited, ServerError, BadGateway, Unavailable, Garbage, Truncated, EmptyChoices}
	}
	s := &Server{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 99)), paid: map[[32]byte]int{}}
	s.stats.ByStatus = map[int]int{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// BaseURL is the API root to configure clients with (…/v1).
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Model is the model served.
func (s *Server) Model() string { return s.cfg.Model }

// Inject queues faults for the next requests, one each, in order.
func (s *Server) Inject(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = map[int]int{}
	for k, v := range s.stats.ByStatus {
		st.ByStatus[k] = v
	}
	return st
}

func (s *Server) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// apiError writes OpenAI's error shape.
func (s *Server) apiError(w http.ResponseWriter, status int, typ, code, msg string) {
	s.count(func(st *Stats) { st.ByStatus[status]++ })
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var c any
	if code != "" {
		c = code
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
}

func (s *Server) invalid(w http.ResponseWriter, format string, args ...any) {
	s.count(func(st *Stats) { st.Invalid++ })
	s.apiError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf(format, args...))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/models":
		if r.Method != http.MethodGet {
			s.apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "method not allowed")
			return
		}
		if !s.authorized(w, r) {
			return
		}
		s.count(func(st *Stats) { st.Models++; st.ByStatus[200]++ })
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{
			map[string]any{"id": s.cfg.Model, "object": "model", "created": 1700000000, "owned_by": "robodistill"}}})
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			s.apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "method not allowed")
			return
		}
		s.count(func(st *Stats) { st.Requests++ })
		// Read the whole body first, as a real server does: only then does net/http
		// notice a client that goes away (a Hang must end when the client gives up).
		body, err := readAll(r, 64<<20)
		if err != nil {
			s.invalid(w, "reading the body: %v", err)
			return
		}
		if !s.authorized(w, r) {
			return
		}
		if f, ok := s.nextFault(); ok {
			if s.fault(w, r, f) {
				return
			}
		}
		s.complete(w, r, body)
	default:
		s.apiError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	if r.Header.Get("Authorization") != "Bearer "+s.cfg.APIKey {
		s.apiError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return false
	}
	return true
}

func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		return f, true
	}
	if s.cfg.FaultRate > 0 && s.rng.Float64() < s.cfg.FaultRate {
		return Fault{Kind: s.cfg.FaultKinds[s.rng.IntN(len(s.cfg.FaultKinds))]}, true
	}
	return Fault{}, false
}

// fault writes f; false means answer normally after all (a Hang with a Delay).
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	s.count(func(st *Stats) { st.Faults++ })
	switch f.Kind {
	case RateLimited:
		ra := f.RetryAfter
		if ra == "" {
			ra = s.cfg.RetryAfter
		}
		if ra == "" {
			ra = "1"
		}
		if ra != "-" {
			w.Header().Set("Retry-After", ra)
		}
		s.apiError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached for requests.")
	case ServerError:
		s.apiError(w, http.StatusInternalServerError, "server_error", "", "The server had an error while processing your request.")
	case BadGateway:
		s.count(func(st *Stats) { st.ByStatus[502]++ })
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	case Unavailable:
		s.apiError(w, http.StatusServiceUnavailable, "server_error", "", "The engine is currently overloaded, please try again later.")
	case Hang:
		t := time.NewTimer(f.Delay)
		if f.Delay == 0 {
			t.Stop()
		}
		select {
		case <-r.Context().Done():
			return true
		case <-t.C:
			return false
		}
	case Garbage:
		s.count(func(st *Stats) { st.ByStatus[200]++ })
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "upstream connect error or disconnect/reset before headers")
	case Truncated:
		s.count(func(st *Stats) { st.ByStatus[200]++ })
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "400")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"id":"chatcmpl-trunc","object":"chat.completion","choices":[{"index":0,"message":{"role":"assist`)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	case EmptyChoices:
		s.count(func(st *Stats) { st.ByStatus[200]++ })
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-empty","object":"chat.completion","created":%d,"model":%q,"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`, time.Now().Unix(), s.cfg.Model)
	case Unauthorized:
		s.apiError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
	}
	return true
}

// Known request fields of the chat completions API; others are refused as OpenAI does.
var knownFields = map[string]bool{
	"model": true, "messages": true, "temperature": true, "top_p": true, "n": true, "stream": true,
	"stream_options": true, "stop": true, "max_tokens": true, "max_completion_tokens": true,
	"presence_penalty": true, "frequency_penalty": true, "logit_bias": true, "logprobs": true,
	"top_logprobs": true, "user": true, "seed": true, "response_format": true, "tools": true,
	"tool_choice": true, "parallel_tool_calls": true, "service_tier": true, "store": true,
	"metadata": true, "reasoning_effort": true, "modalities": true,
}

// Question is a validated request, as a Policy sees it.
type Question struct {
	Model    string
	Messages []Message
	// Images are all images of the conversation, in order.
	Images []image.Image
	// Analysis is set when the last user message carries the images and does not ask
	// for a JSON answer: the first stage of a two-stage question.
	Analysis    bool
	Temperature float64
	Seed        *int64
	// Choice numbers the n choices asked for (0..n-1).
	Choice int
	// Digest identifies the request's content; policies draw their randomness from it,
	// so the same request gets the same answer whatever the order of arrival.
	Digest uint64
}

// Message is one validated message.
type Message struct {
	Role   string
	Text   string // text parts joined by newlines
	Images int
}

// LastUser is the text of the last user message.
func (q *Question) LastUser() string {
	for i := len(q.Messages) - 1; i >= 0; i-- {
		if q.Messages[i].Role == "user" {
			return q.Messages[i].Text
		}
	}
	return ""
}

// Rand returns a generator seeded by the request's content and seed.
func (q *Question) Rand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(q.Digest^seed, uint64(q.Choice)+1))
}

type wireRequest struct {
	Model       *string           `json:"model"`
	Messages    []json.RawMessage `json:"messages"`
	Temperature *float64          `json:"temperature"`
	TopP        *float64          `json:"top_p"`
	N           *int              `json:"n"`
	Stream      *bool             `json:"stream"`
	StreamOpts  *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens  *int   `json:"max_tokens"`
	MaxCompTok *int   `json:"max_completion_tokens"`
	Seed       *int64 `json:"seed"`
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, body []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.invalid(w, "Content-Type %q: expected application/json", ct)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		s.invalid(w, "We could not parse the JSON body of your request: %v", err)
		return
	}
	for k := range fields {
		if !knownFields[k] {
			s.invalid(w, "Unrecognized request argument supplied: %s", k)
			return
		}
	}
	var req wireRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.invalid(w, "Invalid type in request: %v", err)
		return
	}
	switch {
	case req.Model == nil || *req.Model == "":
		s.invalid(w, "you must provide a model parameter")
		return
	case *req.Model != s.cfg.Model:
		s.count(func(st *Stats) { st.Invalid++ })
		s.apiError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", *req.Model))
		return
	case len(req.Messages) == 0:
		s.invalid(w, "'messages' must contain at least one message")
		return
	case req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2):
		s.invalid(w, "temperature: %v is not in [0, 2]", *req.Temperature)
		return
	case req.TopP != nil && (*req.TopP <= 0 || *req.TopP > 1):
		s.invalid(w, "top_p: %v is not in (0, 1]", *req.TopP)
		return
	case req.N != nil && (*req.N < 1 || *req.N > 8):
		s.invalid(w, "n: %d is not in [1, 8]", *req.N)
		return
	case req.MaxTokens != nil && *req.MaxTokens < 1, req.MaxCompTok != nil && *req.MaxCompTok < 1:
		s.invalid(w, "max_tokens must be at least 1")
		return
	case req.MaxTokens != nil && req.MaxCompTok != nil:
		s.invalid(w, "max_tokens and max_completion_tokens cannot both be set")
		return
	}
	q := &Question{Model: *req.Model, Seed: req.Seed}
	if req.Temperature != nil {
		q.Temperature = *req.Temperature
	}
	d := sha256.Sum256(body)
	q.Digest = binary.LittleEndian.Uint64(d[:8])
	promptTokens := 0
	for i, raw := range req.Messages {
		m, imgs, tokens, err := s.message(raw)
		if err != nil {
			s.invalid(w, "messages[%d]: %v", i, err)
			return
		}
		q.Messages = append(q.Messages, m)
		q.Images = append(q.Images, imgs...)
		promptTokens += tokens
	}
	if last := q.Messages[len(q.Messages)-1]; last.Role == "user" && last.Images > 0 && !strings.Contains(strings.ToLower(last.Text), "json") {
		q.Analysis = true
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	maxTokens := 0
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	} else if req.MaxCompTok != nil {
		maxTokens = *req.MaxCompTok
	}
	if s.cfg.Latency > 0 {
		select {
		case <-time.After(s.cfg.Latency):
		case <-r.Context().Done():
			return
		}
	}
	type choice struct {
		content, finish string
	}
	choices := make([]choice, n)
	completionTokens := 0
	for i := range choices {
		q.Choice = i
		c := s.cfg.Policy.Reply(q)
		finish := "stop"
		if maxTokens > 0 && tokensOf(c) > maxTokens {
			c, finish = c[:min(len(c), maxTokens*4)], "length"
		}
		choices[i] = choice{c, finish}
		completionTokens += tokensOf(c)
	}
	id := fmt.Sprintf("chatcmpl-%d", s.seq.Add(1))
	created := time.Now().Unix()
	s.mu.Lock()
	s.stats.Completions++
	s.stats.ByStatus[200]++
	s.stats.PromptTokens += promptTokens
	s.stats.CompletionTokens += completionTokens
	if s.paid[d] > 0 {
		s.stats.DuplicatePaid++
	}
	s.paid[d]++
	s.mu.Unlock()
	usage := map[string]int{"prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens}

	if req.Stream != nil && *req.Stream {
		s.count(func(st *Stats) { st.Streams++ })
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		bw := bufio.NewWriter(w)
		chunk := func(v any) {
			b, _ := json.Marshal(v)
			fmt.Fprintf(bw, "data: %s\n\n", b)
		}
		for i, c := range choices {
			base := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": s.cfg.Model}
			with := func(delta map[string]any, finish any) map[string]any {
				m := map[string]any{}
				for k, v := range base {
					m[k] = v
				}
				m["choices"] = []any{map[string]any{"index": i, "delta": delta, "finish_reason": finish}}
				return m
			}
			chunk(with(map[string]any{"role": "assistant", "content": ""}, nil))
			for _, piece := range splitPieces(c.content, 16) {
				chunk(with(map[string]any{"content": piece}, nil))
			}
			chunk(with(map[string]any{}, c.finish))
		}
		if req.StreamOpts != nil && req.StreamOpts.IncludeUsage {
			chunk(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": s.cfg.Model, "choices": []any{}, "usage": usage})
		}
		fmt.Fprint(bw, "data: [DONE]\n\n")
		bw.Flush()
		return
	}
	out := map[string]any{
		"id": id, "object": "chat.completion", "created": created, "model": s.cfg.Model,
		"system_fingerprint": "fp_robodistill",
		"usage":              usage,
	}
	var cs []any
	for i, c := range choices {
		cs = append(cs, map[string]any{"index": i, "message": map[string]any{"role": "assistant", "content": c.content, "refusal": nil},
			"logprobs": nil, "finish_reason": c.finish})
	}
	out["choices"] = cs
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func splitPieces(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// tokensOf estimates tokens as OpenAI's rule of thumb: four characters each.
func tokensOf(s string) int { return max(1, (len(s)+3)/4) }

// imageTokens is the prompt cost charged per image (OpenAI's low-detail figure).
const imageTokens = 85

func (s *Server) message(raw json.RawMessage) (Message, []image.Image, int, error) {
	var m struct {
		Role    *string         `json:"role"`
		Content json.RawMessage `json:"content"`
		Name    string          `json:"name"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Message{}, nil, 0, fmt.Errorf("not a message object: %v", err)
	}
	if m.Role == nil {
		return Message{}, nil, 0, fmt.Errorf("missing role")
	}
	switch *m.Role {
	case "system", "developer", "user", "assistant":
	default:
		return Message{}, nil, 0, fmt.Errorf("role %q is not one of system, developer, user, assistant", *m.Role)
	}
	out := Message{Role: *m.Role}
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return Message{}, nil, 0, fmt.Errorf("missing content")
	}
	var text string
	if json.Unmarshal(m.Content, &text) == nil {
		out.Text = text
		return out, nil, tokensOf(text) + 4, nil
	}
	var parts []map[string]json.RawMessage
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return Message{}, nil, 0, fmt.Errorf("content is neither a string nor an array of parts")
	}
	if len(parts) == 0 {
		return Message{}, nil, 0, fmt.Errorf("content is an empty array")
	}
	var texts []string
	var imgs []image.Image
	tokens := 4
	for i, p := range parts {
		var typ string
		if err := json.Unmarshal(p["type"], &typ); err != nil {
			return Message{}, nil, 0, fmt.Errorf("content[%d]: missing type", i)
		}
		switch typ {
		case "text":
			var t string
			if err := json.Unmarshal(p["text"], &t); err != nil {
				return Message{}, nil, 0, fmt.Errorf("content[%d]: text part without a text string", i)
			}
			texts = append(texts, t)
			tokens += tokensOf(t)
		case "image_url":
			if out.Role != "user" {
				return Message{}, nil, 0, fmt.Errorf("content[%d]: image_url is only allowed in user messages", i)
			}
			var iu struct {
				URL    *string `json:"url"`
				Detail *string `json:"detail"`
			}
			if err := json.Unmarshal(p["image_url"], &iu); err != nil || iu.URL == nil {
				return Message{}, nil, 0, fmt.Errorf("content[%d]: image_url without a url", i)
			}
			if iu.Detail != nil && *iu.Detail != "low" && *iu.Detail != "high" && *iu.Detail != "auto" {
				return Message{}, nil, 0, fmt.Errorf("content[%d]: detail %q is not low, high or auto", i, *iu.Detail)
			}
			img, err := s.decodeImage(*iu.URL)
			if err != nil {
				return Message{}, nil, 0, fmt.Errorf("content[%d]: %v", i, err)
			}
			imgs = append(imgs, img)
			tokens += imageTokens
		default:
			return Message{}, nil, 0, fmt.Errorf("content[%d]: unknown part type %q", i, typ)
		}
	}
	out.Text = strings.Join(texts, "\n")
	out.Images = len(imgs)
	return out, imgs, tokens, nil
}

// decodeImage checks a data URL and decodes its image.
func (s *Server) decodeImage(url string) (image.Image, error) {
	head, data, ok := strings.Cut(url, ",")
	if !ok || !strings.HasPrefix(head, "data:") {
		if strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://") {
			return nil, fmt.Errorf("this fake does not fetch image URLs; send a data URL")
		}
		return nil, fmt.Errorf("invalid image URL: expected a data URL")
	}
	mime, enc, _ := strings.Cut(strings.TrimPrefix(head, "data:"), ";")
	if enc != "base64" {
		return nil, fmt.Errorf("data URL is not base64")
	}
	if mime != "image/png" && mime != "image/jpeg" {
		return nil, fmt.Errorf("unsupported image type %q", mime)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("invalid base64 image data: %v", err)
	}
	var img image.Image
	if mime == "image/png" {
		img, err = png.Decode(bytes.NewReader(raw))
	} else {
		img, _, err = image.Decode(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("the image data is not a valid %s: %v", mime, err)
	}
	if b := img.Bounds(); s.cfg.ImageW > 0 && (b.Dx() != s.cfg.ImageW || b.Dy() != s.cfg.ImageH) {
		return nil, fmt.Errorf("image is %dx%d, this server expects %dx%d", b.Dx(), b.Dy(), s.cfg.ImageW, s.cfg.ImageH)
	}
	return img, nil
}

func readAll(r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
