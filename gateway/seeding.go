package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// startSeeder creates the gateway's WebRTC seeder. It reaches the embedded tracker over a loopback listener
// of its own (plain ws://, whatever TLS the public listener has), or announces to Config.TrackerURL when
// browsers are sent to another tracker.
func (s *Server) startSeeder() error {
	trackerURL := s.cfg.Visitors.TrackerURL
	if trackerURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("gateway: seeder's tracker listener: %w", err)
		}
		s.internalLn = ln
		trackerURL = "ws://" + ln.Addr().String() + swarmapi.PathAnnounce
	}
	scfg := seeder.Config{
		TrackerURLs: []string{trackerURL},
		DataDir:     s.cfg.DataDir + "/seeder",
		ListenAddr:  s.cfg.Net.PeerListen,
		Logger:      s.log,
	}
	if s.cfg.Net.Uplink != nil {
		scfg.Shape = s.cfg.Net.Uplink.Conn
	}
	sd, err := seeder.New(scfg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err) // Close closes internalLn
	}
	s.seeder = sd
	s.counters.seeder = func() int64 { return sd.Stats().UploadedBytes }
	return nil
}

// runSeeder serves the embedded tracker to the seeder and runs the seeder until ctx ends.
func (s *Server) runSeeder(ctx context.Context) {
	if s.internalLn != nil {
		hs := &http.Server{Handler: s.tracker, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		go func() { _ = hs.Serve(s.internalLn) }()
		defer hs.Close()
	}
	for _, v := range s.cat.Versions() {
		s.seed(v)
	}
	if err := s.seeder.Run(ctx); err != nil {
		s.log.Error("gateway: seeder", slog.Any("err", err))
	}
}

// seed starts seeding a version.
func (s *Server) seed(v *catalog.Version) {
	if err := s.seeder.AddTorrent(v.MetaInfo(nil, nil), v.Dir); err != nil {
		s.log.Error("gateway: seeding version", slog.String("version", v.Name), slog.Any("err", err))
	}
}
