package obs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Health judges whether the control loop makes progress: healthy while its last cycle
// finished at most periods × period ago. /healthz and the systemd watchdog both ask it, so
// a stalled loop fails its health check and, under systemd, gets the daemon restarted.
type Health struct {
	m      *Metrics
	maxAge time.Duration
	now    func() time.Time
}

// NewHealth returns the health check of the loop m observes at the given period; now is
// the clock (time.Now when nil).
func NewHealth(m *Metrics, period time.Duration, periods int, now func() time.Time) (*Health, error) {
	if period <= 0 || periods < 1 {
		return nil, fmt.Errorf("obs.NewHealth: period %v and periods %d must be positive", period, periods)
	}
	if now == nil {
		now = time.Now
	}
	return &Health{m: m, maxAge: time.Duration(periods) * period, now: now}, nil
}

// Health statuses.
const (
	StatusOK       = "ok"
	StatusStarting = "starting" // no cycle yet
	StatusStalled  = "stalled"  // no cycle for longer than the limit
)

// HealthStatus is /healthz's JSON body.
type HealthStatus struct {
	Status      string `json:"status"`
	SafetyState string `json:"safety_state"`
	// LastCycleAge is the time since the last cycle finished, in seconds; null before the
	// first cycle.
	LastCycleAge *float64 `json:"last_cycle_age"`
	// MaxCycleAge is the limit, in seconds.
	MaxCycleAge float64              `json:"max_cycle_age"`
	Models      map[string]ModelInfo `json:"models"`
}

// Check reports the loop's health now.
func (h *Health) Check() HealthStatus {
	s := HealthStatus{
		Status:      StatusStarting,
		SafetyState: h.m.SafetyState(),
		MaxCycleAge: h.maxAge.Seconds(),
		Models:      h.m.Models(),
	}
	if last := h.m.LastCycle(); !last.IsZero() {
		age := max(h.now().Sub(last), 0)
		sec := age.Seconds()
		s.LastCycleAge = &sec
		s.Status = StatusOK
		if age > h.maxAge {
			s.Status = StatusStalled
		}
	}
	return s
}

// Alive reports whether the loop made progress recently (Check's status is ok).
func (h *Health) Alive() bool {
	last := h.m.LastCycle()
	return !last.IsZero() && h.now().Sub(last) <= h.maxAge
}

// ServeHTTP answers 200 with the HealthStatus while the loop is alive, 503 otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := h.Check()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.Status == StatusOK {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodGet {
		_ = json.NewEncoder(w).Encode(s) // a client that went away is not our error
	}
}

// NewHandler serves /metrics from m and /healthz from h, and with profiling Go's
// profiles and execution traces under /debug/pprof/ (net/http/pprof's handlers on this
// mux only, never on http.DefaultServeMux).
func NewHandler(m *Metrics, h *Health, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.Handle("/healthz", h)
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server is the HTTP endpoint: Listen binds (so that a taken port fails the daemon's
// start, before it reports ready), Run serves until its context ends.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks one) for handler.
func Listen(addr string, handler http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("obs.Listen: %w", err)
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}}, nil
}

// Addr is the bound address, e.g. "127.0.0.1:9477".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// shutdownTimeout bounds how long Run waits for requests in flight when its context ends.
const shutdownTimeout = 2 * time.Second

// Run serves until ctx ends, then shuts the server down. It returns nil after ctx ends
// (cancellation is not a failure) and the server's error if serving fails.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("obs.Server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("obs.Server: shutdown: %w", err)
	}
	return nil
}

// Close releases the listener of a server that was never Run.
func (s *Server) Close() error {
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
