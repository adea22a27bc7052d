package vlmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/distill/label/vlm"
)

// TestEndpoint is the conformance suite of an OpenAI-compatible chat completions
// endpoint, as the VLM labeller relies on it. The fake Server passes it, and so must a
// real endpoint (run it with ROBODISTILL_VLM_CONFORMANCE=1 and the OPENAI_* variables):
//
//   - GET /models lists cfg.Model;
//   - a text-only request and a request with two PNG data URLs both get a 200 with id,
//     object "chat.completion", created, model, choices[0] with index 0, an assistant
//     message with string content and a finish_reason, and usage whose total is the sum
//     of prompt and completion tokens;
//   - an unknown model is a 4xx that is not retried;
//   - a Judge round trip (one-stage, both orders through label.Consistent) completes.
func TestEndpoint(t *testing.T, cfg vlm.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := vlm.NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg = c.Config()

	t.Run("models", func(t *testing.T) {
		ids, err := c.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, id := range ids {
			found = found || id == cfg.Model
		}
		if !found {
			t.Errorf("GET /models lists %v, not %q", ids, cfg.Model)
		}
	})

	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 1, Steps: 4, W: 64, H: 64})
	fs, _ := src.Frames(0)
	f0, _ := src.Frame(fs[0].Hash)
	f1, _ := src.Frame(fs[3].Hash)
	img := func(f label.Frame) string {
		var b bytes.Buffer
		b.WriteString("data:image/png;base64,")
		enc := labeltest.PNGBase64(f)
		b.WriteString(enc)
		return b.String()
	}

	t.Run("shapes", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			content any
		}{
			{"text", "Reply with the single word: ok"},
			{"images", []any{
				map[string]any{"type": "text", "text": "Image 1:"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": img(f0)}},
				map[string]any{"type": "text", "text": "Image 2:"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": img(f1)}},
				map[string]any{"type": "text", "text": "Which image has a longer red bar at the top? Reply with only a JSON object: {\"answer\": \"first\"} or {\"answer\": \"second\"}."},
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body, _ := json.Marshal(map[string]any{"model": cfg.Model, "temperature": 0, "max_tokens": 64,
					"messages": []any{map[string]any{"role": "user", "content": tc.content}}})
				status, raw := post(ctx, t, cfg, body)
				if status != 200 {
					t.Fatalf("status %d: %s", status, raw)
				}
				var r struct {
					ID      *string `json:"id"`
					Object  string  `json:"object"`
					Created int64   `json:"created"`
					Model   string  `json:"model"`
					Choices []struct {
						Index   *int `json:"index"`
						Message struct {
							Role    string  `json:"role"`
							Content *string `json:"content"`
						} `json:"message"`
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
					Usage *struct {
						PromptTokens     int `json:"prompt_tokens"`
						CompletionTokens int `json:"completion_tokens"`
						TotalTokens      int `json:"total_tokens"`
					} `json:"usage"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatalf("response is not JSON: %v: %s", err, raw)
				}
				switch {
				case r.ID == nil || *r.ID == "":
					t.Error("no id")
				case r.Object != "chat.completion":
					t.Errorf("object %q", r.Object)
				case r.Created <= 0:
					t.Errorf("created %d", r.Created)
				case r.Model == "":
					t.Error("no model")
				case len(r.Choices) != 1:
					t.Fatalf("%d choices", len(r.Choices))
				}
				ch := r.Choices[0]
				if ch.Index == nil || *ch.Index != 0 || ch.Message.Role != "assistant" || ch.Message.Content == nil || ch.FinishReason == nil {
					t.Errorf("choice %+v", ch)
				}
				if r.Usage == nil || r.Usage.PromptTokens <= 0 || r.Usage.CompletionTokens <= 0 ||
					r.Usage.TotalTokens != r.Usage.PromptTokens+r.Usage.CompletionTokens {
					t.Errorf("usage %+v", r.Usage)
				}
			})
		}
	})

	t.Run("unknown model", func(t *testing.T) {
		bad := cfg
		bad.Model = "no-such-model-robodistill"
		bad.Retries = 3
		bc, err := vlm.NewClient(bad, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bc.Complete(ctx, &vlm.Request{Messages: []vlm.Message{{Role: "user", Parts: []vlm.Part{vlm.Text("hi")}}}})
		var api *vlm.APIError
		if !errors.As(err, &api) || api.Status < 400 || api.Status >= 500 {
			t.Fatalf("error %v, want a 4xx", err)
		}
		if st := bc.Stats(); st.Attempts != 1 {
			t.Errorf("%d attempts: a 4xx must not be retried", st.Attempts)
		}
	})

	t.Run("judge", func(t *testing.T) {
		j, err := vlm.NewJudge(vlm.JudgeConfig{Client: c, Source: src, Mode: vlm.OneStage, ImageSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		l, err := label.NewConsistent(j, label.ConsistentOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eps := src.Episodes()
		q := label.NewQuery(label.Pair{A: label.Segment{fs[0]}, B: label.Segment{fs[3]}}, eps)
		got, err := l.Label(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Orders) != 2 || got.Usage.Requests < 2 {
			t.Errorf("label %+v", got)
		}
	})
}

func post(ctx context.Context, t *testing.T, cfg vlm.Config, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}
