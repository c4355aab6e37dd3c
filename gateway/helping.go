package gateway

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/webseed"
)

// This file is the seam between the server and the helper role it carries in a federation (package webseed):
// the server gives the helper its seeder, its load, its listeners and its own names; the helper gets the
// requests and federation messages that are its own.

// startHelping creates the helper role, sharing the server's seeder. Its own settings come from
// Config.Helping; what it shares with the server is filled in here.
func (s *Server) startHelping() error {
	var cfg webseed.Config
	if s.cfg.Helping != nil {
		cfg = *s.cfg.Helping
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(s.cfg.DataDir, "helping")
	}
	if cfg.ACME != nil && cfg.ACME.Dir == "" {
		acme := *cfg.ACME
		acme.Dir = filepath.Join(s.cfg.DataDir, "certs")
		cfg.ACME = &acme
	}
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	cfg.Seeder = s.seeder
	cfg.InCrowd = func() bool { return s.mon.Status().State != monitor.Normal }
	cfg.Load = func() float64 { st := s.mon.Status(); return st.Load.Rate / st.Threshold }
	cfg.Federation, cfg.Self, cfg.Client = s.coord.cfg.Members, s.coord.self, s.coord.client
	cfg.PeerListen = s.cfg.Net.PeerListen
	cfg.Addrs = s.listenAddrs
	cfg.OwnSite = s.ownSite
	cfg.OwnVersion = func(name string) bool { _, err := s.cat.Version(name); return err == nil }
	h, err := webseed.New(cfg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	s.helping = h
	return nil
}

// listenAddrs is where steered clients reach this server: plain HTTP on Listen, and HTTPS on TLSListen (or
// on Listen with Config.TLS, which then serves no plain HTTP).
func (s *Server) listenAddrs() webseed.Addrs {
	var a webseed.Addrs
	switch {
	case s.tlsLn != nil:
		a.HTTP, a.TLS = s.ln.Addr(), s.tlsLn.Addr()
	case s.cfg.Net.TLS != nil:
		a.HTTP, a.TLS = s.ln.Addr(), s.ln.Addr()
	default:
		a.HTTP = s.ln.Addr()
	}
	return a
}

// ownSite reports whether host (normalised by webseed.BareHost) is one of this server's own names: its site
// (Config.SiteName), the sites the federation file lists for it, or its URL's host. Requests for them go to
// the gateway's own handlers, and it never helps another member with them.
func (s *Server) ownSite(host string) bool {
	if host == "" {
		return false
	}
	if host == webseed.BareHost(s.cfg.Site.Name) {
		return true
	}
	return s.coord != nil && (s.coord.self.HasSite(host) || host == s.coord.self.Host())
}

// ServeHTTP routes the helper role's requests (webseed paths of versions it helps with, and sites it helps
// with by Host) to it, and everything else, the gateway's own site first, to the gateway's own handlers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.helping != nil && s.helping.Handles(r) {
		s.helping.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}
