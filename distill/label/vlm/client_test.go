package vlm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"robodistill/distill/label"
)

const okBody = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"answer\": \"first\"}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`

// scripted serves the given responses in order, then okBody.
type scripted struct {
	mu     sync.Mutex
	steps  []func(w http.ResponseWriter, r *http.Request)
	n      int
	bodies [][]byte
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	var step func(http.ResponseWriter, *http.Request)
	if s.n < len(s.steps) {
		step = s.steps[s.n]
	}
	s.n++
	s.mu.Unlock()
	if step != nil {
		step(w, r)
		return
	}
	io.WriteString(w, okBody)
}

func status(code int, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"message":"status %d","type":"x","param":null,"code":"c%d"}}`, code, code)
	}
}

// testClient returns a client of srv whose sleeps are recorded, not slept.
func testClient(t *testing.T, srv *httptest.Server, cfg Config) (*Client, *[]time.Duration) {
	t.Helper()
	cfg.BaseURL, cfg.Model = srv.URL+"/v1", "m"
	c, err := NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sleeps []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		return ctx.Err()
	}
	c.jitter = func() float64 { return 0.5 }
	return c, &sleeps
}

func req() *Request {
	return &Request{Messages: []Message{{Role: "user", Parts: []Part{Text("hi")}}}, MaxTokens: 5}
}

func TestClientRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		steps    []func(http.ResponseWriter, *http.Request)
		cfg      Config
		wantErr  string
		attempts int64
		sleeps   []time.Duration
	}{
		{name: "ok", attempts: 1},
		{name: "429 honours Retry-After", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "7")},
			attempts: 2, sleeps: []time.Duration{7*time.Second + 350*time.Millisecond}},
		{name: "429 retry-after-ms", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After-Ms", "250")},
			attempts: 2, sleeps: []time.Duration{250*time.Millisecond + 12500*time.Microsecond}},
		{name: "5xx backoff doubles", steps: []func(http.ResponseWriter, *http.Request){status(500), status(502), status(503), status(504)},
			cfg: Config{MinBackoff: 100 * time.Millisecond}, attempts: 5,
			sleeps: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}},
		{name: "backoff capped", steps: []func(http.ResponseWriter, *http.Request){status(500), status(500), status(500)},
			cfg: Config{MinBackoff: time.Second, MaxBackoff: 2 * time.Second}, attempts: 4,
			sleeps: []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond}},
		{name: "400 is not retried", steps: []func(http.ResponseWriter, *http.Request){status(400)},
			wantErr: "vlm: chat completion: HTTP 400 (c400): status 400", attempts: 1},
		{name: "401 is not retried", steps: []func(http.ResponseWriter, *http.Request){status(401)},
			wantErr: "HTTP 401 (c401)", attempts: 1},
		{name: "retries run out", steps: []func(http.ResponseWriter, *http.Request){status(500), status(500), status(500)},
			cfg: Config{Retries: 2}, wantErr: "HTTP 500 (c500): status 500 (after 3 attempts)", attempts: 3},
		{name: "Retry-After too long", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "3600")},
			wantErr: "HTTP 429", attempts: 1},
		{name: "garbage", steps: []func(http.ResponseWriter, *http.Request){
			func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<html>oops</html>") },
			func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"choices":[]}`) },
			func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"error":{"message":"overloaded"}}`) },
		}, attempts: 4},
		{name: "connection dropped", steps: []func(http.ResponseWriter, *http.Request){
			func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "500")
				io.WriteString(w, `{"id":`)
				c, _, _ := w.(http.Hijacker).Hijack()
				c.Close()
			}}, attempts: 2},
		{name: "timeout", steps: []func(http.ResponseWriter, *http.Request){
			func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
			cfg: Config{Timeout: 50 * time.Millisecond}, attempts: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &scripted{steps: tc.steps}
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, sleeps := testClient(t, srv, tc.cfg)
			resp, err := c.Complete(context.Background(), req())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			} else if err != nil || resp.Content != `{"answer": "first"}` || resp.Usage.TotalTokens != 12 {
				t.Fatalf("%+v %v", resp, err)
			}
			if st := c.Stats(); st.Attempts != tc.attempts {
				t.Errorf("%d attempts, want %d (stats %+v)", st.Attempts, tc.attempts, st)
			}
			if tc.sleeps != nil && fmt.Sprint(*sleeps) != fmt.Sprint(tc.sleeps) {
				// The 429 pause makes the next attempt also wait; only compare the backoffs.
				got := *sleeps
				if len(got) < len(tc.sleeps) || fmt.Sprint(got[:len(tc.sleeps)]) != fmt.Sprint(tc.sleeps) {
					t.Errorf("slept %v, want %v", got, tc.sleeps)
				}
			}
		})
	}
}

// A 429's Retry-After holds back every request of the client, not only the one that got it.
func TestClientPausesAllOn429(t *testing.T) {
	srv := httptest.NewServer(&scripted{steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "30")}})
	defer srv.Close()
	c, sleeps := testClient(t, srv, Config{})
	c.Complete(context.Background(), req())
	*sleeps = nil
	c.Complete(context.Background(), req())
	if len(*sleeps) != 1 || (*sleeps)[0] < 29*time.Second {
		t.Errorf("second request slept %v, want ~30s of pause", *sleeps)
	}
}

func TestClientLimits(t *testing.T) {
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inflight.Add(-1)
		io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c, err := NewClient(Config{BaseURL: srv.URL, Model: "m", Concurrency: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Complete(context.Background(), req()) }()
	}
	wg.Wait()
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
	c, _ = NewClient(Config{BaseURL: srv.URL, Model: "m", Concurrency: 8, RPS: 50}, nil)
	start := time.Now()
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Complete(context.Background(), req()) }()
	}
	wg.Wait()
	if el := time.Since(start); el < 170*time.Millisecond {
		t.Errorf("10 requests at 50/s took %v, want ≥ 180ms", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Complete(ctx, req()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestRequestBody(t *testing.T) {
	h := &scripted{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _ := testClient(t, srv, Config{APIKey: "k", MaxTokensField: "max_completion_tokens"})
	seed := int64(7)
	r := &Request{Temperature: 0.5, TopP: 0.9, MaxTokens: 20, Seed: &seed, Messages: []Message{
		{Role: "system", Parts: []Part{Text("sys <&>")}},
		{Role: "user", Parts: []Part{Text("q \"x\"\n"), {Image: &Image{Key: "k", URL: "data:image/png;base64,AAAA", Detail: "low"}},
			{Image: &Image{Key: "k2", URL: "data:image/png;base64,BB+/=="}}}},
	}}
	if _, err := c.Complete(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(h.bodies[0], &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, h.bodies[0])
	}
	want := `{"max_completion_tokens":20,"messages":[{"content":"sys \u003c\u0026\u003e","role":"system"},{"content":[{"text":"q \"x\"\n","type":"text"},{"image_url":{"detail":"low","url":"data:image/png;base64,AAAA"},"type":"image_url"},{"image_url":{"url":"data:image/png;base64,BB+/=="},"type":"image_url"}],"role":"user"}],"model":"m","seed":7,"stream":false,"temperature":0.5,"top_p":0.9}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("body\n got  %s\n want %s", b, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"Thu, 01 Jan 2026 00:00:10 GMT"}}, 10 * time.Second},
		{http.Header{"Retry-After": {"Wed, 31 Dec 2025 23:00:00 GMT"}}, 0},
		{http.Header{"Retry-After": {"-1"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After-Ms": {"20"}, "Retry-After": {"1"}}, 20 * time.Millisecond},
		{http.Header{}, 0},
	} {
		if got := ParseRetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "1.5", "Thu, 01 Jan 2026 00:00:10 GMT", "1e400", "NaN", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := ParseRetryAfter(http.Header{"Retry-After": {s}, "Retry-After-Ms": {s}}, time.Now()); d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{BaseURL: "http://x/v1", Model: "m"}, ""},
		{Config{BaseURL: "ftp://x", Model: "m"}, `base-url: "ftp://x" is not an http(s) URL (set --base-url or OPENAI_BASE_URL)`},
		{Config{BaseURL: "http://x"}, "model: missing (set --model or OPENAI_MODEL)"},
		{Config{BaseURL: "http://x", Model: "m", Concurrency: -1}, "concurrency: -1, want 1..1024"},
		{Config{BaseURL: "http://x", Model: "m", RPS: -2}, "rps: -2 is negative"},
		{Config{BaseURL: "http://x", Model: "m", MaxTokensField: "n"}, `max-tokens-field: "n", want max_tokens or max_completion_tokens`},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	env := map[string]string{"OPENAI_API_KEY": "sk", "OPENAI_MODEL": "gpt"}
	c := ConfigFromEnv(func(k string) string { return env[k] })
	if c.BaseURL != DefaultBaseURL || c.APIKey != "sk" || c.Model != "gpt" || c.Endpoint() != "https://api.openai.com" {
		t.Errorf("from env: %+v", c)
	}
	if got := (Config{PricePrompt: 2.5, PriceCompletion: 10}).Cost(TokenUsage{PromptTokens: 1000, CompletionTokens: 100}); got != 0.0035 {
		t.Errorf("cost %v", got)
	}
}

func TestResizeAndEncode(t *testing.T) {
	// A 4×2 image, left half white, right half black, halved: two columns, exact means.
	src := []byte{255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0}
	if got := resizeRGB(src, 4, 2, 2, 1); fmt.Sprint(got) != "[255 255 255 0 0 0]" {
		t.Errorf("resize %v", got)
	}
	// 3 → 2: the middle pixel is shared.
	if got := resizeRGB([]byte{0, 0, 0, 90, 90, 90, 180, 180, 180}, 3, 1, 2, 1); fmt.Sprint(got) != "[30 30 30 150 150 150]" {
		t.Errorf("resize 3→2 %v", got)
	}
	for _, tc := range []struct{ w, h, size, W, H int }{{640, 480, 224, 224, 168}, {480, 640, 224, 168, 224}, {224, 224, 224, 224, 224}, {64, 64, 224, 224, 224}} {
		if W, H := fitSize(tc.w, tc.h, tc.size); W != tc.W || H != tc.H {
			t.Errorf("fit %dx%d into %d: %dx%d", tc.w, tc.h, tc.size, W, H)
		}
	}
	url, w, h, err := encodePNG(label.Frame{W: 8, H: 4, RGB: make([]byte, 96)}, 4)
	if err != nil || w != 4 || h != 2 || !strings.HasPrefix(url, "data:image/png;base64,iVBORw0KGgo") {
		t.Errorf("encode: %dx%d %v %.40s", w, h, err, url)
	}
	if _, _, _, err := encodePNG(label.Frame{W: 8, H: 4, RGB: make([]byte, 5)}, 4); err == nil {
		t.Error("short RGB accepted")
	}
}

func TestImageCacheLRU(t *testing.T) {
	c := newImageCache(10)
	c.put("a", "1234")
	c.put("b", "1234")
	c.get("a")
	c.put("c", "1234") // evicts b, the least recently used
	if _, ok := c.get("b"); ok {
		t.Error("b kept")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	c.put("huge", strings.Repeat("x", 11))
	if _, ok := c.get("huge"); ok {
		t.Error("an entry larger than the cache was kept")
	}
}

func TestCacheKey(t *testing.T) {
	base := func() *Request {
		return &Request{Temperature: 0, MaxTokens: 10, Messages: []Message{{Role: "user", Parts: []Part{Text("goal"), {Image: &Image{Key: "h1@224"}}, {Image: &Image{Key: "h2@224"}}}}}}
	}
	k := CacheKey("m", base(), 0)
	same := base()
	same.Messages[0].Parts[1].Image.URL = "data:whatever" // the bytes sent do not matter, the content key does
	if CacheKey("m", same, 0) != k {
		t.Error("key depends on the data URL")
	}
	for name, change := range map[string]func(r *Request) (string, int){
		"model":       func(r *Request) (string, int) { return "m2", 0 },
		"sample":      func(r *Request) (string, int) { return "m", 1 },
		"temperature": func(r *Request) (string, int) { r.Temperature = 0.7; return "m", 0 },
		"max tokens":  func(r *Request) (string, int) { r.MaxTokens = 11; return "m", 0 },
		"seed":        func(r *Request) (string, int) { s := int64(1); r.Seed = &s; return "m", 0 },
		"prompt":      func(r *Request) (string, int) { r.Messages[0].Parts[0].Text = "goal!"; return "m", 0 },
		"frame":       func(r *Request) (string, int) { r.Messages[0].Parts[2].Image.Key = "h3@224"; return "m", 0 },
		"order":       func(r *Request) (string, int) { p := r.Messages[0].Parts; p[1], p[2] = p[2], p[1]; return "m", 0 },
		"role":        func(r *Request) (string, int) { r.Messages[0].Role = "system"; return "m", 0 },
		"boundary": func(r *Request) (string, int) {
			r.Messages[0].Parts[0].Text = "goa"
			r.Messages = append(r.Messages, Message{Role: "user", Parts: []Part{Text("l")}})
			return "m", 0
		},
	} {
		r := base()
		model, sample := change(r)
		if CacheKey(model, r, sample) == k {
			t.Errorf("key ignores the %s", name)
		}
	}
}
