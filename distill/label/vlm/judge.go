package vlm

import (
	"context"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"robodistill/distill/label"
)

// JudgeConfig configures a Judge.
type JudgeConfig struct {
	Client *Client
	// Source gives the frames' pixels.
	Source label.Source
	// Cache answers repeated requests; nil asks every time.
	Cache Cache
	// Mode is OneStage or TwoStage (default).
	Mode Mode
	// ImageSize is the longer side of the images sent, in pixels (default 224; frames
	// keep their aspect ratio).
	ImageSize int
	// Detail is OpenAI's image detail ("low", "high", "auto"); empty: not sent.
	Detail      string
	Temperature float64
	// MaxTokens bounds an answer (default 256), AnalysisMaxTokens an analysis (1024).
	MaxTokens, AnalysisMaxTokens int
	// Seed, if set, is sent (plus the sample number) so that servers that honour it
	// sample reproducibly.
	Seed *int64
	// ImageCacheBytes bounds the encoded images kept in memory (default 256 MiB).
	ImageCacheBytes int64
	Log             *zap.Logger
}

// Judge asks a VLM which of two frames shows more progress toward the goal. It
// implements label.Judge; label.NewConsistent makes it a Labeler that asks in both orders.
type Judge struct {
	cfg    JudgeConfig
	client *Client
	prompt Prompt
	images *imageCache
	log    *zap.Logger
	info   label.LabelerInfo
}

// NewJudge validates cfg and returns a judge.
func NewJudge(cfg JudgeConfig) (*Judge, error) {
	if cfg.Client == nil || cfg.Source == nil {
		return nil, fmt.Errorf("vlm.NewJudge: client and source are required")
	}
	if cfg.Mode == "" {
		cfg.Mode = TwoStage
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, fmt.Errorf("vlm.NewJudge: %w", err)
	}
	if cfg.ImageSize == 0 {
		cfg.ImageSize = 224
	}
	if cfg.ImageSize < 8 || cfg.ImageSize > 4096 {
		return nil, fmt.Errorf("vlm.NewJudge: image-size: %d, want 8..4096", cfg.ImageSize)
	}
	if cfg.Temperature < 0 || cfg.Temperature > 2 {
		return nil, fmt.Errorf("vlm.NewJudge: temperature: %v, want 0..2", cfg.Temperature)
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 256
	}
	if cfg.AnalysisMaxTokens == 0 {
		cfg.AnalysisMaxTokens = 1024
	}
	if cfg.ImageCacheBytes == 0 {
		cfg.ImageCacheBytes = 256 << 20
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := Prompts(cfg.Mode)
	cc := cfg.Client.Config()
	params := map[string]float64{"temperature": cfg.Temperature, "image_size": float64(cfg.ImageSize), "max_tokens": float64(cfg.MaxTokens)}
	if cfg.Mode == TwoStage {
		params["analysis_max_tokens"] = float64(cfg.AnalysisMaxTokens)
	}
	if cfg.Seed != nil {
		params["seed"] = float64(*cfg.Seed)
	}
	return &Judge{
		cfg: cfg, client: cfg.Client, prompt: p, images: newImageCache(cfg.ImageCacheBytes),
		log: cfg.Log.With(zap.String("component", "vlm.judge")),
		info: label.LabelerInfo{Kind: "vlm", Spec: "vlm", Model: cc.Model, Endpoint: cc.Endpoint(),
			PromptVersion: p.ID(), PromptDigest: p.Digest(), Params: params},
	}, nil
}

// Info implements label.Judge.
func (j *Judge) Info() label.LabelerInfo { return j.info }

// Prompt returns the prompt texts in use.
func (j *Judge) Prompt() Prompt { return j.prompt }

// Judge implements label.Judge: one conversation (analysis then answer in two-stage
// mode) and, when the answer cannot be read, one retry prompt in the same conversation.
func (j *Judge) Judge(ctx context.Context, q label.Query, order label.Order, sample int) (label.Verdict, error) {
	first, second := q.A.Last(), q.B.Last()
	if order == label.OrderBA {
		first, second = second, first
	}
	var v label.Verdict
	cached := true
	ask := func(msgs []Message, maxTokens int) (string, error) {
		r := &Request{Messages: msgs, Temperature: j.cfg.Temperature, MaxTokens: maxTokens}
		if j.cfg.Seed != nil {
			s := *j.cfg.Seed + int64(sample)
			r.Seed = &s
		}
		resp, hit, err := j.complete(ctx, r, sample)
		if err != nil {
			return "", err
		}
		if hit {
			v.Usage.Cached++
		} else {
			cached = false
			v.Usage.Requests++
			v.Usage.PromptTokens += resp.Usage.PromptTokens
			v.Usage.CompletionTokens += resp.Usage.CompletionTokens
			v.Usage.CostUSD += j.client.cfg.Cost(resp.Usage)
		}
		return resp.Content, nil
	}
	p := j.prompt
	user := Message{Role: "user", Parts: []Part{
		Text(p.intro(q.Goal)),
		Text(p.ImageLabels[0]), {Image: j.imagePart(first.Hash)},
		Text(p.ImageLabels[1]), {Image: j.imagePart(second.Hash)},
	}}
	msgs := []Message{{Role: "system", Parts: []Part{Text(p.System)}}, user}
	if p.Mode == TwoStage {
		msgs[1].Parts = append(msgs[1].Parts, Text(p.Analyse))
		analysis, err := ask(msgs, j.cfg.AnalysisMaxTokens)
		if err != nil {
			return v, err
		}
		v.Analysis = analysis
		msgs = append(msgs, Message{Role: "assistant", Parts: []Part{Text(analysis)}},
			Message{Role: "user", Parts: []Part{Text(p.Answer)}})
	} else {
		msgs[1].Parts = append(msgs[1].Parts, Text(p.Question))
	}
	raw, err := ask(msgs, j.cfg.MaxTokens)
	if err != nil {
		return v, err
	}
	v.Raw, v.Choice = raw, ParseAnswer(raw)
	if v.Choice == label.ChoiceInvalid {
		msgs = append(msgs, Message{Role: "assistant", Parts: []Part{Text(raw)}},
			Message{Role: "user", Parts: []Part{Text(p.Retry)}})
		raw2, err := ask(msgs, j.cfg.MaxTokens)
		if err != nil {
			return v, err
		}
		v.Retried = true
		v.Raw, v.Choice = raw+"\n--- retry ---\n"+raw2, ParseAnswer(raw2)
	}
	v.Cached = cached
	return v, nil
}

// imagePart names a frame's image by content; the data URL is filled in on a cache miss.
func (j *Judge) imagePart(hash string) *Image {
	return &Image{Key: hash + "@" + strconv.Itoa(j.cfg.ImageSize) + "/" + imageEncoding, Detail: j.cfg.Detail, frame: hash}
}

// complete answers r from the cache or the endpoint, and caches what the endpoint says.
func (j *Judge) complete(ctx context.Context, r *Request, sample int) (*Response, bool, error) {
	key := CacheKey(j.client.cfg.Model, r, sample)
	if j.cfg.Cache != nil {
		resp, ok, err := j.cfg.Cache.Get(key)
		if err != nil {
			return nil, false, err
		}
		if ok {
			return resp, true, nil
		}
	}
	if err := j.fillImages(r); err != nil {
		return nil, false, err
	}
	resp, err := j.client.Complete(ctx, r)
	if err != nil {
		return nil, false, err
	}
	if j.cfg.Cache != nil {
		if err := j.cfg.Cache.Put(key, resp); err != nil {
			return nil, false, err
		}
	}
	return resp, false, nil
}

// fillImages sets the data URLs of r's images, encoding frames that are not in memory.
func (j *Judge) fillImages(r *Request) error {
	for _, m := range r.Messages {
		for _, p := range m.Parts {
			img := p.Image
			if img == nil || img.URL != "" {
				continue
			}
			if url, ok := j.images.get(img.Key); ok {
				img.URL, img.safe = url, true
				continue
			}
			f, err := j.cfg.Source.Frame(img.frame)
			if err != nil {
				return fmt.Errorf("vlm: frame %s: %w", img.frame, err)
			}
			url, _, _, err := encodePNG(f, j.cfg.ImageSize)
			if err != nil {
				return fmt.Errorf("vlm: %w", err)
			}
			j.images.put(img.Key, url)
			img.URL, img.safe = url, true
		}
	}
	return nil
}
