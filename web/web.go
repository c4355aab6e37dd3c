// Package web is the dashboard: a live page at /.swarm/dashboard showing a site's request rate against the
// crowd threshold, its state over time, bytes per second by source, the offload ratio, swarm sizes, helpers
// and published DNS answers; and the JSON status API (/.swarm/status, and /.swarm/status/stream as
// Server-Sent Events) it reads. The server it reports on fills a Snapshot; this package knows nothing else of it.
package web

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

//go:embed static
var static embed.FS

// Snapshot is the state the dashboard shows, as the status API returns it.
type Snapshot struct {
	Time            time.Time        `json:"time"`
	Site            string           `json:"site"`
	State           string           `json:"state"` // normal, crowd or ending
	StateSince      time.Time        `json:"stateSince"`
	Rate            float64          `json:"rate"`      // requests per second
	Threshold       float64          `json:"threshold"` // rate at which a crowd is declared
	OriginLatencyMs float64          `json:"originLatencyMs"`
	Bytes           map[string]int64 `json:"bytes"`   // cumulative bytes delivered, by source
	Offload         float64          `json:"offload"` // share of bytes not sent by the origin
	Swarms          []Swarm          `json:"swarms"`
	Helpers         []Helper         `json:"helpers"`
	DNS             []DNSAnswer      `json:"dns"`
	Tracker         TrackerStats     `json:"tracker"`
}

// Swarm is one site version's swarm.
type Swarm struct {
	Version  string `json:"version"`
	InfoHash string `json:"infoHash"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
	Seeders  int    `json:"seeders"`
	Leechers int    `json:"leechers"`
	Current  bool   `json:"current"`
}

// Helper is a cooperating server and what it is doing for the site.
type Helper struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	Address string `json:"address"`
	// Fetched: it holds the whole site version (a helper serves while it fetches).
	Fetched bool `json:"fetched"`
}

// DNSAnswer is what DNS currently answers for a name.
type DNSAnswer struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
	TTL   int      `json:"ttl"`
}

// TrackerStats are the tracker's counts.
type TrackerStats struct {
	Connections int `json:"connections"`
	Peers       int `json:"peers"`
	Swarms      int `json:"swarms"`
}

// Config configures the dashboard handler.
type Config struct {
	// Snapshot returns the current state.
	Snapshot func() Snapshot
	// Token, if set, admits requests that carry it (?token= or "Authorization: Bearer"). Without a token
	// only requests from this machine are admitted (Local): the dashboard is off the public path.
	Token string
	// Local reports whether a request comes from this machine. The server that mounts the handler knows
	// which proxies it trusts to name a client; nil admits only a loopback TCP peer that sent no forwarding
	// headers (one that did relays someone else).
	Local func(r *http.Request) bool
	// Interval is how often the stream sends a snapshot (default 1 s).
	Interval time.Duration
	Logger   *slog.Logger
}

// pathStatic holds the dashboard's files.
const pathStatic = swarmapi.PathDashboard + "/"

// Handler serves the dashboard, its files and the status API.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	closed chan struct{}
	once   sync.Once
}

var _ http.Handler = (*Handler)(nil)

// New returns the dashboard handler.
func New(cfg Config) *Handler {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Local == nil {
		cfg.Local = loopbackPeer
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), closed: make(chan struct{})}
	files, _ := fs.Sub(static, "static")
	h.mux.HandleFunc("GET "+swarmapi.PathDashboard, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	})
	h.mux.Handle("GET "+pathStatic, http.StripPrefix(pathStatic, http.FileServerFS(files)))
	h.mux.HandleFunc("GET "+swarmapi.PathStatus, h.serveStatus)
	h.mux.HandleFunc("GET "+swarmapi.PathStatusStream, h.serveStream)
	return h
}

// Routes lists the paths to mount the handler at.
func Routes() []string {
	return []string{swarmapi.PathDashboard, pathStatic, swarmapi.PathStatus, swarmapi.PathStatusStream}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.allowed(w, r) {
		http.Error(w, "swarmgate: the dashboard needs a token (or a request from loopback)", http.StatusForbidden)
		return
	}
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
	h.mux.ServeHTTP(w, r)
}

// Close ends the open status streams, so that a server shutting down need not wait for them.
func (h *Handler) Close() { h.once.Do(func() { close(h.closed) }) }

// tokenCookie carries the token to the page's own requests (its script, style and stream) once the page was
// opened with ?token=.
const tokenCookie = "swarmgate_dashboard"

func (h *Handler) allowed(w http.ResponseWriter, r *http.Request) bool {
	if tok, ok := h.token(r); ok {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: swarmapi.Prefix, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		return true
	}
	return h.cfg.Local(r)
}

// HasToken reports whether the request carries the dashboard's token (in the query, an Authorization
// header or the dashboard's cookie). Without a configured token it is always false.
func (h *Handler) HasToken(r *http.Request) bool {
	_, ok := h.token(r)
	return ok
}

// token returns the request's token when it is the configured one.
func (h *Handler) token(r *http.Request) (string, bool) {
	if h.cfg.Token == "" {
		return "", false
	}
	tok := r.URL.Query().Get("token")
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok = b
	}
	if c, err := r.Cookie(tokenCookie); tok == "" && err == nil {
		tok = c.Value
	}
	return tok, tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(h.cfg.Token)) == 1
}

// loopbackPeer is Config.Local's default: the TCP peer is a loopback address and relays nobody.
func loopbackPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return false
	}
	for _, k := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if r.Header.Get(k) != "" {
			return false
		}
	}
	return true
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(h.cfg.Snapshot()); err != nil {
		h.cfg.Logger.Debug("web: writing status", slog.Any("err", err))
	}
}

// serveStream sends a snapshot every Interval as a Server-Sent Event until the client goes.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	for {
		b, err := json.Marshal(h.cfg.Snapshot())
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.closed:
			return
		case <-tick.C:
		}
	}
}
