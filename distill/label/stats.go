package label

import (
	"math"
	"sort"
)

// DefaultGapEdges are the progress-gap bins of Stats.ByGap, in reward units (MetaWorld's
// v2 rewards run from 0 to 10 per step): [0,0.5), [0.5,1), [1,2), [2,4), [4,∞).
var DefaultGapEdges = []float64{0, 0.5, 1, 2, 4}

// StatsOptions configures ComputeStats.
type StatsOptions struct {
	// GapEdges are the lower edges of the progress-gap bins, ascending; the last bin is
	// open. Default DefaultGapEdges.
	GapEdges []float64
}

// AnswerCounts tallies labels by answer.
type AnswerCounts struct {
	First    int `json:"first"`
	Second   int `json:"second"`
	Ties     int `json:"ties"`
	Abstains int `json:"abstains"`
}

func (c *AnswerCounts) add(a Answer) {
	switch a {
	case First:
		c.First++
	case Second:
		c.Second++
	case Tie:
		c.Ties++
	case Abstain:
		c.Abstains++
	}
}

// Stats are the label-quality figures of one labeller's records (`label stats`).
type Stats struct {
	Labeler string `json:"labeler"`
	Kind    string `json:"kind"`
	Count   int    `json:"count"`

	AnswerCounts
	TieRate     float64 `json:"tie_rate"`
	AbstainRate float64 `json:"abstain_rate"`

	// Answers counts a judge's individual answers (orders × samples); ParseFailures
	// those that could not be read even after the retry prompt.
	Answers          int      `json:"answers"`
	ParseFailures    int      `json:"parse_failures"`
	ParseFailureRate *float64 `json:"parse_failure_rate"`
	Retried          int      `json:"retried"`

	// OrderChecked counts labels asked in both orders with a decisive verdict in each;
	// OrderConsistencyRate is the share whose two verdicts agreed. A judge that prefers
	// a position scores low here.
	OrderChecked         int      `json:"order_checked"`
	OrderConsistencyRate *float64 `json:"order_consistency_rate"`

	// Agreement with simulator ground truth: Strict counts labels whose two sides'
	// returns differ, Decisive those of them answered first or second, Correct those
	// answered the way the returns order. VLMAcc = Correct/Decisive (the labeller's
	// accuracy when it commits), Coverage = Decisive/Strict.
	WithTruth int      `json:"with_truth"`
	Strict    int      `json:"strict"`
	Decisive  int      `json:"decisive"`
	Correct   int      `json:"correct"`
	VLMAcc    *float64 `json:"vlm_acc"`
	Coverage  *float64 `json:"coverage"`
	ByGap     []GapBin `json:"by_gap,omitempty"`

	Usage Usage `json:"usage"`
}

// GapBin is agreement with ground truth for labels whose progress gap |R_A − R_B| lies in
// [Lo, Hi) (Hi absent: unbounded).
type GapBin struct {
	Lo       float64  `json:"lo"`
	Hi       *float64 `json:"hi,omitempty"`
	Count    int      `json:"count"`
	Decisive int      `json:"decisive"`
	Correct  int      `json:"correct"`
	Ties     int      `json:"ties"`
	Abstains int      `json:"abstains"`
	Acc      *float64 `json:"acc"`
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

// ComputeStats computes the figures over recs (normally one labeller's; see
// StatsByLabeler). The labeller named is that of the first record.
func ComputeStats(recs []Record, o StatsOptions) Stats {
	edges := o.GapEdges
	if len(edges) == 0 {
		edges = DefaultGapEdges
	}
	var s Stats
	s.ByGap = make([]GapBin, len(edges))
	for i := range edges {
		s.ByGap[i].Lo = edges[i]
		if i+1 < len(edges) {
			hi := edges[i+1]
			s.ByGap[i].Hi = &hi
		}
	}
	consistent := 0
	for i := range recs {
		r := &recs[i]
		if i == 0 {
			s.Labeler, s.Kind = r.Labeler.Name(), r.Labeler.Kind
		}
		s.Count++
		s.AnswerCounts.add(r.Answer)
		for _, o := range r.Orders {
			for _, a := range o.Answers {
				s.Answers++
				if a.Parsed == ChoiceInvalid {
					s.ParseFailures++
				}
				if a.Retried {
					s.Retried++
				}
			}
		}
		if r.Consistent != nil {
			s.OrderChecked++
			if *r.Consistent {
				consistent++
			}
		}
		if r.Usage != nil {
			s.Usage.Add(*r.Usage)
		}
		if r.Truth == nil || math.IsNaN(r.Truth.A) || math.IsNaN(r.Truth.B) {
			continue
		}
		s.WithTruth++
		gap := r.Truth.Gap()
		bin := &s.ByGap[0]
		if k := sort.SearchFloat64s(edges, gap); k < len(edges) && edges[k] == gap {
			bin = &s.ByGap[k]
		} else if k > 0 {
			bin = &s.ByGap[k-1]
		}
		bin.Count++
		switch r.Answer {
		case Tie:
			bin.Ties++
		case Abstain:
			bin.Abstains++
		}
		if gap == 0 {
			continue
		}
		s.Strict++
		if r.Answer != First && r.Answer != Second {
			continue
		}
		s.Decisive++
		bin.Decisive++
		if (r.Answer == First) == (r.Truth.A > r.Truth.B) {
			s.Correct++
			bin.Correct++
		}
	}
	if s.Count > 0 {
		s.TieRate = float64(s.Ties) / float64(s.Count)
		s.AbstainRate = float64(s.Abstains) / float64(s.Count)
	}
	s.ParseFailureRate = ratio(s.ParseFailures, s.Answers)
	s.OrderConsistencyRate = ratio(consistent, s.OrderChecked)
	s.VLMAcc = ratio(s.Correct, s.Decisive)
	s.Coverage = ratio(s.Decisive, s.Strict)
	for i := range s.ByGap {
		s.ByGap[i].Acc = ratio(s.ByGap[i].Correct, s.ByGap[i].Decisive)
	}
	if s.WithTruth == 0 {
		s.ByGap = nil
	}
	return s
}

// StatsByLabeler computes Stats per labeller (by LabelerInfo.Key), in order of first
// appearance in recs.
func StatsByLabeler(recs []Record, o StatsOptions) []Stats {
	var order []string
	groups := map[string][]Record{}
	for _, r := range recs {
		k := r.Labeler.Key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Stats, 0, len(order))
	for _, k := range order {
		out = append(out, ComputeStats(groups[k], o))
	}
	return out
}
