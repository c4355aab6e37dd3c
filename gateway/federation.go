package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// joinFederation sets up both sides of cooperation: the coordinator that recruits helpers for this site, and
// the federation endpoint that takes help requests, readiness reports and releases from other members.
func (s *Server) joinFederation(cfg FederationConfig) error {
	self, err := cfg.Members.Self(cfg.Key)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	v, err := federation.NewVerifier(federation.VerifierConfig{Federation: cfg.Members, Self: self.Name})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	c, err := newCoordinator(s, s.cfg.Site.Name, s.cfg.Net.TLS != nil, cfg, v, s.cfg.DNS, s.log)
	if err != nil {
		return err
	}
	s.coord = c
	if s.cfg.Net.Uplink != nil {
		s.cfg.Net.Uplink.SetPriority(c.favoured)
	}
	s.mux.Handle("POST "+federation.Path, federation.Handler(v, cfg.Key, s.log, s.onFederation))
	s.mux.HandleFunc("GET "+swarmapi.PathJob+"{infohash}", s.serveJob)
	return nil
}

// onFederation dispatches a verified message from another member.
func (s *Server) onFederation(ctx context.Context, env *federation.Envelope) (federation.Message, error) {
	switch m := env.Message.(type) {
	case *federation.HelpRequest:
		if s.helping == nil {
			return &federation.Decline{Site: m.Site, InfoHash: m.InfoHash, Reason: "not helping: no BitTorrent listener (--peer-listen)"}, nil
		}
		return s.helping.Help(ctx, env.From, m)
	case *federation.Ready:
		return nil, s.coord.ready(ctx, env.From, m)
	case *federation.Release:
		if s.helping == nil {
			return nil, nil
		}
		return nil, s.helping.ReleaseFrom(env.From, m)
	case *federation.Decline:
		s.coord.declined(env.From, m)
		return nil, nil
	case *federation.Challenge:
		return nil, s.coord.challenge(ctx, env.From, m)
	}
	return nil, fmt.Errorf("gateway: %w: %s", federation.ErrUnexpectedKind, env.Kind)
}

func (s *Server) serveJob(w http.ResponseWriter, r *http.Request) {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.PathValue("infohash")); err != nil {
		http.Error(w, "swarmgate: bad infohash", http.StatusBadRequest)
		return
	}
	for _, v := range s.cat.Versions() {
		if v.InfoHash != ih {
			continue
		}
		job := swarmapi.Job{Version: v.Name, InfoBytes: v.InfoBytes, Files: map[string]swarmapi.JobFile{}}
		if port := s.seeder.ListenPort(); port != 0 && s.cfg.Net.PeerListen != "" {
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			job.Peers = []string{net.JoinHostPort(host, strconv.Itoa(port))}
		}
		job.Peers = append(job.Peers, s.coord.helperPeers(v)...)
		job.First = s.pages.first(v, time.Now())
		for _, f := range v.Files {
			job.Files[f.Path] = swarmapi.JobFile{Type: f.ContentType, SHA256: fmt.Sprintf("%x", f.SHA256), Header: f.Header}
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(job); err != nil {
			s.log.Debug("gateway: writing job", slog.Any("err", err))
		}
		return
	}
	http.NotFound(w, r)
}

// crowdState and currentVersion are what the coordinator sees of the server (siteServer).
func (s *Server) crowdState() monitor.State        { return s.mon.Status().State }
func (s *Server) currentVersion() *catalog.Version { return s.cat.Current() }
