// Package monitor detects flash crowds: it keeps a sliding-window view of a site's request rate and its
// origin's latency and errors, and drives the paper's states, normal → crowd → ending → normal, with
// hysteresis so that a rate hovering at the threshold does not flap.
package monitor

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// State is where a site stands.
type State int

// The states. Ending is the way out of a crowd: helpers' DNS records are withdrawn and the monitor waits for
// their TTL to pass before the site is normal again; a new surge in that time goes straight back to Crowd.
const (
	Normal State = iota
	Crowd
	Ending
)

func (s State) String() string {
	switch s {
	case Normal:
		return "normal"
	case Crowd:
		return "crowd"
	case Ending:
		return "ending"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText renders the state by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Defaults for Config.
const (
	DefaultWindow       = 10 * time.Second
	DefaultThreshold    = 50 // requests per second
	DefaultEnterAfter   = 3 * time.Second
	DefaultExitAfter    = 30 * time.Second
	DefaultEndingHold   = 30 * time.Second // the DNS records' TTL
	DefaultExitFraction = 0.7
	// buckets is how many slots the window is cut into: enough for a smooth rate, few enough to sum cheaply.
	buckets = 20
)

// Config configures a Monitor. Zero fields take the defaults.
type Config struct {
	// Window is the span over which rates are averaged.
	Window time.Duration
	// Threshold is the request rate (per second) above which the site is overloaded.
	Threshold float64
	// ExitFraction of Threshold is the rate below which a crowd counts as calming (hysteresis).
	ExitFraction float64
	// LatencyThreshold, if set, also counts the site as overloaded when the origin's mean latency in the
	// window exceeds it; ErrorRatio when that share of origin requests fails (or answers 5xx).
	LatencyThreshold time.Duration
	ErrorRatio       float64
	// EnterAfter is how long the site must stay overloaded before a crowd is declared.
	EnterAfter time.Duration
	// ExitAfter is how long a crowd must stay calm before it ends.
	ExitAfter time.Duration
	// EndingHold is how long the ending state lasts: the TTL of the withdrawn DNS records.
	EndingHold time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnChange is called (from Tick, without locks held) after every transition.
	OnChange func(from, to State)
	// Logger receives a line per transition.
	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Threshold <= 0 {
		c.Threshold = DefaultThreshold
	}
	if c.ExitFraction <= 0 || c.ExitFraction > 1 {
		c.ExitFraction = DefaultExitFraction
	}
	if c.EnterAfter <= 0 {
		c.EnterAfter = DefaultEnterAfter
	}
	if c.ExitAfter <= 0 {
		c.ExitAfter = DefaultExitAfter
	}
	if c.EndingHold <= 0 {
		c.EndingHold = DefaultEndingHold
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

type bucket struct {
	start          time.Time
	requests       int64
	originRequests int64
	originErrors   int64
	originLatency  time.Duration
}

// Monitor watches one site. It is safe for concurrent use.
type Monitor struct {
	cfg   Config
	width time.Duration

	mu          sync.Mutex
	ring        [buckets]bucket
	state       State
	since       time.Time // when the state was entered
	condSince   time.Time // when the condition that may change the state started; zero when it does not hold
	transitions map[[2]State]int64
}

// New returns a monitor in the normal state.
func New(cfg Config) *Monitor {
	cfg.fillDefaults()
	return &Monitor{cfg: cfg, width: cfg.Window / buckets, since: cfg.Now(), transitions: map[[2]State]int64{}}
}

// slot returns the bucket for t, clearing it if it holds an older period. Called with mu held.
func (m *Monitor) slot(t time.Time) *bucket {
	start := t.Truncate(m.width)
	b := &m.ring[(start.UnixNano()/int64(m.width))%buckets]
	if !b.start.Equal(start) {
		*b = bucket{start: start}
	}
	return b
}

// Request records one request to the site.
func (m *Monitor) Request() {
	m.mu.Lock()
	m.slot(m.cfg.Now()).requests++
	m.mu.Unlock()
}

// Origin records one request that went to the origin: how long it took and whether it failed.
func (m *Monitor) Origin(latency time.Duration, failed bool) {
	m.mu.Lock()
	b := m.slot(m.cfg.Now())
	b.originRequests++
	b.originLatency += latency
	if failed {
		b.originErrors++
	}
	m.mu.Unlock()
}

// Load is the view of the window.
type Load struct {
	Rate          float64       // requests per second
	OriginLatency time.Duration // mean
	OriginErrors  float64       // share of origin requests that failed
}

// load sums the window. Called with mu held.
func (m *Monitor) load(now time.Time) Load {
	var req, oreq, oerr int64
	var lat time.Duration
	oldest := now.Add(-m.cfg.Window)
	for _, b := range m.ring {
		if b.start.After(oldest) && !b.start.After(now) {
			req += b.requests
			oreq += b.originRequests
			oerr += b.originErrors
			lat += b.originLatency
		}
	}
	l := Load{Rate: float64(req) / m.cfg.Window.Seconds()}
	if oreq > 0 {
		l.OriginLatency = lat / time.Duration(oreq)
		l.OriginErrors = float64(oerr) / float64(oreq)
	}
	return l
}

func (m *Monitor) overloaded(l Load, rateLimit float64) bool {
	return l.Rate >= rateLimit ||
		(m.cfg.LatencyThreshold > 0 && l.OriginLatency >= m.cfg.LatencyThreshold) ||
		(m.cfg.ErrorRatio > 0 && l.OriginErrors >= m.cfg.ErrorRatio)
}

// Tick evaluates the window and moves between states. Call it regularly (Run does, every Window/buckets).
func (m *Monitor) Tick() State {
	m.mu.Lock()
	now := m.cfg.Now()
	l := m.load(now)
	from := m.state
	to := from
	// holds tracks for how long cond has held without interruption, and reports whether it has held for d.
	holds := func(cond bool, d time.Duration) bool {
		if !cond {
			m.condSince = time.Time{}
			return false
		}
		if m.condSince.IsZero() {
			m.condSince = now
		}
		return now.Sub(m.condSince) >= d
	}
	switch m.state {
	case Normal:
		if holds(m.overloaded(l, m.cfg.Threshold), m.cfg.EnterAfter) {
			to = Crowd
		}
	case Crowd:
		if holds(!m.overloaded(l, m.cfg.Threshold*m.cfg.ExitFraction), m.cfg.ExitAfter) {
			to = Ending
		}
	case Ending:
		if holds(m.overloaded(l, m.cfg.Threshold), m.cfg.EnterAfter) {
			to = Crowd
		} else if now.Sub(m.since) >= m.cfg.EndingHold && !m.overloaded(l, m.cfg.Threshold) {
			to = Normal
		}
	}
	if to != from {
		m.state, m.since, m.condSince = to, now, time.Time{}
		m.transitions[[2]State{from, to}]++
	}
	m.mu.Unlock()
	if to != from {
		m.cfg.Logger.Info("monitor: state change", slog.String("from", from.String()), slog.String("to", to.String()),
			slog.Float64("rate", l.Rate), slog.Duration("origin_latency", l.OriginLatency), slog.Float64("origin_errors", l.OriginErrors))
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(from, to)
		}
	}
	return to
}

// Status is a snapshot for the dashboard and metrics.
type Status struct {
	State       State
	Since       time.Time
	Load        Load
	Threshold   float64
	Transitions map[string]int64 // "from->to" → count
}

// Status returns the current state and load.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{State: m.state, Since: m.since, Load: m.load(m.cfg.Now()), Threshold: m.cfg.Threshold,
		Transitions: map[string]int64{}}
	for k, v := range m.transitions {
		st.Transitions[k[0].String()+"->"+k[1].String()] = v
	}
	return st
}

// Now is the monitor's clock.
func (m *Monitor) Now() time.Time { return m.cfg.Now() }

// TickInterval is how often Run evaluates the window.
func (m *Monitor) TickInterval() time.Duration { return m.width }
