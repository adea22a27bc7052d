package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Metrics is one scrape of a Prometheus text exposition (format 0.0.4): every sample
// with its labels. Comments (# HELP, # TYPE) are skipped; histograms are read back from
// their _bucket, _sum and _count series.
type Metrics struct {
	Samples []Sample
}

// Sample is one line of the exposition.
type Sample struct {
	Name   string
	Labels map[string]string // nil when the line has none
	Value  float64
}

// ErrNoMetric is wrapped when a scrape lacks a series the harness needs.
var ErrNoMetric = errors.New("metric not exported")

// maxLine bounds one exposition line (a robodistilld line is under 300 bytes; model_info
// carries a path).
const maxLine = 1 << 16

// ParseMetrics reads the text exposition format. Errors name the line.
func ParseMetrics(r io.Reader) (*Metrics, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	m := &Metrics{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		m.Samples = append(m.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// parseSample reads `name{label="value",…} value [timestamp]`.
func parseSample(line string) (Sample, error) {
	i := 0
	for i < len(line) && isNameByte(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return Sample{}, fmt.Errorf("%q: no metric name", line)
	}
	s := Sample{Name: line[:i]}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		labels, n, err := parseLabels(rest)
		if err != nil {
			return Sample{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		s.Labels, rest = labels, rest[n:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return Sample{}, fmt.Errorf("%s: want a value and an optional timestamp after the name, got %q", s.Name, rest)
	}
	v, err := parseValue(f[0])
	if err != nil {
		return Sample{}, fmt.Errorf("%s: value %q: %w", s.Name, f[0], err)
	}
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return Sample{}, fmt.Errorf("%s: timestamp %q is not an integer", s.Name, f[1])
		}
	}
	s.Value = v
	return s, nil
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	return v, nil
}

// parseLabels reads `{a="x",b="y"}` at the start of s and returns the labels and the
// bytes read.
func parseLabels(s string) (map[string]string, int, error) {
	labels := map[string]string{}
	i := 1 // after '{'
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i < len(s) && s[i] == '}' {
			return labels, i + 1, nil
		}
		start := i
		for i < len(s) && isNameByte(s[i], i == start) {
			i++
		}
		if i == start {
			return nil, 0, fmt.Errorf("labels: want a label name at %q", s[start:])
		}
		name := s[start:i]
		if i >= len(s) || s[i] != '=' {
			return nil, 0, fmt.Errorf("labels: want = after %q", name)
		}
		i++
		if i >= len(s) || s[i] != '"' {
			return nil, 0, fmt.Errorf("labels: want a quoted value for %q", name)
		}
		i++
		var b strings.Builder
		for {
			if i >= len(s) {
				return nil, 0, fmt.Errorf("labels: value of %q not terminated", name)
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				if i+1 >= len(s) {
					return nil, 0, fmt.Errorf("labels: value of %q not terminated", name)
				}
				switch s[i+1] {
				case '\\':
					b.WriteByte('\\')
				case '"':
					b.WriteByte('"')
				case 'n':
					b.WriteByte('\n')
				default:
					return nil, 0, fmt.Errorf("labels: value of %q: unknown escape \\%c", name, s[i+1])
				}
				i += 2
				continue
			}
			b.WriteByte(c)
			i++
		}
		if _, dup := labels[name]; dup {
			return nil, 0, fmt.Errorf("labels: %q twice", name)
		}
		labels[name] = b.String()
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		switch {
		case i < len(s) && s[i] == ',':
			i++
		case i < len(s) && s[i] == '}':
		default:
			return nil, 0, fmt.Errorf("labels: want , or } after the value of %q", name)
		}
	}
}

// matches reports whether s has every label of want (name, value pairs).
func (s *Sample) matches(want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if v, ok := s.Labels[want[i]]; !ok || v != want[i+1] {
			return false
		}
	}
	return true
}

// Value returns the first sample named name whose labels include the given name, value
// pairs.
func (m *Metrics) Value(name string, labels ...string) (float64, error) {
	for i := range m.Samples {
		if s := &m.Samples[i]; s.Name == name && s.matches(labels) {
			return s.Value, nil
		}
	}
	if len(labels) > 0 {
		return 0, fmt.Errorf("%w: %s%v", ErrNoMetric, name, labels)
	}
	return 0, fmt.Errorf("%w: %s", ErrNoMetric, name)
}

// Histogram returns the histogram name (its _bucket, _sum and _count series).
func (m *Metrics) Histogram(name string) (Histogram, error) {
	var h Histogram
	type bucket struct{ le, n float64 }
	var bs []bucket
	inf := math.NaN()
	for i := range m.Samples {
		s := &m.Samples[i]
		switch s.Name {
		case name + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				return h, fmt.Errorf("histogram %s: a bucket without le", name)
			}
			v, err := parseValue(le)
			if err != nil || math.IsNaN(v) {
				return h, fmt.Errorf("histogram %s: bucket le=%q is not a bound", name, le)
			}
			if math.IsInf(v, 1) {
				inf = s.Value
				continue
			}
			bs = append(bs, bucket{v, s.Value})
		case name + "_sum":
			h.Sum = s.Value
		case name + "_count":
			h.Count = s.Value
		}
	}
	if len(bs) == 0 && math.IsNaN(inf) {
		return h, fmt.Errorf("%w: histogram %s", ErrNoMetric, name)
	}
	if math.IsNaN(inf) {
		inf = h.Count
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for i, b := range bs {
		if i > 0 && (b.le == bs[i-1].le || b.n < bs[i-1].n) {
			return h, fmt.Errorf("histogram %s: buckets not increasing at le=%g", name, b.le)
		}
		h.Bounds = append(h.Bounds, b.le)
		h.Cumulative = append(h.Cumulative, b.n)
	}
	if len(bs) > 0 && inf < bs[len(bs)-1].n {
		return h, fmt.Errorf("histogram %s: +Inf bucket %g below the last bucket %g", name, inf, bs[len(bs)-1].n)
	}
	h.Cumulative = append(h.Cumulative, inf)
	h.Count = inf
	return h, nil
}

// Histogram is a cumulative histogram as Prometheus exports it: Cumulative[i] samples
// are ≤ Bounds[i]; the last entry of Cumulative (one more than Bounds) counts every
// sample (the +Inf bucket).
type Histogram struct {
	Bounds     []float64
	Cumulative []float64
	Count, Sum float64
}

// Sub returns the samples observed between base and h (two scrapes of one histogram).
func (h Histogram) Sub(base Histogram) (Histogram, error) {
	if !slices.Equal(h.Bounds, base.Bounds) {
		return Histogram{}, fmt.Errorf("histogram buckets changed between scrapes: %v, then %v", base.Bounds, h.Bounds)
	}
	d := Histogram{Bounds: h.Bounds, Cumulative: make([]float64, len(h.Cumulative)),
		Count: h.Count - base.Count, Sum: h.Sum - base.Sum}
	for i := range h.Cumulative {
		d.Cumulative[i] = h.Cumulative[i] - base.Cumulative[i]
		if d.Cumulative[i] < 0 {
			return Histogram{}, errors.New("histogram went backwards between scrapes (the process restarted?)")
		}
	}
	return d, nil
}

// Estimate is a figure read from a histogram: Value interpolated linearly inside the
// bucket (Lo, Hi] that holds it, as PromQL's histogram_quantile does. Hi is +Inf when the
// figure lies beyond the last bound; Value is then Lo.
type Estimate struct {
	Value, Lo, Hi float64
}

// bucket i spans (lower(i), upper(i)].
func (h Histogram) lower(i int) float64 {
	if i == 0 {
		if len(h.Bounds) == 0 {
			return 0 // only the +Inf bucket
		}
		return math.Min(0, h.Bounds[0])
	}
	return h.Bounds[i-1]
}

func (h Histogram) upper(i int) float64 {
	if i >= len(h.Bounds) {
		return math.Inf(1)
	}
	return h.Bounds[i]
}

// Quantile estimates the q-quantile (0 < q ≤ 1) with the rank convention of
// nearest-rank order statistics: the smallest value with at least q·Count samples at or
// below it. It returns false for an empty histogram.
func (h Histogram) Quantile(q float64) (Estimate, bool) {
	if h.Count <= 0 || len(h.Cumulative) == 0 {
		return Estimate{}, false
	}
	rank := math.Max(1, math.Ceil(q*h.Count))
	i := sort.Search(len(h.Cumulative), func(i int) bool { return h.Cumulative[i] >= rank })
	if i == len(h.Cumulative) {
		i = len(h.Cumulative) - 1
	}
	lo, hi := h.lower(i), h.upper(i)
	if math.IsInf(hi, 1) {
		return Estimate{Value: lo, Lo: lo, Hi: hi}, true
	}
	below := 0.0
	if i > 0 {
		below = h.Cumulative[i-1]
	}
	in := h.Cumulative[i] - below
	v := hi
	if in > 0 {
		v = lo + (hi-lo)*(rank-below)/in
	}
	return Estimate{Value: v, Lo: lo, Hi: hi}, true
}

// Max is the bucket holding the largest sample (Value is its upper bound, or its lower
// bound when it is the +Inf bucket).
func (h Histogram) Max() (Estimate, bool) {
	if h.Count <= 0 || len(h.Cumulative) == 0 {
		return Estimate{}, false
	}
	i := sort.Search(len(h.Cumulative), func(i int) bool { return h.Cumulative[i] >= h.Count })
	if i == len(h.Cumulative) {
		i = len(h.Cumulative) - 1
	}
	lo, hi := h.lower(i), h.upper(i)
	if math.IsInf(hi, 1) {
		return Estimate{Value: lo, Lo: lo, Hi: hi}, true
	}
	return Estimate{Value: hi, Lo: lo, Hi: hi}, true
}

// AtMost bounds the share of samples ≤ x: at least lo and at most hi. They are equal
// when x is a bucket bound; otherwise the samples of x's bucket may lie on either side.
func (h Histogram) AtMost(x float64) (lo, hi float64) {
	if h.Count <= 0 {
		return 0, 0
	}
	i := sort.SearchFloat64s(h.Bounds, x) // first bound ≥ x
	below := 0.0
	if i > 0 {
		below = h.Cumulative[i-1]
	}
	if i < len(h.Bounds) && h.Bounds[i] == x {
		return h.Cumulative[i] / h.Count, h.Cumulative[i] / h.Count
	}
	if x < h.lower(i) {
		return 0, 0
	}
	return below / h.Count, h.Cumulative[i] / h.Count
}
