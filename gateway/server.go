package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/js"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/uplink"
	"github.com/swarmgate/swarmgate/web"
	"github.com/swarmgate/swarmgate/webseed"
)

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
	// runCtx ends when Close begins; wg counts the background work (shield revalidations, whole fetches of
	// assets learned from ranges, copies of proxied responses into the catalog) that Close waits for.
	runCtx  context.Context
	stopRun context.CancelFunc
	bgMu    sync.Mutex // orders background's Add before Close's Wait
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	comp      compression  // the site's responses compressed toward clients (compress.go)
	ranges    rangeLearner // assets fetched only by Range, fetched whole in the background (cache_ranges.go)
	pages     pageOrder    // the files the site's pages need first, for helpers' jobs (pageorder.go)
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tracker.Logger == nil {
		cfg.Tracker.Logger = cfg.Logger
	}
	if cfg.Monitor.Logger == nil {
		cfg.Monitor.Logger = cfg.Logger
	}
	assets, err := js.Load()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cat, err := catalog.Open(catalog.Config{Dir: cfg.DataDir + "/catalog", MinSize: cfg.Site.MinSwarmSize, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, cat: cat, assets: assets,
		mux: http.NewServeMux(), reports: newReports(), learning: make(map[string]time.Time), kick: make(chan struct{}, 1),
	}
	s.runCtx, s.stopRun = context.WithCancel(context.Background())
	if cfg.Tracker.Client == nil {
		cfg.Tracker.Client = s.clientIP // the caps per client, behind the operator's proxies too
	}
	s.tracker = tracker.New(cfg.Tracker)
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
	if cfg.Site.Root != "" {
		if err := s.preseed(cfg.Site.Root); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.tracker, &s.counters, monitorCollector{s.mon}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("GET "+swarmapi.PathAnnounce, s.tracker)
	s.mux.Handle("GET "+swarmapi.PathMetrics, s.operatorOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	s.mux.HandleFunc("GET "+swarmapi.PathManifest, s.serveManifest)
	s.mux.HandleFunc("GET "+swarmapi.PathWebseeds, s.serveWebseeds)
	s.mux.HandleFunc("GET "+swarmapi.PathSeed+"{version}/{path...}", s.serveSeed)
	s.mux.HandleFunc("GET "+swarmapi.PathHead+"{version}/{pieces}", s.serveHead)
	s.mux.HandleFunc("OPTIONS "+swarmapi.PathSeed+"{version}/{path...}", s.serveSeed)
	s.mux.HandleFunc("GET "+swarmapi.Prefix+"{file}", s.serveAsset)
	s.mux.HandleFunc("POST "+swarmapi.PathStats, s.serveStats)
	s.dash = web.New(web.Config{Snapshot: s.Snapshot, Token: cfg.DashboardToken, Local: s.localClient, Logger: cfg.Logger})
	for _, p := range web.Routes() {
		s.mux.Handle("GET "+p, s.dash)
	}
	if cfg.Site.Origin != nil {
		s.proxy = s.newProxy(cfg.Site.Origin)
		s.mux.HandleFunc("/", s.serveProxy)
	}
	if err := s.listen(); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.start(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// listen binds the server's listeners: HTTP on Net.Listen, HTTPS on Net.TLSListen, STUN on Net.STUNListen.
func (s *Server) listen() error {
	cfg := s.cfg
	ln, err := net.Listen("tcp", cfg.Net.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", cfg.Net.Listen, err)
	}
	ln = newLimitListener(ln, cfg.Clients.MaxConnsPerClient, cfg.Clients.TrustedProxies, s.log)
	if cfg.Net.Uplink != nil {
		ln = cfg.Net.Uplink.Listener(ln)
	}
	s.ln = ln
	if cfg.Net.TLSListen != "" {
		tlsLn, err := net.Listen("tcp", cfg.Net.TLSListen)
		if err != nil {
			return fmt.Errorf("gateway: listen %s: %w", cfg.Net.TLSListen, err)
		}
		s.tlsLn = newLimitListener(tlsLn, cfg.Clients.MaxConnsPerClient, cfg.Clients.TrustedProxies, s.log)
		if cfg.Net.Uplink != nil {
			s.tlsLn = cfg.Net.Uplink.Listener(s.tlsLn)
		}
	}
	if cfg.Net.STUNListen != "" {
		srv, addr, err := startSTUN(cfg.Net.STUNListen, s.log)
		if err != nil {
			return err
		}
		s.stun, s.stunPort = srv, addr.Port
	}
	return nil
}

// start creates the seeder and, in a federation, the coordinator and the helper role.
func (s *Server) start() error {
	if err := s.startSeeder(); err != nil {
		return err
	}
	if s.cfg.Federation == nil {
		return nil
	}
	if err := s.joinFederation(*s.cfg.Federation); err != nil {
		return err
	}
	if s.cfg.Net.PeerListen != "" {
		return s.startHelping()
	}
	return nil
}

// background runs f in a goroutine that Close waits for. Once Close has begun (a handler that outlived
// Run's shutdown), f still runs, on a done runCtx so that it ends at once, but is not waited for.
func (s *Server) background(f func()) {
	s.bgMu.Lock()
	tracked := s.runCtx.Err() == nil
	if tracked {
		s.wg.Add(1)
	}
	s.bgMu.Unlock()
	go func() {
		if tracked {
			defer s.wg.Done()
		}
		f()
	}()
}

// Close releases everything New acquired, whether New finished or failed part-way and whether or not Run
// ran: the helper role, the seeder, the tracker's sockets, the dashboard's streams, the STUN server and the
// listeners. Run calls it as it returns, after its loops have ended; New calls it when it fails. Calling it
// again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.bgMu.Lock()
		s.stopRun()
		s.bgMu.Unlock()
		s.wg.Wait()
		var errs []error
		if s.helping != nil {
			errs = append(errs, s.helping.Close())
		}
		if s.seeder != nil {
			errs = append(errs, s.seeder.Close())
		}
		if s.tracker != nil {
			errs = append(errs, s.tracker.Close())
		}
		if s.dash != nil {
			s.dash.Close()
		}
		if s.stun != nil {
			errs = append(errs, s.stun.Close())
		}
		// Run's HTTP servers close the listeners they served; closing one again only says so.
		for _, ln := range []net.Listener{s.ln, s.tlsLn, s.internalLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
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
	if s.cfg.Net.TLS != nil {
		cfg = s.cfg.Net.TLS.Clone()
	}
	if s.helping == nil {
		return cfg
	}
	own := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.helping.Certificate(hello.ServerName); c != nil {
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
	hs := &http.Server{Handler: withCriticalFirst(withProgressDeadlines(s, s.cfg.Clients.ProgressTimeout)), ConnContext: uplink.ConnContext,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.cfg.Clients.ProgressTimeout, WriteTimeout: s.cfg.Clients.ProgressTimeout, IdleTimeout: s.cfg.Clients.IdleTimeout,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	var wg sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(ctx)
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
		if err := s.Close(); err != nil {
			s.log.Warn("gateway: closing", slog.Any("err", err))
		}
	}()
	listeners := []net.Listener{s.ln}
	switch {
	case s.tlsLn != nil:
		listeners = append(listeners, tls.NewListener(s.tlsLn, s.serverTLS()))
	case s.cfg.Net.TLS != nil:
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
