package vlm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cache stores responses by content key (see CacheKey). Implementations are safe for
// concurrent use.
type Cache interface {
	// Get returns the response stored under key, if any.
	Get(key string) (*Response, bool, error)
	Put(key string, r *Response) error
}

// CacheKey is the content address of a request: the model, the sampling settings, the
// sample number and every message, with images named by their content key (frame hash,
// size and encoding) rather than their bytes. The endpoint is not part of it: the same
// model asked the same question elsewhere answers from the cache.
func CacheKey(model string, r *Request, sample int) string {
	h := sha256.New()
	var num [8]byte
	writeStr := func(s string) {
		binary.LittleEndian.PutUint64(num[:], uint64(len(s)))
		h.Write(num[:])
		h.Write([]byte(s))
	}
	writeNum := func(v float64) {
		binary.LittleEndian.PutUint64(num[:], math.Float64bits(v))
		h.Write(num[:])
	}
	writeStr("robodistill/vlm-cache/v1")
	writeStr(model)
	writeNum(r.Temperature)
	writeNum(r.TopP)
	writeNum(float64(r.MaxTokens))
	if r.Seed != nil {
		writeStr("seed")
		writeNum(float64(*r.Seed))
	}
	writeNum(float64(sample))
	for _, m := range r.Messages {
		writeStr("m:" + m.Role)
		for _, p := range m.Parts {
			if p.Image != nil {
				writeStr("i:" + p.Image.Key + "|" + p.Image.Detail)
			} else {
				writeStr("t:" + p.Text)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MemCache is an in-memory Cache, for a single run without a cache directory.
type MemCache struct {
	mu sync.Mutex
	m  map[string]Response
}

// NewMemCache returns an empty MemCache.
func NewMemCache() *MemCache { return &MemCache{m: map[string]Response{}} }

// Get implements Cache.
func (c *MemCache) Get(key string) (*Response, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[key]
	if !ok {
		return nil, false, nil
	}
	return &r, true, nil
}

// Put implements Cache.
func (c *MemCache) Put(key string, r *Response) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = *r
	return nil
}

// Len is the number of entries.
func (c *MemCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// DirCache is a Cache in a directory, one JSON file per response under a two-letter
// fan-out (ab/abcdef….json), each written to a temporary file and renamed into place,
// so a killed run leaves whole entries or none, and several runs may share it.
type DirCache struct {
	dir string
}

type cacheEntry struct {
	V        int       `json:"v"`
	Key      string    `json:"key"`
	Response Response  `json:"response"`
	Time     time.Time `json:"time"`
}

// OpenDirCache opens or creates a cache directory and removes temporary files that
// killed runs left behind more than an hour ago.
func OpenDirCache(dir string) (*DirCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vlm.OpenDirCache: %w", err)
	}
	cutoff := time.Now().Add(-time.Hour)
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			if fi, err := d.Info(); err == nil && fi.ModTime().Before(cutoff) {
				_ = os.Remove(p)
			}
		}
		return nil
	})
	return &DirCache{dir: dir}, nil
}

func (c *DirCache) path(key string) (string, error) {
	if len(key) < 8 || strings.ContainsAny(key, `/\.`) {
		return "", fmt.Errorf("vlm.DirCache: bad key %q", key)
	}
	return filepath.Join(c.dir, key[:2], key+".json"), nil
}

// Get implements Cache. An unreadable entry is a miss (it is rewritten by the next Put).
func (c *DirCache) Get(key string) (*Response, bool, error) {
	p, err := c.path(key)
	if err != nil {
		return nil, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("vlm.DirCache.Get: %w", err)
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Key != key {
		return nil, false, nil
	}
	return &e.Response, true, nil
}

// Put implements Cache.
func (c *DirCache) Put(key string, r *Response) error {
	p, err := c.path(key)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cacheEntry{V: 1, Key: key, Response: *r, Time: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("vlm.DirCache.Put: %w", err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vlm.DirCache.Put: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("vlm.DirCache.Put: %w", err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("vlm.DirCache.Put: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("vlm.DirCache.Put: %w", err)
	}
	return nil
}
