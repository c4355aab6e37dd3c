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

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/webseed"
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
	if err := s.checkHelpRequest(member, r, time.Now()); err != nil {
		return nil, err
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return nil, fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	job, err := s.fetchJob(ctx, member, ih)
	if err != nil {
		return decline("cannot fetch the job: " + err.Error())
	}
	origin, err := url.Parse(r.Origin)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	wj := webseed.Job{Site: r.Site, Version: r.Version, InfoHash: ih, InfoBytes: job.InfoBytes, Origin: origin,
		Peers: s.jobPeers(ctx, member, job.Peers), Webseeds: r.Webseeds, Trackers: []string{r.Tracker},
		Files: map[string]webseed.FileMeta{}, Requester: member.Name, Until: r.Until, AllowPrivate: member.AllowPrivate}
	for p, f := range job.Files {
		fm := webseed.FileMeta{ContentType: f.Type, Header: f.Header}
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
	case errors.Is(err, webseed.ErrTaken):
		return nil, fmt.Errorf("gateway: help request from %s: %w: %w", from, federation.ErrForbidden, err)
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

// maxHelpLease is the furthest ahead a help request's Until may be: the lease a site asks for at most
// (DefaultHelpLease), plus the clock skew the federation tolerates between members.
const maxHelpLease = DefaultHelpLease + federation.MaxSkew

// checkHelpRequest checks that member may ask this server for help with r, and that r names only what
// belongs to member: the site must be one the federation file lists for it, a host name, and none of this
// server's own names; the origin, webseed and tracker URLs must point at the member's URL host or its listed
// addresses (loopback and private ones only with its allowPrivate); and Until must lie ahead, within
// maxHelpLease. Refusals wrap federation.ErrForbidden (403), a bad Until federation.ErrBadBody (400).
func (s *Server) checkHelpRequest(member federation.Member, r *federation.HelpRequest, now time.Time) error {
	forbid := func(format string, args ...any) error {
		return fmt.Errorf("gateway: help request from %s: %w: %s", member.Name, federation.ErrForbidden, fmt.Sprintf(format, args...))
	}
	site := bareHost(r.Site)
	switch _, ipErr := netip.ParseAddr(site); {
	case ipErr == nil:
		return forbid("site %q is an IP address, not a site's name", r.Site)
	case !member.HasSite(site):
		return forbid("site %q is not among the member's sites in the federation file", r.Site)
	case s.ownSite(site):
		return forbid("site %q is this server's own", r.Site)
	}
	urls := append([]string{r.Origin, r.Tracker}, r.Webseeds...)
	for _, u := range urls {
		if err := member.CheckURL(u); err != nil {
			return fmt.Errorf("gateway: help request: %w", err)
		}
	}
	if !r.Until.After(now) || r.Until.After(now.Add(maxHelpLease)) {
		return fmt.Errorf("gateway: help request from %s: until %s: %w: want a time within %v from now",
			member.Name, r.Until.Format(time.RFC3339), federation.ErrBadBody, maxHelpLease)
	}
	return nil
}

// bareHost normalises a site name or Host header: lower-case, without port, brackets or a trailing dot.
func bareHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// ownSite reports whether host (normalised by bareHost) is one of this server's own names: its site
// (Config.SiteName), the sites the federation file lists for it, or its URL's host. Requests for them go to
// the gateway's own handlers, and it never helps another member with them.
func (s *Server) ownSite(host string) bool {
	if host == "" {
		return false
	}
	if host == bareHost(s.cfg.SiteName) {
		return true
	}
	return s.coord != nil && (s.coord.self.HasSite(host) || host == s.coord.self.Host())
}

// jobPeers keeps the BitTorrent peers of a member's job that this server may dial: the addresses the
// federation file lists for a member (the site's gateway, and helpers recruited before this one), each one
// its owner may use, and the member's URL host (resolved, if a name, to addresses the member may use). Any
// other address is dropped: a job is not signed, and a member could otherwise send this server's seeder to
// any host and port.
func (s *Server) jobPeers(ctx context.Context, member federation.Member, peers []string) []string {
	var out []string
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil || port == "0" {
			s.log.Warn("gateway: job peer dropped", slog.String("member", member.Name), slog.String("peer", p))
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if s.listedPeer(member, a) {
				out = append(out, net.JoinHostPort(a.Unmap().String(), port))
			} else {
				s.log.Warn("gateway: job peer dropped: not a listed address", slog.String("member", member.Name), slog.String("peer", p))
			}
			continue
		}
		if strings.ToLower(host) != member.Host() {
			s.log.Warn("gateway: job peer dropped: not the member's host", slog.String("member", member.Name), slog.String("peer", p))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, peerResolveTimeout)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			s.log.Warn("gateway: job peer dropped", slog.String("member", member.Name), slog.String("peer", p), slog.Any("err", err))
			continue
		}
		for _, a := range ips {
			if member.MayReach(a) {
				out = append(out, net.JoinHostPort(a.Unmap().String(), port))
			}
		}
	}
	return out
}

// peerResolveTimeout bounds resolving a member's URL host for its job's peers; a resolver answers in
// milliseconds, and the help request waits for it.
const peerResolveTimeout = 5 * time.Second

// listedPeer reports whether a job of member may send this server's seeder to a: the member's URL host, or an
// address the federation file lists for some member, which that member may use.
func (s *Server) listedPeer(member federation.Member, a netip.Addr) bool {
	a = a.Unmap()
	if a.String() == member.Host() {
		return member.MayReach(a)
	}
	for _, m := range s.coord.cfg.Members.Members() {
		if m.Owns(a) {
			return m.MayReach(a)
		}
	}
	return false
}

// jobFetchTimeout bounds fetching a job description (the help request waits for it; askTimeout on the
// asking side allows for it).
const jobFetchTimeout = 10 * time.Second

// fetchJob gets a version's job description from the member that asks for help, and checks it against the
// signed infohash. It follows no redirect, and connects only to addresses the member may use.
func (s *Server) fetchJob(ctx context.Context, member federation.Member, ih metainfo.Hash) (*swarmapi.Job, error) {
	ctx, cancel := context.WithTimeout(federation.WithPrivate(ctx, member.AllowPrivate), jobFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, member.URL+swarmapi.PathJob+ih.HexString(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.coord.members.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("job %s: HTTP %d", ih.HexString(), resp.StatusCode)
	}
	var job swarmapi.Job
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
func (s *Server) reportReady(member federation.Member, r *federation.HelpRequest, ih metainfo.Hash, challenge []byte, job *swarmapi.Job) {
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

// release ends help for a member's site, when that member asked for it.
func (s *Server) release(from string, r *federation.Release) error {
	if s.helping == nil {
		return nil
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return fmt.Errorf("gateway: %w: %w", federation.ErrBadBody, err)
	}
	switch err := s.helping.ReleaseBy(from, ih); {
	case errors.Is(err, webseed.ErrNotRequester):
		return fmt.Errorf("gateway: release from %s: %w: %w", from, federation.ErrForbidden, err)
	case errors.Is(err, webseed.ErrUnknownJob):
		return nil // released already, or expired
	case err != nil:
		return fmt.Errorf("gateway: release from %s: %w", from, err)
	}
	s.log.Info("gateway: released", slog.String("site", r.Site), slog.String("by", from))
	return nil
}

// ServeHTTP routes webseed requests for a version this server helps with (not one of its own), and
// requests for a site it helps with (by Host) that is none of its own names (ownSite), to the helper;
// everything else, the gateway's own site first, to the gateway's own handlers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.helping != nil {
		if len(r.URL.Path) > len(swarmapi.PathSeed) && s.helpingSeed(r.URL.Path) {
			s.helping.ServeHTTP(w, r)
			return
		}
		if host := bareHost(r.Host); !s.ownSite(host) && s.helping.Serves(host) {
			s.helping.ServeHTTP(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// helpingSeed reports whether a webseed path names a version this server helps with (not one of its own).
func (s *Server) helpingSeed(p string) bool {
	rest, ok := strings.CutPrefix(p, swarmapi.PathSeed)
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
