package gateway

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/webseed"
	"github.com/swarmgate/swarmgate/webseed/certs"
	"github.com/swarmgate/swarmgate/webseed/federation"
)

// maxJobBody bounds a job description fetched from a member (it carries 20 bytes per piece).
const maxJobBody = 16 << 20

// startHelping creates the helping role: the webseed helper that fetches other members' site versions over
// BitTorrent and serves them, sharing the gateway's seeder.
func (s *Server) startHelping() error {
	h, err := webseed.New(webseed.Config{
		DataDir: filepath.Join(s.cfg.DataDir, "helping"),
		Seeder:  s.seeder,
		InCrowd: func() bool { return s.mon.Status().State != monitor.Normal },
		Load:    func() float64 { st := s.mon.Status(); return st.Load.Rate / st.Threshold },
		Logger:  s.log,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if acme := s.coord.cfg.ACME; acme != nil {
		cfg := *acme
		if cfg.Dir == "" {
			cfg.Dir = filepath.Join(s.cfg.DataDir, "certs")
		}
		if cfg.Logger == nil {
			cfg.Logger = s.log
		}
		if s.certs, err = certs.New(cfg); err != nil {
			_ = h.Close()
			return fmt.Errorf("gateway: %w", err)
		}
	}
	s.helping = h
	return nil
}

// servesHTTPS reports whether this server can help sites served over HTTPS: it gets certificates and has
// an HTTPS listener.
func (s *Server) servesHTTPS() bool { return s.certs != nil && (s.tlsLn != nil || s.cfg.TLS != nil) }

// helpingCert is the certificate for a TLS handshake that asks for name (SNI) when this server helps the
// site of that name and holds a certificate for it, else nil.
func (s *Server) helpingCert(name string) *tls.Certificate {
	if s.helping == nil || s.certs == nil || name == "" || !s.helping.Serves(name) {
		return nil
	}
	return s.certs.Get(name)
}

// help answers a member's help request: it fetches the job description from the member, hands the job to
// the helper (which refuses when this server lacks capacity or has a crowd of its own), and reports Ready
// once the version is fetched and verified.
func (s *Server) help(ctx context.Context, from string, r *federation.HelpRequest) (federation.Message, error) {
	decline := func(reason string) (federation.Message, error) {
		return &federation.Decline{Site: r.Site, InfoHash: r.InfoHash, Reason: reason}, nil
	}
	if s.helping == nil {
		return decline("not helping: no BitTorrent listener (--peer-listen)")
	}
	if r.TLS && !s.servesHTTPS() {
		return decline(federation.ReasonNoTLS)
	}
	member, ok := s.coord.cfg.Members.Member(from)
	if !ok {
		return nil, fmt.Errorf("gateway: help request from %s: %w", from, federation.ErrUnknownMember)
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return nil, fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	job, err := s.fetchJob(ctx, member.URL, ih)
	if err != nil {
		return decline("cannot fetch the job: " + err.Error())
	}
	origin, err := url.Parse(r.Origin)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	wj := webseed.Job{Site: r.Site, Version: r.Version, InfoHash: ih, InfoBytes: job.InfoBytes, Origin: origin,
		Peers: job.Peers, Webseeds: r.Webseeds, Trackers: []string{r.Tracker}, Files: map[string]webseed.FileMeta{}}
	for p, f := range job.Files {
		fm := webseed.FileMeta{ContentType: f.Type}
		if b, err := hex.DecodeString(f.SHA256); err == nil && len(b) == 32 {
			copy(fm.SHA256[:], b)
		}
		wj.Files[p] = fm
	}
	switch err := s.helping.Accept(wj); {
	case errors.Is(err, webseed.ErrInCrowd):
		return decline(federation.ReasonInCrowd)
	case errors.Is(err, webseed.ErrNoCapacity):
		return decline(federation.ReasonNoCapacity)
	case err != nil:
		return decline(err.Error())
	}
	challenge, _ := hex.DecodeString(r.Challenge)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reportReady(member, r, ih, challenge, job)
	}()
	return &federation.Accept{InfoHash: r.InfoHash, Capacity: max(1, int(s.helping.Spare()*float64(s.coord.cfg.HelpCapacity))),
		PeerAddress: s.peerAddress()}, nil
}

// peerAddress is where other members' seeders reach this one's BitTorrent listener: its listen address when
// that names one, else the first address the federation lists for this member; empty when it has neither.
func (s *Server) peerAddress() string {
	port := s.seeder.ListenPort()
	if port == 0 {
		return ""
	}
	host, _, _ := net.SplitHostPort(s.cfg.PeerListen)
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		if len(s.coord.self.Addresses) == 0 {
			return ""
		}
		ip = s.coord.self.Addresses[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()
}

// fetchJob gets a version's job description from the member that asks for help, and checks it against the
// signed infohash.
func (s *Server) fetchJob(ctx context.Context, memberURL string, ih metainfo.Hash) (*Job, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, memberURL+PathJob+ih.HexString(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("job %s: HTTP %d", ih.HexString(), resp.StatusCode)
	}
	var job Job
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJobBody)).Decode(&job); err != nil {
		return nil, fmt.Errorf("job %s: %w", ih.HexString(), err)
	}
	if metainfo.HashBytes(job.InfoBytes) != ih {
		return nil, fmt.Errorf("job %s: info dictionary does not match the infohash", ih.HexString())
	}
	return &job, nil
}

// reportReady waits for the fetch and, for a site served over HTTPS, for this server's certificate for the
// site's name, then tells the member where this server serves its site. If either fails it declines.
func (s *Server) reportReady(member federation.Member, r *federation.HelpRequest, ih metainfo.Hash, challenge []byte, job *Job) {
	ctx := s.runCtx
	start := time.Now()
	var certErr error
	var certTook time.Duration
	certDone := make(chan struct{})
	if r.TLS {
		go func() {
			defer close(certDone)
			_, certErr = s.certs.Obtain(ctx, r.Site, s.publishVia(member))
			certTook = time.Since(start)
		}()
	} else {
		close(certDone)
	}
	st, err := s.helping.Wait(ctx, ih)
	<-certDone
	decline := func(reason string) {
		_ = s.coord.client.Send(ctx, member.URL, federation.KindDecline,
			&federation.Decline{Site: r.Site, InfoHash: r.InfoHash, Reason: reason}, nil)
	}
	if err != nil || st.Phase != webseed.PhaseReady {
		s.log.Warn("gateway: help failed", slog.String("site", r.Site), slog.Any("err", errors.Join(err, st.Err)))
		decline("fetch failed")
		return
	}
	if certErr != nil {
		s.log.Warn("gateway: no certificate for the helped site", slog.String("site", r.Site), slog.Any("err", certErr))
		_ = s.helping.Release(ih)
		decline("no certificate for " + r.Site)
		return
	}
	var info metainfo.Info
	if err := bencode.Unmarshal(job.InfoBytes, &info); err != nil {
		return
	}
	piece, err := catalog.ReadPiece(&info, filepath.Join(s.cfg.DataDir, "helping", ih.HexString()),
		federation.ChallengePiece(challenge, info.NumPieces()))
	if err != nil {
		s.log.Error("gateway: reading proof piece", slog.Any("err", err))
		return
	}
	addr, err := s.servingAddr(s.ln)
	if err != nil {
		s.log.Error("gateway: cannot report ready", slog.Any("err", err))
		return
	}
	ready := &federation.Ready{Site: r.Site, InfoHash: r.InfoHash, Address: addr, Proof: federation.ProofOf(challenge, piece)}
	if r.TLS {
		ln := s.tlsLn
		if ln == nil {
			ln = s.ln // Config.TLS on Listen
		}
		if ready.TLSAddress, err = s.servingAddr(ln); err != nil {
			s.log.Error("gateway: cannot report ready", slog.Any("err", err))
			return
		}
	}
	if err := s.coord.client.Send(ctx, member.URL, federation.KindReady, ready, nil); err != nil {
		s.log.Warn("gateway: ready refused", slog.String("member", member.Name), slog.Any("err", err))
		return
	}
	attrs := []any{slog.String("site", r.Site), slog.String("for", member.Name), slog.String("addr", addr.String()),
		slog.Duration("fetch", st.ReadyAt.Sub(st.Accepted)), slog.Duration("to_ready", time.Since(start))}
	if r.TLS {
		attrs = append(attrs, slog.String("https", ready.TLSAddress.String()), slog.Duration("certificate", certTook))
	}
	s.log.Info("gateway: helping", attrs...)
}

// publishVia has member, the site's gateway that recruited this server, publish and remove the ACME DNS-01
// challenges of this server's certificate for the site.
func (s *Server) publishVia(member federation.Member) certs.Publish {
	return func(ctx context.Context, name, value string, present bool) error {
		return s.coord.client.Send(ctx, member.URL, federation.KindChallenge,
			&federation.Challenge{Site: name, Value: value, Remove: !present}, nil)
	}
}

// servingAddr is where steered clients reach this server on listener ln: its address, or, when that is on
// every interface, the federation file's first address for this server with ln's port.
func (s *Server) servingAddr(ln net.Listener) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		return ap, err
	}
	if !ap.Addr().IsUnspecified() {
		return ap, nil
	}
	if len(s.coord.self.Addresses) == 0 {
		return ap, fmt.Errorf("gateway: listening on every interface and the federation file gives no address for %s", s.coord.self.Name)
	}
	return netip.AddrPortFrom(s.coord.self.Addresses[0], ap.Port()), nil
}

// release ends help for a member's site.
func (s *Server) release(from string, r *federation.Release) error {
	if s.helping == nil {
		return nil
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	s.log.Info("gateway: released", slog.String("site", r.Site), slog.String("by", from))
	return s.helping.Release(ih)
}

// ServeHTTP routes requests for a site this server helps (by Host) to the helper, and everything else to the
// gateway's own handlers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.helping != nil {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if s.helping.Serves(host) || (len(r.URL.Path) > len(PathSeed) && s.helpingSeed(r.URL.Path)) {
			s.helping.ServeHTTP(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// helpingSeed reports whether a webseed path names a version this server helps with (not one of its own).
func (s *Server) helpingSeed(p string) bool {
	rest, ok := strings.CutPrefix(p, PathSeed)
	if !ok {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			_, err := s.cat.Version(rest[:i])
			return err != nil
		}
	}
	return false
}
