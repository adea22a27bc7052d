package obs

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "robodistilld"

// MetricsOptions name the label values of the safety metrics. The control thread refers
// to them by index, so that reporting a state is a store of an integer, not a map lookup.
type MetricsOptions struct {
	// SafetyStates are the safety filter's states; SetSafetyState(i) makes SafetyStates[i]
	// the current one. The first is the state before any report.
	SafetyStates []string
	// TransitionReasons are why the filter changes state; SafetyTransition(i) counts
	// TransitionReasons[i]. Indices outside the list count as "other".
	TransitionReasons []string
}

// ModelInfo identifies a loaded model.
type ModelInfo struct {
	SHA256 string `json:"sha256"`
	Path   string `json:"path"`
}

// Metrics holds the daemon's Prometheus metrics on a private registry, and the loop
// state the health check reads.
//
// The control thread's methods (ObserveCycle, ObserveCameraToCommand, SetSafetyState,
// SafetyTransition, TransitionLogDrop) do not allocate: they observe pre-resolved
// histograms and counters or store atomics. All methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	lateness, compute, camToCmd prometheus.Histogram
	cycles, overruns, logDrops  prometheus.Counter
	realtime                    prometheus.Gauge
	transitions                 []prometheus.Counter // by reason; the last is "other"

	states []string
	state  atomic.Int32
	// The last cycle's finish is kept as an offset from base, which keeps the monotonic
	// clock reading: a wall-clock step (NTP at boot) must not fail the health check.
	base      time.Time
	lastCycle atomic.Int64 // time.Duration since base
	cycled    atomic.Bool  // a cycle has finished

	modelInfo *prometheus.GaugeVec
	mu        sync.Mutex
	models    map[string]ModelInfo // by kind
}

// Loop-timing buckets, 25 µs to 100 ms, with edges at the loop's goals (lateness p99
// ≤ 1 ms, compute p99 ≤ 3 ms) and at the periods of 50 to 500 Hz, so that a quantile
// read against a goal is not interpolated across it.
var timingBuckets = []float64{25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 1e-3, 2e-3, 3e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3}

// Camera-to-command buckets: 1 ms to 1 s, with edges at 5 ms (the goal) and at the
// periods of 30 and 50 Hz.
var latencyBuckets = []float64{1e-3, 2e-3, 3e-3, 5e-3, 10e-3, 15e-3, 20e-3, 33e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1}

// NewMetrics registers the daemon's metrics, and the Go runtime and process collectors,
// on a new registry.
func NewMetrics(o MetricsOptions) (*Metrics, error) {
	if len(o.SafetyStates) == 0 {
		return nil, errors.New("obs.NewMetrics: no safety states")
	}
	if err := distinct(o.SafetyStates); err != nil {
		return nil, fmt.Errorf("obs.NewMetrics: safety states: %w", err)
	}
	reasons := append(append([]string(nil), o.TransitionReasons...), "other")
	if err := distinct(reasons); err != nil {
		return nil, fmt.Errorf("obs.NewMetrics: transition reasons: %w", err)
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		base:   time.Now(),
		states: append([]string(nil), o.SafetyStates...),
		models: map[string]ModelInfo{},
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "loop_lateness_seconds",
			Help:    "How late each control cycle started after its tick.",
			Buckets: timingBuckets,
		}),
		compute: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "cycle_compute_seconds",
			Help:    "Time from a cycle's start to its command being sent (models, safety filter).",
			Buckets: timingBuckets,
		}),
		camToCmd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "camera_to_command_seconds",
			Help:    "Once per camera frame: from its receipt to the first command sent after the cycle that used it.",
			Buckets: latencyBuckets,
		}),
		cycles: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "loop_cycles_total",
			Help: "Control cycles run.",
		}),
		overruns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "loop_overruns_total",
			Help: "Control cycles that did not finish within their period.",
		}),
		realtime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "loop_realtime_priority",
			Help: "SCHED_FIFO priority of the control thread; 0: ordinary scheduling.",
		}),
		logDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "transition_log_drops_total",
			Help: "Transitions dropped because the transition log's queue was full.",
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "model_info",
			Help: "The loaded models: 1 for each kind's current file.",
		}, []string{"kind", "sha256", "path"}),
	}
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "safety_transitions_total",
		Help: "Safety filter state changes, by reason.",
	}, []string{"reason"})
	for _, r := range reasons {
		m.transitions = append(m.transitions, transitions.WithLabelValues(r)) // every series exists from the start
	}
	for _, c := range []prometheus.Collector{
		m.lateness, m.compute, m.camToCmd, m.cycles, m.overruns, m.realtime, m.logDrops, m.modelInfo, transitions,
		safetyStateCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("obs.NewMetrics: %w", err)
		}
	}
	return m, nil
}

func distinct(list []string) error {
	seen := map[string]bool{}
	for _, s := range list {
		if s == "" {
			return errors.New("empty name")
		}
		if seen[s] {
			return fmt.Errorf("%q twice", s)
		}
		seen[s] = true
	}
	return nil
}

// Registry is the private registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveCycle records one finished control cycle: when it finished (the loop's clock),
// how late it started after its tick, how long it computed, and whether it overran its
// period. It does not allocate.
func (m *Metrics) ObserveCycle(finished time.Time, lateness, compute time.Duration, overrun bool) {
	m.lateness.Observe(lateness.Seconds())
	m.compute.Observe(compute.Seconds())
	m.cycles.Inc()
	if overrun {
		m.overruns.Inc()
	}
	m.lastCycle.Store(int64(finished.Sub(m.base)))
	m.cycled.Store(true)
}

// SetRealtimePriority records the control thread's SCHED_FIFO priority (0: none).
func (m *Metrics) SetRealtimePriority(p int) { m.realtime.Set(float64(p)) }

// ObserveCameraToCommand records, once per camera frame, the time from its receipt to the
// first command sent after the cycle that used it.
// It does not allocate.
func (m *Metrics) ObserveCameraToCommand(d time.Duration) { m.camToCmd.Observe(d.Seconds()) }

// SetSafetyState makes MetricsOptions.SafetyStates[i] the current state; an index outside
// the list is ignored. It does not allocate.
func (m *Metrics) SetSafetyState(i int) {
	if i >= 0 && i < len(m.states) {
		m.state.Store(int32(i))
	}
}

// SafetyTransition counts a state change for MetricsOptions.TransitionReasons[i] ("other"
// when i is outside the list). It does not allocate.
func (m *Metrics) SafetyTransition(reason int) {
	if reason < 0 || reason >= len(m.transitions)-1 {
		reason = len(m.transitions) - 1
	}
	m.transitions[reason].Inc()
}

// TransitionLogDrop counts a transition the log's full queue refused. It does not
// allocate.
func (m *Metrics) TransitionLogDrop() { m.logDrops.Inc() }

// SetModel records the model of kind ("reward", "policy") now loaded, replacing the
// previous one of that kind.
func (m *Metrics) SetModel(kind, sha256, path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.modelInfo.DeletePartialMatch(prometheus.Labels{"kind": kind})
	m.modelInfo.WithLabelValues(kind, sha256, path).Set(1)
	m.models[kind] = ModelInfo{SHA256: sha256, Path: path}
}

// Models returns the loaded models by kind.
func (m *Metrics) Models() map[string]ModelInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ModelInfo, len(m.models))
	for k, v := range m.models {
		out[k] = v
	}
	return out
}

// LastCycle is when the last cycle finished, the zero Time before the first.
func (m *Metrics) LastCycle() time.Time {
	if !m.cycled.Load() {
		return time.Time{}
	}
	return m.base.Add(time.Duration(m.lastCycle.Load()))
}

// SafetyState is the current safety state's name.
func (m *Metrics) SafetyState() string { return m.states[m.state.Load()] }

// safetyStateCollector exports robodistilld_safety_state{state} from the atomic at scrape
// time: exactly one series is 1, which two gauge sets from the control thread could not
// promise to a concurrent scrape.
type safetyStateCollector struct{ m *Metrics }

var safetyStateDesc = prometheus.NewDesc(Namespace+"_safety_state",
	"The safety filter's state: 1 for the current one, 0 for the others.", []string{"state"}, nil)

func (c safetyStateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- safetyStateDesc }

func (c safetyStateCollector) Collect(ch chan<- prometheus.Metric) {
	cur := int(c.m.state.Load())
	for i, s := range c.m.states {
		v := 0.0
		if i == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(safetyStateDesc, prometheus.GaugeValue, v, s)
	}
}
