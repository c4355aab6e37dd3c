package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/uplink"
	"github.com/swarmgate/swarmgate/webseed"
)

// Defaults for Config.
const (
	DefaultFallback = 1500 * time.Millisecond
	// DefaultUploadRatio and DefaultUploadCeiling cap one page view's uploads: twice what it holds
	// keeps a swarm healthy while no visitor gives much more than it took; the ceiling bounds a long visit.
	DefaultUploadRatio   = 2
	DefaultUploadCeiling = 50 << 20
	// buildDelay batches the resources learned from one page load into one new version.
	buildDelay = 300 * time.Millisecond
)

// ErrBadConfig is wrapped by Validate's errors.
var ErrBadConfig = errors.New("bad configuration")

// Config configures a Server. Zero fields take defaults (Validate fills them in); DataDir is required.
type Config struct {
	// Net is where the server listens, and how it sends.
	Net NetConfig
	// Site is the site the gateway fronts, and what of it goes to the swarm.
	Site SiteConfig
	// Visitors is the policy for visitors' engines: what they share and how they fall back.
	Visitors VisitorConfig
	// Clients bounds what one client may hold of the server, and says who the operator's proxies are.
	Clients ClientConfig
	// DataDir holds the gateway's state: stored assets and site versions.
	DataDir string
	// DashboardToken, if set, opens the dashboard (/.swarm/dashboard) to requests that carry it; without it
	// the dashboard answers only requests from this machine (a loopback client, see Clients.TrustedProxies).
	DashboardToken string
	// Federation, if set, makes the gateway a federation member: it recruits helpers in a crowd and, with
	// a BitTorrent listener (Net.PeerListen), helps others when it has spare capacity.
	Federation *FederationConfig
	// Helping holds the helper role's own settings (capacity, ACME for HTTPS sites, limits), for a federation
	// member with Net.PeerListen; nil takes webseed's defaults. The server fills in what the role shares
	// with it: the seeder, its load, its listeners, its own names, the federation identity.
	Helping *webseed.Config
	// DNS, if set, publishes the site's addresses (Site.Name): the origin's (the federation file's addresses
	// of this member), plus ready helpers during a crowd. A publisher with a Run method (the embedded
	// server) is run by the gateway.
	DNS steer.Publisher
	// Monitor configures flash-crowd detection on the site's request rate and origin health.
	Monitor monitor.Config
	// Tracker configures the embedded WebSocket tracker.
	Tracker tracker.Config
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// NetConfig is where a Server listens, and how it sends.
type NetConfig struct {
	// Listen is the TCP address to serve HTTP on, e.g. "127.0.0.1:8000"; port 0 picks a free port.
	Listen string
	// TLS, if set, makes the gateway serve HTTPS (browsers need a secure context for service workers, and
	// for WebRTC on anything but localhost): on Listen, or on TLSListen when that is set. The site is then
	// served over HTTPS, and helpers recruited for it must serve it so too.
	TLS *tls.Config
	// TLSListen, if set, is a TCP address to serve HTTPS on beside plain HTTP on Listen. A helper needs it
	// (or TLS on Listen) to help sites served over HTTPS. The certificate is chosen by the name the client
	// asks for (SNI): the helper's own certificate for a site it helps (Helping.ACME), else TLS's.
	TLSListen string
	// PeerListen, if set, is where the gateway's seeder accepts ordinary BitTorrent peers (TCP and uTP), e.g.
	// helpers fetching a site version; empty: browsers over WebRTC only.
	PeerListen string
	// STUNListen is the UDP address of the gateway's own STUN server, e.g. ":3478"; empty runs none.
	STUNListen string
	// Uplink, if set, shapes everything the gateway sends (HTTP responses, and the seeder's pieces to
	// browsers and BitTorrent peers) to the uplink's rate, as this machine's link would. During a crowd,
	// helpers still fetching the site go first on it.
	Uplink *uplink.Uplink
}

// SiteConfig is the site a gateway fronts.
type SiteConfig struct {
	// Origin is the site's origin server. Without one the gateway serves only its /.swarm/ paths.
	Origin *url.URL
	// Name is the site's host name, as the dashboard and DNS know it.
	Name string
	// Root, if set, is the site's document root: its files are stored and swarmed from the start, so the
	// very first visitors already get heavy assets from the swarm.
	Root string
	// PublicPaths are path prefixes whose responses are public even when requests carry cookies.
	PublicPaths []string
	// Inject adds the loader's script tag to proxied HTML pages, for sites that cannot edit their pages.
	Inject bool
	// MinSwarmSize is the smallest asset fetched from the swarm; smaller ones load over HTTP. Default
	// catalog.DefaultMinSize.
	MinSwarmSize int64
	// MicroCacheTTL is how long the origin shield reuses a public page that has no freshness lifetime of its
	// own, during a crowd and its ending (DefaultMicroCacheTTL); negative: never.
	MicroCacheTTL time.Duration
}

// P2PMode is when the gateway sends visitors' browsers to the swarm for a page's heavy assets.
type P2PMode string

const (
	// P2PAuto: only while P2P pays, in the crowd and ending states. In normal times pages pass unchanged,
	// so the browser fetches every asset at once as it would without swarmgate.
	P2PAuto P2PMode = "auto"
	// P2PAlways: in every state (for tests, and for sites that want the swarm warm at all times).
	P2PAlways P2PMode = "always"
	// P2POff: never; the gateway is a caching proxy with crowd detection and helpers.
	P2POff P2PMode = "off"
)

// VisitorConfig is the operator's policy for visitors' engines (see docs/privacy.md).
type VisitorConfig struct {
	// P2P is when pages are rewritten for the swarm (P2PAuto by default).
	P2P P2PMode
	// NoUploads makes every visitor's engine download-only (the operator's global switch).
	NoUploads bool
	// UploadRatio caps one page view's uploads at this multiple of what it holds (DefaultUploadRatio);
	// UploadCeiling at this many bytes (DefaultUploadCeiling).
	UploadRatio   float64
	UploadCeiling int64
	// IgnoreGPC lets browsers that send Global Privacy Control or Do Not Track upload; by default their
	// engines are download-only.
	IgnoreGPC bool
	// NoServiceWorker keeps the loader from installing swarmgate's service worker (for sites with their own:
	// the loader never displaces one, but a site may prefer not to race it).
	NoServiceWorker bool
	// Fallback is how long a browser waits without progress from peers before taking pieces over HTTP
	// (DefaultFallback).
	Fallback time.Duration
	// ICEServers are given to browsers for WebRTC (STUN/TURN URLs). Only the operator's own servers belong
	// here: a third-party STUN server learns who visits. When empty, browsers get the gateway's own STUN
	// server if Net.STUNListen is set, else none (peers on one network still connect).
	ICEServers []swarmapi.ICEServer
	// TrackerURL, if set, is the tracker browsers announce to instead of the gateway's own (ws:// or wss://).
	TrackerURL string
}

// ClientConfig bounds what one client may hold of a Server.
type ClientConfig struct {
	// TrustedProxies are the operator's own front proxies (load balancers, TLS terminators). A request from
	// one is taken to come from the right-most address of its X-Forwarded-For (or, without that header,
	// Forwarded) that is not itself a trusted proxy; a request from any other peer comes from that peer,
	// whatever it claims. A trusted proxy that names no client makes the client unknown: such requests are
	// not from this machine (for the dashboard), and all share that proxy's address for the caps per
	// client. Trusted proxies are exempt from the cap on connections per address.
	TrustedProxies []netip.Prefix
	// MaxConnsPerClient bounds the connections one address (an IPv6 /64) holds open on Net.Listen and
	// Net.TLSListen (DefaultMaxConnsPerClient); -1: no bound. Trusted proxies are exempt.
	MaxConnsPerClient int
	// IdleTimeout is how long a kept-alive connection waits for its next request (DefaultIdleTimeout);
	// ProgressTimeout how long a request's body or response may make no progress (DefaultProgressTimeout).
	IdleTimeout     time.Duration
	ProgressTimeout time.Duration
}

// Validate checks the configuration and fills in the defaults of its zero fields. New calls it; a caller
// that builds a Config from user input (the CLI) calls it first, to report every mistake before starting
// anything. Errors wrap ErrBadConfig and name the field.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gateway: %w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.DataDir == "":
		return bad("DataDir is required")
	case c.Site.Origin != nil && ((c.Site.Origin.Scheme != "http" && c.Site.Origin.Scheme != "https") || c.Site.Origin.Host == ""):
		return bad("Site.Origin %q: want an http:// or https:// URL with a host", c.Site.Origin)
	case c.Site.MinSwarmSize < 0:
		return bad("Site.MinSwarmSize %d is negative", c.Site.MinSwarmSize)
	case c.Visitors.Fallback < 0:
		return bad("Visitors.Fallback %v is negative", c.Visitors.Fallback)
	case c.Visitors.UploadRatio < 0 || c.Visitors.UploadCeiling < 0:
		return bad("Visitors.UploadRatio and UploadCeiling must be positive")
	case c.Clients.MaxConnsPerClient < -1:
		return bad("Clients.MaxConnsPerClient %d: want a positive number, or -1 for no bound", c.Clients.MaxConnsPerClient)
	case c.Clients.IdleTimeout < 0 || c.Clients.ProgressTimeout < 0:
		return bad("Clients.IdleTimeout and ProgressTimeout must be positive")
	case c.Visitors.P2P != "" && c.Visitors.P2P != P2PAuto && c.Visitors.P2P != P2PAlways && c.Visitors.P2P != P2POff:
		return bad("Visitors.P2P %q: want %q, %q or %q", c.Visitors.P2P, P2PAuto, P2PAlways, P2POff)
	case c.Tracker.MaxSocketsPerClient < -1 || c.Tracker.MaxSwarmsPerClient < -1:
		return bad("Tracker.MaxSocketsPerClient and MaxSwarmsPerClient: want positive numbers, or -1 for no bound")
	}
	if err := c.Monitor.Validate(); err != nil {
		return fmt.Errorf("gateway: %w: %w", ErrBadConfig, err)
	}
	if c.DNS != nil && c.Monitor.EndingHold <= 0 {
		c.Monitor.EndingHold = c.DNS.TTL() // withdrawn records must expire before helpers are released
	}
	if c.Site.MinSwarmSize == 0 {
		c.Site.MinSwarmSize = catalog.DefaultMinSize
	}
	if c.Site.MicroCacheTTL == 0 {
		c.Site.MicroCacheTTL = DefaultMicroCacheTTL
	}
	if c.Visitors.P2P == "" {
		c.Visitors.P2P = P2PAuto
	}
	if c.Visitors.Fallback == 0 {
		c.Visitors.Fallback = DefaultFallback
	}
	if c.Visitors.UploadRatio == 0 {
		c.Visitors.UploadRatio = DefaultUploadRatio
	}
	if c.Visitors.UploadCeiling == 0 {
		c.Visitors.UploadCeiling = DefaultUploadCeiling
	}
	if c.Clients.MaxConnsPerClient == 0 {
		c.Clients.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if c.Clients.IdleTimeout == 0 {
		c.Clients.IdleTimeout = DefaultIdleTimeout
	}
	if c.Clients.ProgressTimeout == 0 {
		c.Clients.ProgressTimeout = DefaultProgressTimeout
	}
	return nil
}
