// Package monitor detects flash crowds: it keeps a sliding-window view of a site's demand and its origin's
// latency and errors, and drives the paper's states, normal → crowd → ending → normal, with hysteresis so
// that a rate hovering at the threshold does not flap.
//
// Demand is what real visitors ask for, not raw requests: the gateway reports only successful page and
// asset fetches (see Monitor.Demand), and each client's share is capped at ClientRate requests per second.
// A crowd is many people, so one client, however fast it asks, cannot make one: declaring a crowd makes
// federation members fetch the whole site version, which must not be one visitor's to trigger. The cap is
// a rate rather than one count per distinct client because the threshold stays in the unit operators
// measure (requests per second) and a few heavy visitors still weigh more than one idle one; counting
// only distinct clients would make a site of single-page visits and a site of long browsing sessions need
// thresholds in different units.
package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	DefaultWindow    = 10 * time.Second
	DefaultThreshold = 50 // requests per second, each client's counted up to ClientRate
	// DefaultClientRate and DefaultClientBurst bound one client's share of the demand. A page view is a
	// burst of the page and its assets (20 covers a page with a dozen or so images, scripts and styles),
	// then a visitor reads; 5 requests per second sustained is more than a person browsing asks, so that
	// at the default threshold a crowd takes at least 10 clients asking flat out, and 20 browsers at ~3
	// requests per second each make one. Many visitors behind one NAT count as one client: a crowd from a
	// single campus is undercounted (LatencyThreshold and ErrorRatio still see the origin struggle).
	DefaultClientRate   = 5
	DefaultClientBurst  = 20
	DefaultEnterAfter   = 3 * time.Second
	DefaultExitAfter    = 30 * time.Second
	DefaultEndingHold   = 30 * time.Second // the DNS records' TTL
	DefaultExitFraction = 0.7
	// buckets is how many slots the window is cut into: enough for a smooth rate, few enough to sum cheaply.
	buckets = 20
	// maxClients bounds the clients whose share is tracked at once (about 50 bytes each). A client is
	// forgotten once its bucket has refilled (ClientBurst/ClientRate seconds after its last request), so
	// only clients of the last few seconds are held; past the bound, new clients' requests count in full:
	// that many distinct clients within seconds is a crowd.
	maxClients = 100_000
)

// Config configures a Monitor. Zero fields take the defaults.
type Config struct {
	// Window is the span over which rates are averaged.
	Window time.Duration
	// Threshold is the demand (requests per second, each client's capped by ClientRate) above which the
	// site is overloaded.
	Threshold float64
	// ClientRate caps one client's share of the demand, in requests per second sustained, ClientBurst at
	// once. IPv6 clients are counted by /64, as one host usually has a whole /64. Negative: every request
	// counts in full (tests and benchmarks whose crowd comes from one address).
	ClientRate  float64
	ClientBurst float64
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

// Validate rejects values no default can stand for (negative spans and thresholds; a ClientRate below 0
// other than -1). Zero fields take their defaults in New.
func (c *Config) Validate() error {
	switch {
	case c.Threshold < 0:
		return fmt.Errorf("monitor: Threshold %v is negative", c.Threshold)
	case c.ClientRate < 0 && c.ClientRate != -1:
		return fmt.Errorf("monitor: ClientRate %v: want a positive rate, or -1 to count every request", c.ClientRate)
	case c.Window < 0 || c.EnterAfter < 0 || c.ExitAfter < 0 || c.EndingHold < 0:
		return errors.New("monitor: Window, EnterAfter, ExitAfter and EndingHold must be positive")
	}
	return nil
}

func (c *Config) fillDefaults() {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Threshold <= 0 {
		c.Threshold = DefaultThreshold
	}
	if c.ClientRate == 0 {
		c.ClientRate = DefaultClientRate
	}
	if c.ClientBurst <= 0 {
		c.ClientBurst = DefaultClientBurst
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
	clients     map[netip.Prefix]share
}

// share is one client's token bucket: its requests count toward the demand while it holds tokens.
type share struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// New returns a monitor in the normal state.
func New(cfg Config) *Monitor {
	cfg.fillDefaults()
	return &Monitor{cfg: cfg, width: cfg.Window / buckets, since: cfg.Now(), transitions: map[[2]State]int64{},
		clients: map[netip.Prefix]share{}}
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

// Demand records one successful fetch of the site by a client. It counts toward the demand while the
// client's share (ClientRate) is not used up.
func (m *Monitor) Demand(client netip.Addr) {
	m.mu.Lock()
	now := m.cfg.Now()
	if m.take(clientKey(client), now) {
		m.slot(now).requests++
	}
	m.mu.Unlock()
}

// take takes a token from the client's bucket, reporting whether it had one. Called with mu held.
func (m *Monitor) take(k netip.Prefix, now time.Time) bool {
	if m.cfg.ClientRate < 0 {
		return true
	}
	sh, ok := m.clients[k]
	switch {
	case ok:
		sh.tokens = min(m.cfg.ClientBurst, sh.tokens+max(0, now.Sub(sh.at).Seconds())*m.cfg.ClientRate)
	case len(m.clients) >= maxClients:
		return true
	default:
		sh.tokens = m.cfg.ClientBurst
	}
	sh.at = now
	if sh.tokens < 1 {
		m.clients[k] = sh
		return false
	}
	sh.tokens--
	m.clients[k] = sh
	return true
}

// forget drops the clients whose buckets have refilled: they are as good as new. Called with mu held.
func (m *Monitor) forget(now time.Time) {
	full := time.Duration(m.cfg.ClientBurst / m.cfg.ClientRate * float64(time.Second))
	for k, sh := range m.clients {
		if now.Sub(sh.at) >= full {
			delete(m.clients, k)
		}
	}
}

// clientKey is the unit a share is kept for: an IPv4 address, or an IPv6 /64.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits) // the zero Addr gives the zero Prefix: clients of unknown address share one
	return p
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
	Rate          float64       // demand: requests per second, each client's counted up to Config.ClientRate
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
	if m.cfg.ClientRate > 0 {
		m.forget(now)
	}
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
