// Package vlm is the VLM labeller: a client for OpenAI-compatible chat completions
// (vLLM, Ollama, llama.cpp's server, LM Studio, OpenAI, Gemini's compatible endpoint),
// the versioned prompts, a lenient answer parser, a content-addressed response cache,
// and Judge, which asks one pairwise question and is wrapped by label.Consistent to ask
// it in both orders.
//
// The client bounds concurrency and requests per second, times out each attempt, and
// retries 429s, 5xxs, malformed responses and network errors with jittered exponential
// backoff, honouring Retry-After (a 429's Retry-After pauses every request of the
// client, not only the one that got it). Frames go out as base64 PNG data URLs at the
// configured size. Every response is cached under a key made of the frames' content
// hashes, the prompt texts, the model and the sampling settings, so no question is paid
// for twice, across runs.
package vlm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultBaseURL is used when neither the flag nor OPENAI_BASE_URL gives one.
const DefaultBaseURL = "https://api.openai.com/v1"

// maxResponse bounds a response body.
const maxResponse = 8 << 20

// Config configures a Client. Validate's errors name the flag of the robodistill CLI.
type Config struct {
	// BaseURL is the API root, ending in /v1 for most servers
	// (http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama).
	BaseURL string
	// APIKey is sent as a bearer token when set (local servers usually need none).
	APIKey string
	Model  string
	// Timeout bounds one attempt, response body included (default 120 s).
	Timeout time.Duration
	// Retries is the number of retries after the first attempt (default 6; -1 for none).
	Retries int
	// MinBackoff and MaxBackoff bound the jittered exponential backoff (0.5 s, 30 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one fails the request
	// (default 5 min).
	MaxRetryAfter time.Duration
	// Concurrency bounds requests in flight (default 4).
	Concurrency int
	// RPS bounds requests started per second (0: unbounded).
	RPS float64
	// MaxTokensField is the request field for the completion budget: "max_tokens"
	// (default; every server) or "max_completion_tokens" (OpenAI's reasoning models).
	MaxTokensField string
	// PricePrompt and PriceCompletion are USD per million tokens, for cost estimates.
	PricePrompt, PriceCompletion float64
	// HTTPClient overrides the HTTP client (its Timeout is not used; Timeout is).
	HTTPClient *http.Client
}

// ConfigFromEnv fills the endpoint settings from the usual environment variables:
// OPENAI_BASE_URL (default DefaultBaseURL), OPENAI_API_KEY and OPENAI_MODEL.
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{BaseURL: getenv("OPENAI_BASE_URL"), APIKey: getenv("OPENAI_API_KEY"), Model: getenv("OPENAI_MODEL")}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 120 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 6
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.MaxTokensField == "" {
		c.MaxTokensField = "max_tokens"
	}
}

// Validate checks the configuration after defaults; each error names its flag.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("base-url: %q is not an http(s) URL (set --base-url or OPENAI_BASE_URL)", c.BaseURL))
	}
	if strings.TrimSpace(c.Model) == "" {
		errs = append(errs, errors.New("model: missing (set --model or OPENAI_MODEL)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v is negative", c.Timeout))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("concurrency: %d, want 1..1024", c.Concurrency))
	}
	if c.RPS < 0 || c.RPS != c.RPS {
		errs = append(errs, fmt.Errorf("rps: %v is negative", c.RPS))
	}
	if c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("backoff: min %v, max %v", c.MinBackoff, c.MaxBackoff))
	}
	if c.MaxTokensField != "max_tokens" && c.MaxTokensField != "max_completion_tokens" {
		errs = append(errs, fmt.Errorf("max-tokens-field: %q, want max_tokens or max_completion_tokens", c.MaxTokensField))
	}
	if c.PricePrompt < 0 || c.PriceCompletion < 0 {
		errs = append(errs, errors.New("price: negative"))
	}
	return errors.Join(errs...)
}

// Endpoint is the base URL's scheme and host: the provenance recorded with labels,
// without paths or credentials.
func (c Config) Endpoint() string {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Cost estimates the price of u in USD.
func (c Config) Cost(u TokenUsage) float64 {
	return (float64(u.PromptTokens)*c.PricePrompt + float64(u.CompletionTokens)*c.PriceCompletion) / 1e6
}

// Message is one chat message.
type Message struct {
	Role  string // system, user or assistant
	Parts []Part
}

// Part is text or an image.
type Part struct {
	Text  string
	Image *Image
}

// Image is an image part.
type Image struct {
	// Key identifies the image's content for the cache (frame hash, size, encoding).
	Key string
	// URL is the data URL sent (data:image/png;base64,...), filled in only when the
	// request is not answered from the cache.
	URL    string
	Detail string // OpenAI's "low", "high" or "auto"; empty: not sent

	frame string // the frame hash the Judge encodes the URL from
	safe  bool   // URL is known to need no JSON escaping (base64 from encodePNG)
}

// Text returns a text part.
func Text(s string) Part { return Part{Text: s} }

// Request is a chat completion request without the model.
type Request struct {
	Messages    []Message
	Temperature float64
	TopP        float64 // 0: not sent
	MaxTokens   int     // 0: not sent
	Seed        *int64
}

// TokenUsage is a response's token counts.
type TokenUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Response is the part of a chat completion the labeller uses.
type Response struct {
	ID           string     `json:"id"`
	Model        string     `json:"model"`
	Created      int64      `json:"created"`
	Content      string     `json:"content"`
	Refusal      string     `json:"refusal,omitempty"`
	FinishReason string     `json:"finish_reason"`
	Usage        TokenUsage `json:"usage"`
}

// APIError is a non-200 response.
type APIError struct {
	Status     int
	Type, Code string
	Message    string
	RetryAfter time.Duration // from Retry-After or retry-after-ms; 0 when absent
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Retryable reports whether the request may succeed if sent again.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout ||
		e.Status == http.StatusConflict || e.Status == 425 ||
		e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusHTTPVersionNotSupported
}

// ErrMalformed is a 200 response that is not a chat completion; it is retried.
var ErrMalformed = errors.New("malformed response")

// transientError is a network failure or an attempt timeout; it is retried.
type transientError struct {
	timeout bool
	err     error
}

func (e *transientError) Error() string {
	if e.timeout {
		return "attempt timed out: " + e.err.Error()
	}
	return "network: " + e.err.Error()
}

func (e *transientError) Unwrap() error { return e.err }

// Stats counts a client's traffic.
type Stats struct {
	Requests         int64 `json:"requests"` // calls of Complete
	Attempts         int64 `json:"attempts"`
	Retries          int64 `json:"retries"`
	RateLimited      int64 `json:"rate_limited"`
	ServerErrors     int64 `json:"server_errors"`
	NetworkErrors    int64 `json:"network_errors"`
	Timeouts         int64 `json:"timeouts"`
	Malformed        int64 `json:"malformed"`
	Failed           int64 `json:"failed"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	BytesSent        int64 `json:"bytes_sent"` // request bodies, once per request
}

// Client talks to one OpenAI-compatible endpoint. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *zap.Logger
	http *http.Client
	url  string
	sem  chan struct{}
	rate *limiter

	pauseUntil atomic.Int64 // unix ns before which no attempt starts (a 429's Retry-After)

	// sleep and jitter are replaced by tests.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64

	st struct {
		requests, attempts, retries, rateLimited, serverErrors, networkErrors, timeouts, malformed, failed, promptTokens, completionTokens, bytesSent atomic.Int64
	}
}

// NewClient validates cfg and returns a client.
func NewClient(cfg Config, log *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vlm.NewClient: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		tr.MaxConnsPerHost = 0
		hc = &http.Client{Transport: tr}
	}
	c := &Client{
		cfg: cfg, log: log.With(zap.String("component", "vlm.client"), zap.String("model", cfg.Model)),
		http: hc, url: strings.TrimRight(cfg.BaseURL, "/"), sem: make(chan struct{}, cfg.Concurrency),
		sleep: sleepCtx, jitter: rand.Float64,
	}
	if cfg.RPS > 0 {
		c.rate = &limiter{interval: time.Duration(float64(time.Second) / cfg.RPS)}
	}
	return c, nil
}

// Config returns the client's configuration with defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.st
	return Stats{Requests: s.requests.Load(), Attempts: s.attempts.Load(), Retries: s.retries.Load(),
		RateLimited: s.rateLimited.Load(), ServerErrors: s.serverErrors.Load(), NetworkErrors: s.networkErrors.Load(),
		Timeouts: s.timeouts.Load(), Malformed: s.malformed.Load(), Failed: s.failed.Load(),
		PromptTokens: s.promptTokens.Load(), CompletionTokens: s.completionTokens.Load(), BytesSent: s.bytesSent.Load()}
}

// Complete sends a chat completion request, retrying as configured.
func (c *Client) Complete(ctx context.Context, r *Request) (*Response, error) {
	c.st.requests.Add(1)
	body := c.appendBody(make([]byte, 0, c.bodySize(r)), r)
	c.st.bytesSent.Add(int64(len(body)))
	var out *Response
	err := c.withRetries(ctx, func(actx context.Context) error {
		b, err := c.send(ctx, actx, http.MethodPost, "/chat/completions", body)
		if err != nil {
			return err
		}
		resp, err := decodeResponse(b)
		if err != nil {
			return err
		}
		out = resp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vlm: chat completion: %w", err)
	}
	c.st.promptTokens.Add(int64(out.Usage.PromptTokens))
	c.st.completionTokens.Add(int64(out.Usage.CompletionTokens))
	return out, nil
}

// Models lists the endpoint's models (GET /models).
func (c *Client) Models(ctx context.Context) ([]string, error) {
	var ids []string
	err := c.withRetries(ctx, func(actx context.Context) error {
		b, err := c.send(ctx, actx, http.MethodGet, "/models", nil)
		if err != nil {
			return err
		}
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		ids = ids[:0]
		for _, m := range list.Data {
			ids = append(ids, m.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vlm: list models: %w", err)
	}
	return ids, nil
}

func (c *Client) withRetries(ctx context.Context, attempt func(actx context.Context) error) error {
	for n := 0; ; n++ {
		if err := c.waitTurn(ctx); err != nil {
			return err
		}
		err := func() error {
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-c.sem }()
			c.st.attempts.Add(1)
			actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			defer cancel()
			return attempt(actx)
		}()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait, retry := c.classify(err, n)
		if !retry || n >= c.cfg.Retries {
			c.st.failed.Add(1)
			if n > 0 {
				return fmt.Errorf("%w (after %d attempts)", err, n+1)
			}
			return err
		}
		c.st.retries.Add(1)
		c.log.Warn("retrying", zap.Int("attempt", n+1), zap.Duration("wait", wait), zap.Error(err))
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// classify counts an attempt's error and says whether and after how long to retry.
func (c *Client) classify(err error, n int) (time.Duration, bool) {
	backoff := c.cfg.MinBackoff << min(n, 20)
	if backoff > c.cfg.MaxBackoff || backoff <= 0 {
		backoff = c.cfg.MaxBackoff
	}
	backoff = backoff/2 + time.Duration(c.jitter()*float64(backoff/2)) // "equal jitter"
	var api *APIError
	var tr *transientError
	switch {
	case errors.As(err, &api):
		if api.Status == http.StatusTooManyRequests {
			c.st.rateLimited.Add(1)
		} else if api.Status >= 500 {
			c.st.serverErrors.Add(1)
		}
		if !api.Retryable() {
			return 0, false
		}
		if api.RetryAfter > 0 {
			if api.RetryAfter > c.cfg.MaxRetryAfter {
				return 0, false
			}
			// Honour it, plus up to 10 % so that waiting workers do not return at once.
			wait := api.RetryAfter + time.Duration(c.jitter()*0.1*float64(api.RetryAfter))
			if api.Status == http.StatusTooManyRequests {
				until := time.Now().Add(api.RetryAfter).UnixNano()
				for {
					cur := c.pauseUntil.Load()
					if cur >= until || c.pauseUntil.CompareAndSwap(cur, until) {
						break
					}
				}
			}
			return wait, true
		}
		return backoff, true
	case errors.As(err, &tr):
		if tr.timeout {
			c.st.timeouts.Add(1)
		} else {
			c.st.networkErrors.Add(1)
		}
		return backoff, true
	case errors.Is(err, ErrMalformed):
		c.st.malformed.Add(1)
		return backoff, true
	}
	return 0, false
}

// waitTurn waits out a 429 pause and the request rate.
func (c *Client) waitTurn(ctx context.Context) error {
	if d := time.Until(time.Unix(0, c.pauseUntil.Load())); d > 0 {
		if err := c.sleep(ctx, d); err != nil {
			return err
		}
	}
	if c.rate != nil {
		return c.rate.wait(ctx, c.sleep)
	}
	return nil
}

// send makes one HTTP attempt and returns a 200's body.
func (c *Client) send(ctx, actx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, c.url+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "robodistill")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transient(ctx, actx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, c.transient(ctx, actx, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp, b)
	}
	return b, nil
}

func (c *Client) transient(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	timeout := errors.Is(actx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	return &transientError{timeout: timeout, err: err}
}

func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header, time.Now())}
	var wire struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &wire) == nil && len(wire.Error) > 0 {
		var obj struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		var s string
		if json.Unmarshal(wire.Error, &obj) == nil {
			e.Message, e.Type = obj.Message, obj.Type
			if json.Unmarshal(obj.Code, &s) == nil {
				e.Code = s
			} else if len(obj.Code) > 0 && string(obj.Code) != "null" {
				e.Code = string(obj.Code)
			}
		} else if json.Unmarshal(wire.Error, &s) == nil {
			e.Message = s
		}
	}
	if e.Message == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		e.Message = msg
	}
	return e
}

// ParseRetryAfter reads how long a response asks the client to wait: retry-after-ms
// (milliseconds, sent by OpenAI and Azure), else Retry-After as seconds or an HTTP date.
// Unparsable or past values give 0.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e12 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e9 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func decodeResponse(b []byte) (*Response, error) {
	var w struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
				Refusal *string         `json:"refusal"`
			} `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *TokenUsage     `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(w.Error) > 0 && string(w.Error) != "null" {
		return nil, fmt.Errorf("%w: error in a 200 response: %s", ErrMalformed, truncate(string(w.Error), 200))
	}
	if len(w.Choices) == 0 {
		return nil, fmt.Errorf("%w: no choices", ErrMalformed)
	}
	ch := w.Choices[0]
	r := &Response{ID: w.ID, Model: w.Model, Created: w.Created}
	if ch.FinishReason != nil {
		r.FinishReason = *ch.FinishReason
	}
	if ch.Message.Refusal != nil {
		r.Refusal = *ch.Message.Refusal
	}
	if w.Usage != nil {
		r.Usage = *w.Usage
	}
	content, err := contentText(ch.Message.Content)
	if err != nil {
		return nil, fmt.Errorf("%w: message content: %v", ErrMalformed, err)
	}
	r.Content = content
	return r, nil
}

// contentText reads a message's content: a string, null, or an array of text parts.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" || p.Type == "output_text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// limiter spaces request starts by interval (a token bucket of depth one).
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func (l *limiter) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	l.mu.Lock()
	now := time.Now()
	t := l.next
	if t.Before(now) {
		t = now
	}
	l.next = t.Add(l.interval)
	l.mu.Unlock()
	if d := t.Sub(now); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bodySize estimates the encoded size of r.
func (c *Client) bodySize(r *Request) int {
	n := 256 + len(c.cfg.Model)
	for _, m := range r.Messages {
		n += 64
		for _, p := range m.Parts {
			n += 64 + len(p.Text)*2
			if p.Image != nil {
				n += len(p.Image.URL)
			}
		}
	}
	return n
}

// appendBody encodes the request by hand: the image data URLs (most of the bytes) are
// copied, not escaped, which keeps the client's cost per request small.
func (c *Client) appendBody(b []byte, r *Request) []byte {
	b = append(b, `{"model":`...)
	b = appendString(b, c.cfg.Model)
	b = append(b, `,"messages":[`...)
	for i, m := range r.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = appendString(b, m.Role)
		b = append(b, `,"content":`...)
		textOnly := true
		for _, p := range m.Parts {
			if p.Image != nil {
				textOnly = false
			}
		}
		if textOnly {
			var sb strings.Builder
			for _, p := range m.Parts {
				sb.WriteString(p.Text)
			}
			b = appendString(b, sb.String())
		} else {
			b = append(b, '[')
			for j, p := range m.Parts {
				if j > 0 {
					b = append(b, ',')
				}
				if p.Image == nil {
					b = append(b, `{"type":"text","text":`...)
					b = appendString(b, p.Text)
					b = append(b, '}')
					continue
				}
				b = append(b, `{"type":"image_url","image_url":{"url":`...)
				if p.Image.safe {
					b = append(append(append(b, '"'), p.Image.URL...), '"')
				} else {
					b = appendURL(b, p.Image.URL)
				}
				if p.Image.Detail != "" {
					b = append(b, `,"detail":`...)
					b = appendString(b, p.Image.Detail)
				}
				b = append(b, `}}`...)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"temperature":`...)
	b = strconv.AppendFloat(b, r.Temperature, 'g', -1, 64)
	if r.TopP > 0 {
		b = append(b, `,"top_p":`...)
		b = strconv.AppendFloat(b, r.TopP, 'g', -1, 64)
	}
	if r.MaxTokens > 0 {
		b = append(b, `,"`...)
		b = append(b, c.cfg.MaxTokensField...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	}
	if r.Seed != nil {
		b = append(b, `,"seed":`...)
		b = strconv.AppendInt(b, *r.Seed, 10)
	}
	return append(b, `,"stream":false}`...)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// appendURL copies a URL that needs no escaping (a data URL's base64) and escapes any
// other.
func appendURL(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return appendString(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
