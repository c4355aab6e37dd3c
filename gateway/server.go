package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	steer "github.com/swarmgate/swarmgate/gateway/dns"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/gateway/seeder"
	"github.com/swarmgate/swarmgate/gateway/uplink"
	"github.com/swarmgate/swarmgate/js"
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/web"
	"github.com/swarmgate/swarmgate/webseed"
	"github.com/swarmgate/swarmgate/webseed/certs"
)

// Paths the gateway serves itself; everything else goes to the origin.
const (
	PathPrefix   = "/.swarm/"
	PathAnnounce = PathPrefix + "announce"
	PathMetrics  = PathPrefix + "metrics"
	PathManifest = PathPrefix + "manifest.json"
	PathLoader   = PathPrefix + "loader.js"
	PathSeed     = PathPrefix + "seed/"    // BEP 19 webseed root: PathSeed + version name + "/" + file path
	PathStats    = PathPrefix + "stats"    // engines report bytes by source here
	PathWebseeds = PathPrefix + "webseeds" // ?version=: a version's webseeds now, for engines still loading
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

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to serve HTTP on, e.g. "127.0.0.1:8000"; port 0 picks a free port.
	Listen string
	// Origin is the site's origin server. Without one the gateway serves only its /.swarm/ paths.
	Origin *url.URL
	// DataDir holds the gateway's state: stored assets and site versions.
	DataDir string
	// Root, if set, is the site's document root: its files are stored and swarmed from the start, so the
	// very first visitors already get heavy assets from the swarm.
	Root string
	// PublicPaths are path prefixes whose responses are public even when requests carry cookies.
	PublicPaths []string
	// NoUploads makes every visitor's engine download-only (the operator's global switch).
	NoUploads bool
	// UploadRatio caps one page view's uploads at this multiple of what it holds (default 2);
	// UploadCeiling at this many bytes (default 50 MB).
	UploadRatio   float64
	UploadCeiling int64
	// IgnoreGPC lets browsers that send Global Privacy Control or Do Not Track upload; by default their
	// engines are download-only.
	IgnoreGPC bool
	// NoServiceWorker keeps the loader from installing swarmgate's service worker (for sites with their own:
	// the loader never displaces one, but a site may prefer not to race it).
	NoServiceWorker bool
	// Inject adds the loader's script tag to proxied HTML pages, for sites that cannot edit their pages.
	Inject bool
	// MinSwarmSize is the smallest asset fetched from the swarm; smaller ones load over HTTP.
	MinSwarmSize int64
	// MicroCacheTTL is how long the origin shield reuses a public page that has no freshness lifetime of its
	// own, during a crowd and its ending (DefaultMicroCacheTTL); negative: never.
	MicroCacheTTL time.Duration
	// Fallback is how long a browser waits without progress from peers before taking pieces over HTTP.
	Fallback time.Duration
	// ICEServers are given to browsers for WebRTC (STUN/TURN URLs). Only the operator's own servers belong
	// here: a third-party STUN server learns who visits. When empty, browsers get the gateway's own STUN
	// server if STUNListen is set, else none (peers on one network still connect).
	ICEServers []ICEServer
	// PeerListen, if set, is where the gateway's seeder accepts ordinary BitTorrent peers (TCP and uTP), e.g.
	// helpers fetching a site version; empty: browsers over WebRTC only.
	PeerListen string
	// STUNListen is the UDP address of the gateway's own STUN server, e.g. ":3478"; empty runs none.
	STUNListen string
	// TrackerURL, if set, is the tracker browsers announce to instead of the gateway's own (ws:// or wss://).
	TrackerURL string
	// TLS, if set, makes the gateway serve HTTPS (browsers need a secure context for service workers, and
	// for WebRTC on anything but localhost): on Listen, or on TLSListen when that is set. The site is then
	// served over HTTPS, and helpers recruited for it must serve it so too.
	TLS *tls.Config
	// Uplink, if set, shapes everything the gateway sends (HTTP responses, and the seeder's pieces to
	// browsers and BitTorrent peers) to the uplink's rate, as this machine's link would. During a crowd,
	// helpers still fetching the site go first on it.
	Uplink *uplink.Uplink
	// TLSListen, if set, is a TCP address to serve HTTPS on beside plain HTTP on Listen. A helper needs it
	// (or TLS on Listen) to help sites served over HTTPS. The certificate is chosen by the name the client
	// asks for (SNI): the helper's own certificate for a site it helps (FederationConfig.ACME), else TLS's.
	TLSListen string
	// SiteName is the site's host name, as the dashboard and DNS know it.
	SiteName string
	// DashboardToken, if set, opens the dashboard (/.swarm/dashboard) to requests that carry it; without it
	// the dashboard answers only requests from this machine (a loopback client, see TrustedProxies).
	DashboardToken string
	// TrustedProxies are the operator's own front proxies (load balancers, TLS terminators). A request from
	// one is taken to come from the right-most address of its X-Forwarded-For (or, without that header,
	// Forwarded) that is not itself a trusted proxy; a request from any other peer comes from that peer,
	// whatever it claims. A trusted proxy that names no client makes the client unknown: such requests are
	// not from this machine (for the dashboard), and all share that proxy's address for the caps per
	// client. Trusted proxies are exempt from the cap on connections per address.
	TrustedProxies []netip.Prefix
	// MaxConnsPerClient bounds the connections one address (an IPv6 /64) holds open on Listen and TLSListen
	// (DefaultMaxConnsPerClient); negative: no bound. Trusted proxies are exempt.
	MaxConnsPerClient int
	// IdleTimeout is how long a kept-alive connection waits for its next request (DefaultIdleTimeout);
	// ProgressTimeout how long a request's body or response may make no progress (DefaultProgressTimeout).
	IdleTimeout     time.Duration
	ProgressTimeout time.Duration
	// Federation, if set, makes the gateway a federation member: it recruits helpers in a crowd and helps
	// others when it has spare capacity.
	Federation *FederationConfig
	// DNS, if set, publishes the site's addresses (SiteName): the origin's (the federation file's addresses
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

// ICEServer is a STUN or TURN server for browsers, in the shape of the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Server is a gateway: the reverse proxy in front of a site's origin, with the tracker, the manifest, the
// webseed and the browser code under /.swarm/.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tracker  *tracker.Tracker
	cat      *catalog.Catalog
	assets   *js.Assets
	gzMu     sync.Mutex
	gzAssets map[string][]byte // gzipped bundles by name, made on first request
	comp     compression       // the site's responses compressed toward clients (compress.go)
	ranges   rangeLearner      // assets fetched only by Range, fetched whole in the background (cache_ranges.go)
	proxy    http.Handler
	mux      *http.ServeMux
	ln       net.Listener
	tlsLn    net.Listener // TLSListen's; nil without one
	counters counters
	reports  *reports // engines' stats reports, credited against their manifests' tokens
	mon      *monitor.Monitor
	seeder   *seeder.Seeder
	coord    *coordinator    // nil outside a federation
	helping  *webseed.Helper // nil unless in a federation with a BitTorrent listener
	certs    *certs.Manager  // the helper's certificates for sites it helps; nil without FederationConfig.ACME
	// runCtx ends when Run does; wg counts the goroutines Run waits for besides its loops.
	runCtx context.Context
	wg     sync.WaitGroup
	// internalLn serves the embedded tracker to the seeder on loopback.
	internalLn net.Listener
	dash       *web.Handler
	stun       *turn.Server
	stunPort   int

	learnMu  sync.Mutex
	learning map[string]time.Time

	kick chan struct{} // asks the build loop for a new version
}

// New builds a server and binds its listener, so that Addr is known before Run.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tracker.Logger == nil {
		cfg.Tracker.Logger = cfg.Logger
	}
	if cfg.Monitor.Logger == nil {
		cfg.Monitor.Logger = cfg.Logger
	}
	if cfg.MinSwarmSize <= 0 {
		cfg.MinSwarmSize = catalog.DefaultMinSize
	}
	if cfg.Fallback <= 0 {
		cfg.Fallback = DefaultFallback
	}
	if cfg.MicroCacheTTL == 0 {
		cfg.MicroCacheTTL = DefaultMicroCacheTTL
	}
	if cfg.UploadRatio <= 0 {
		cfg.UploadRatio = DefaultUploadRatio
	}
	if cfg.UploadCeiling <= 0 {
		cfg.UploadCeiling = DefaultUploadCeiling
	}
	if cfg.MaxConnsPerClient == 0 {
		cfg.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ProgressTimeout <= 0 {
		cfg.ProgressTimeout = DefaultProgressTimeout
	}
	if cfg.DataDir == "" {
		return nil, errors.New("gateway: no data directory configured")
	}
	assets, err := js.Load()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cat, err := catalog.Open(catalog.Config{Dir: cfg.DataDir + "/catalog", MinSize: cfg.MinSwarmSize, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, cat: cat, assets: assets,
		mux: http.NewServeMux(), reports: newReports(), learning: make(map[string]time.Time), kick: make(chan struct{}, 1),
	}
	if cfg.Tracker.Client == nil {
		cfg.Tracker.Client = s.clientIP // the caps per client, behind the operator's proxies too
	}
	s.tracker = tracker.New(cfg.Tracker)
	if cfg.DNS != nil && cfg.Monitor.EndingHold <= 0 {
		cfg.Monitor.EndingHold = cfg.DNS.TTL() // withdrawn records must expire before helpers are released
	}
	onChange := cfg.Monitor.OnChange
	cfg.Monitor.OnChange = func(from, to monitor.State) {
		if onChange != nil {
			onChange(from, to)
		}
		if s.coord != nil {
			s.coord.onState(from, to)
		}
	}
	s.mon = monitor.New(cfg.Monitor)
	s.runCtx = context.Background()
	if cfg.Root != "" {
		if err := s.preseed(cfg.Root); err != nil {
			return nil, err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.tracker, &s.counters, monitorCollector{s.mon}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("GET "+PathAnnounce, s.tracker)
	s.mux.Handle("GET "+PathMetrics, s.operatorOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	s.mux.HandleFunc("GET "+PathManifest, s.serveManifest)
	s.mux.HandleFunc("GET "+PathWebseeds, s.serveWebseeds)
	s.mux.HandleFunc("GET "+PathSeed+"{version}/{path...}", s.serveSeed)
	s.mux.HandleFunc("OPTIONS "+PathSeed+"{version}/{path...}", s.serveSeed)
	s.mux.HandleFunc("GET "+PathPrefix+"{file}", s.serveAsset)
	s.mux.HandleFunc("POST "+PathStats, s.serveStats)
	s.dash = web.New(web.Config{Snapshot: s.Snapshot, Token: cfg.DashboardToken, Local: s.localClient, Logger: cfg.Logger})
	for _, p := range web.Routes() {
		s.mux.Handle("GET "+p, s.dash)
	}
	if cfg.Origin != nil {
		s.proxy = s.newProxy(cfg.Origin)
		s.mux.HandleFunc("/", s.serveProxy)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen %s: %w", cfg.Listen, err)
	}
	ln = newLimitListener(ln, cfg.MaxConnsPerClient, cfg.TrustedProxies, s.log)
	if cfg.Uplink != nil {
		ln = cfg.Uplink.Listener(ln)
	}
	s.ln = ln
	closeListeners := func() {
		ln.Close()
		if s.tlsLn != nil {
			s.tlsLn.Close()
		}
	}
	if cfg.TLSListen != "" {
		if s.tlsLn, err = net.Listen("tcp", cfg.TLSListen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("gateway: listen %s: %w", cfg.TLSListen, err)
		}
		s.tlsLn = newLimitListener(s.tlsLn, cfg.MaxConnsPerClient, cfg.TrustedProxies, s.log)
		if cfg.Uplink != nil {
			s.tlsLn = cfg.Uplink.Listener(s.tlsLn)
		}
	}
	if cfg.STUNListen != "" {
		srv, addr, err := startSTUN(cfg.STUNListen, s.log)
		if err != nil {
			closeListeners()
			return nil, err
		}
		s.stun, s.stunPort = srv, addr.Port
	}
	if err := s.startSeeder(); err != nil {
		closeListeners()
		if s.stun != nil {
			s.stun.Close()
		}
		return nil, err
	}
	if cfg.Federation != nil {
		err := s.joinFederation(*cfg.Federation)
		if err == nil && cfg.PeerListen != "" {
			err = s.startHelping()
		}
		if err != nil {
			closeListeners()
			_ = s.seeder.Close()
			if s.stun != nil {
				s.stun.Close()
			}
			return nil, err
		}
	}
	return s, nil
}

// TLSAddr is the address of the HTTPS listener of Config.TLSListen, nil without one.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// serverTLS is the TLS configuration HTTPS is served with: Config.TLS, with the certificates of helped
// sites chosen first by SNI.
func (s *Server) serverTLS() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLS != nil {
		cfg = s.cfg.TLS.Clone()
	}
	if s.certs == nil {
		return cfg
	}
	own := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.helpingCert(hello.ServerName); c != nil {
			return c, nil
		}
		if own != nil {
			return own(hello)
		}
		return nil, nil // crypto/tls falls back to cfg.Certificates
	}
	return cfg
}

// STUNPort is the UDP port of the gateway's STUN server, 0 when it runs none.
func (s *Server) STUNPort() int { return s.stunPort }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Tracker is the embedded tracker.
func (s *Server) Tracker() *tracker.Tracker { return s.tracker }

// Catalog is the site's catalogue of swarmable content.
func (s *Server) Catalog() *catalog.Catalog { return s.cat }

// Bytes returns the bytes served so far, by source.
func (s *Server) Bytes() ByteCounts { return s.counters.snapshot() }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// kickBuild asks the build loop for a new version soon.
func (s *Server) kickBuild() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// buildLoop builds a new site version shortly after content changes, batching a page load's assets.
func (s *Server) buildLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(buildDelay):
		}
		v, dropped, err := s.cat.Build()
		if err != nil {
			s.log.Error("gateway: building site version", slog.Any("err", err))
			continue
		}
		for _, d := range dropped {
			if err := s.seeder.RemoveTorrent(d.InfoHash); err != nil {
				s.log.Warn("gateway: unseeding old version", slog.String("version", d.Name), slog.Any("err", err))
			}
		}
		if v != nil && !s.seeder.Seeding(v.InfoHash) {
			s.seed(v)
		}
	}
}

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	// ReadTimeout and WriteTimeout bound a request until its handler starts; from there the deadlines follow
	// progress (withProgressDeadlines), so that downloads and status streams live while they move.
	hs := &http.Server{Handler: withProgressDeadlines(s, s.cfg.ProgressTimeout), ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout: s.cfg.ProgressTimeout, WriteTimeout: s.cfg.ProgressTimeout, IdleTimeout: s.cfg.IdleTimeout,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	var wg sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(ctx)
	s.runCtx = loopCtx
	loops := []func(context.Context){s.runSeeder, s.buildLoop, s.monitorLoop}
	if s.coord != nil {
		loops = append(loops, s.coord.run)
	}
	if r, ok := s.cfg.DNS.(interface{ Run(context.Context) error }); ok { // the embedded DNS server
		loops = append(loops, func(ctx context.Context) {
			if err := r.Run(ctx); err != nil {
				s.log.Error("gateway: DNS server", slog.Any("err", err))
			}
		})
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(loopCtx)
		}()
	}
	// Everything the server started stops before Run returns, however it returns.
	defer func() {
		stopLoops()
		wg.Wait()
		s.wg.Wait()
		if s.helping != nil {
			_ = s.helping.Close()
		}
		if s.certs != nil {
			s.certs.Close()
		}
		_ = s.seeder.Close()
		_ = s.tracker.Close()
		s.dash.Close()
		if s.stun != nil {
			_ = s.stun.Close()
		}
	}()
	listeners := []net.Listener{s.ln}
	switch {
	case s.tlsLn != nil:
		listeners = append(listeners, tls.NewListener(s.tlsLn, s.serverTLS()))
	case s.cfg.TLS != nil:
		listeners[0] = tls.NewListener(s.ln, s.serverTLS())
	}
	errc := make(chan error, len(listeners))
	for _, ln := range listeners {
		go func() { errc <- hs.Serve(ln) }()
	}
	attrs := []any{slog.String("addr", s.ln.Addr().String())}
	if s.tlsLn != nil {
		attrs = append(attrs, slog.String("https", s.tlsLn.Addr().String()))
	}
	s.log.Info("gateway: serving", attrs...)
	select {
	case err := <-errc:
		_ = hs.Close()
		for range len(listeners) - 1 {
			<-errc
		}
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	// Long-lived requests (tracker sockets, status streams) end first, so that shutdown need not wait on them.
	_ = s.tracker.Close()
	s.dash.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	for range listeners {
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}
