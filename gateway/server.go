package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmgate/swarmgate/tracker"
)

// Paths served by every gateway.
const (
	PathPrefix   = "/.swarm/"
	PathAnnounce = PathPrefix + "announce"
	PathMetrics  = "/metrics"
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to serve HTTP on, e.g. "127.0.0.1:8000"; port 0 picks a free port.
	Listen string
	// Tracker configures the embedded WebSocket tracker.
	Tracker tracker.Config
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a gateway: one HTTP listener serving the tracker and metrics.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tracker *tracker.Tracker
	mux     *http.ServeMux
	ln      net.Listener
}

// New builds a server and binds its listener, so that Addr is known before Run.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tracker.Logger == nil {
		cfg.Tracker.Logger = cfg.Logger
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tracker: tracker.New(cfg.Tracker), mux: http.NewServeMux()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.tracker, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle(PathAnnounce, s.tracker)
	s.mux.Handle(PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen %s: %w", cfg.Listen, err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Tracker is the embedded tracker.
func (s *Server) Tracker() *tracker.Tracker { return s.tracker }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	s.log.Info("gateway: serving", slog.String("addr", s.ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	_ = s.tracker.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}
