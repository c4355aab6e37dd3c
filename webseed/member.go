package webseed

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
	"slices"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/swarmapi"
)

// This file is the helper's side of a federation: it answers members' help requests (fetching the job from
// the member, accepting it, reporting Ready with a proof once the version is fetched and, for an HTTPS
// site, a certificate obtained), takes releases, and routes steered clients' requests.

// Limits of the federation side.
const (
	// maxJobBody bounds a job description fetched from a member (it carries 20 bytes per piece).
	maxJobBody = 16 << 20
	// jobFetchTimeout bounds fetching a job description (the help request waits for it; the asking side's
	// timeout allows for it).
	jobFetchTimeout = 10 * time.Second
	// peerResolveTimeout bounds resolving a member's URL host for its job's peers; a resolver answers in
	// milliseconds, and the help request waits for it.
	peerResolveTimeout = 5 * time.Second
	// MaxLease is the longest lease a help request may ask for (HelpRequest.Until), less the clock skew the
	// federation tolerates: a site's gateway asks for at most this and renews half-way.
	MaxLease = 30 * time.Minute
	// maxHelpLease is the furthest ahead a help request's Until may be.
	maxHelpLease = MaxLease + federation.MaxSkew
	// DefaultCapacity is the load, in requests per second, a helper offers a site it helps when it is idle.
	DefaultCapacity = 100
)

// startMember sets up the federation side when Config.Federation is set: the certificate manager for
// helping HTTPS sites, and the client that fetches jobs.
func (h *Helper) startMember() error {
	c := &h.cfg
	if c.Federation == nil {
		return nil
	}
	if c.Client == nil || c.Self.Name == "" || c.Addrs == nil {
		return fmt.Errorf("webseed: Config.Federation needs Self, Client and Addrs: %w", ErrBadConfig)
	}
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.OwnSite == nil {
		c.OwnSite = func(string) bool { return false }
	}
	h.members = federation.NewHTTPClient(jobFetchTimeout)
	if c.ACME != nil {
		acme := *c.ACME
		if acme.Logger == nil {
			acme.Logger = h.log
		}
		m, err := certs.New(acme)
		if err != nil {
			return fmt.Errorf("webseed: %w", err)
		}
		h.certs = m
	}
	return nil
}

// servesHTTPS reports whether this helper can help sites served over HTTPS: it gets certificates and its
// server has an HTTPS listener.
func (h *Helper) servesHTTPS() bool {
	return h.certs != nil && h.cfg.Addrs != nil && h.cfg.Addrs().TLS != nil
}

// Certificate is the certificate for a TLS handshake that asks for name (SNI) when this helper serves the
// site of that name and holds a certificate for it, else nil: the server's GetCertificate asks it first.
func (h *Helper) Certificate(name string) *tls.Certificate {
	if h.certs == nil || name == "" || !h.Serves(name) {
		return nil
	}
	return h.certs.Get(name)
}

// Help answers a member's help request: it fetches the job description from the member, accepts the job
// (refused when this server lacks capacity or has a crowd of its own), and reports Ready once the version
// is fetched and verified. from is the verified sender.
func (h *Helper) Help(ctx context.Context, from string, r *federation.HelpRequest) (federation.Message, error) {
	decline := func(reason string) (federation.Message, error) {
		return &federation.Decline{Site: r.Site, InfoHash: r.InfoHash, Reason: reason}, nil
	}
	if h.cfg.Federation == nil {
		return decline("not helping")
	}
	if r.TLS && !h.servesHTTPS() {
		return decline(federation.ReasonNoTLS)
	}
	member, ok := h.cfg.Federation.Member(from)
	if !ok {
		return nil, fmt.Errorf("webseed: help request from %s: %w", from, federation.ErrUnknownMember)
	}
	if err := h.checkHelpRequest(member, r, time.Now()); err != nil {
		return nil, err
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return nil, fmt.Errorf("webseed: %w: %w", federation.ErrBadBody, err)
	}
	job, err := h.fetchJob(ctx, member, ih)
	if err != nil {
		return decline("cannot fetch the job: " + err.Error())
	}
	origin, err := url.Parse(r.Origin)
	if err != nil {
		return nil, fmt.Errorf("webseed: %w: %w", federation.ErrBadBody, err)
	}
	sitePeers, fellows, fellowSeeds := h.jobPeers(ctx, member, job.Peers)
	wj := Assignment{Site: r.Site, Version: r.Version, InfoHash: ih, InfoBytes: job.InfoBytes, Origin: origin,
		Peers: sitePeers, Fellows: fellows, FellowWebseeds: fellowSeeds, Webseeds: r.Webseeds, Trackers: []string{r.Tracker},
		Files: map[string]FileMeta{}, First: job.First, Requester: member.Name, Until: r.Until, AllowPrivate: member.AllowPrivate}
	for p, f := range job.Files {
		fm := FileMeta{ContentType: f.Type, Header: f.Header}
		if b, err := hex.DecodeString(f.SHA256); err == nil && len(b) == 32 {
			copy(fm.SHA256[:], b)
		}
		wj.Files[p] = fm
	}
	switch err := h.Accept(wj); {
	case errors.Is(err, ErrInCrowd):
		return decline(federation.ReasonInCrowd)
	case errors.Is(err, ErrNoCapacity):
		return decline(federation.ReasonNoCapacity)
	case errors.Is(err, ErrTaken):
		return nil, fmt.Errorf("webseed: help request from %s: %w: %w", from, federation.ErrForbidden, err)
	case err != nil:
		return decline(err.Error())
	}
	challenge, _ := hex.DecodeString(r.Challenge)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.reportReady(member, r, ih, challenge, job)
	}()
	return &federation.Accept{InfoHash: r.InfoHash, Capacity: max(1, int(h.Spare()*float64(h.cfg.Capacity))),
		PeerAddress: h.peerAddress()}, nil
}

// peerAddress is where other members' seeders reach this one's BitTorrent listener: its listen address when
// that names one, else the first address the federation lists for this member; empty when it has neither.
func (h *Helper) peerAddress() string {
	port := h.cfg.Seeder.ListenPort()
	if port == 0 {
		return ""
	}
	host, _, _ := net.SplitHostPort(h.cfg.PeerListen)
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		if len(h.cfg.Self.Addresses) == 0 {
			return ""
		}
		ip = h.cfg.Self.Addresses[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()
}

// checkHelpRequest checks that member may ask this server for help with r, and that r names only what
// belongs to member: the site must be one the federation file lists for it, a host name, and none of this
// server's own names; the origin, webseed and tracker URLs must point at the member's URL host or its listed
// addresses (loopback and private ones only with its allowPrivate); and Until must lie ahead, within
// maxHelpLease. Refusals wrap federation.ErrForbidden (403), a bad Until federation.ErrBadBody (400).
func (h *Helper) checkHelpRequest(member federation.Member, r *federation.HelpRequest, now time.Time) error {
	forbid := func(format string, args ...any) error {
		return fmt.Errorf("webseed: help request from %s: %w: %s", member.Name, federation.ErrForbidden, fmt.Sprintf(format, args...))
	}
	site := BareHost(r.Site)
	switch _, ipErr := netip.ParseAddr(site); {
	case ipErr == nil:
		return forbid("site %q is an IP address, not a site's name", r.Site)
	case !member.HasSite(site):
		return forbid("site %q is not among the member's sites in the federation file", r.Site)
	case h.cfg.OwnSite(site):
		return forbid("site %q is this server's own", r.Site)
	}
	urls := append([]string{r.Origin, r.Tracker}, r.Webseeds...)
	for _, u := range urls {
		if err := member.CheckURL(u); err != nil {
			return fmt.Errorf("webseed: help request: %w", err)
		}
	}
	if !r.Until.After(now) || r.Until.After(now.Add(maxHelpLease)) {
		return fmt.Errorf("webseed: help request from %s: until %s: %w: want a time within %v from now",
			member.Name, r.Until.Format(time.RFC3339), federation.ErrBadBody, maxHelpLease)
	}
	return nil
}

// BareHost normalises a site name or Host header: lower-case, without port, brackets or a trailing dot.
func BareHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// jobPeers keeps the BitTorrent peers of a member's job that this server may dial: the addresses the
// federation file lists for a member (the site's gateway, and helpers recruited before this one), each one
// its owner may use, and the member's URL host (resolved, if a name, to addresses the member may use). Any
// other address is dropped: a job is not signed, and a member could otherwise send this server's seeder to
// any host and port. It splits what it keeps into the requesting member's own peers (site) and those of
// other members (fellows: the site's other helpers), which the fetch asks first to spare the site's link,
// with the webseed each of those members serves at its URL in the federation file (fellowSeeds).
func (h *Helper) jobPeers(ctx context.Context, member federation.Member, peers []string) (site, fellows, fellowSeeds []string) {
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil || port == "0" {
			h.log.Warn("webseed: job peer dropped", slog.String("member", member.Name), slog.String("peer", p))
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil {
			switch owner, ok := h.peerOwner(member, a); {
			case !ok:
				h.log.Warn("webseed: job peer dropped: not a listed address", slog.String("member", member.Name), slog.String("peer", p))
			case owner.Name == member.Name:
				site = append(site, net.JoinHostPort(a.Unmap().String(), port))
			case owner.Name != h.cfg.Self.Name: // this server itself, listed again when re-recruited: no use
				fellows = append(fellows, net.JoinHostPort(a.Unmap().String(), port))
				if u := strings.TrimSuffix(owner.URL, "/") + swarmapi.PathSeed; !slices.Contains(fellowSeeds, u) {
					fellowSeeds = append(fellowSeeds, u)
				}
			}
			continue
		}
		if strings.ToLower(host) != member.Host() {
			h.log.Warn("webseed: job peer dropped: not the member's host", slog.String("member", member.Name), slog.String("peer", p))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, peerResolveTimeout)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			h.log.Warn("webseed: job peer dropped", slog.String("member", member.Name), slog.String("peer", p), slog.Any("err", err))
			continue
		}
		for _, a := range ips {
			if member.MayReach(a) {
				site = append(site, net.JoinHostPort(a.Unmap().String(), port))
			}
		}
	}
	return site, fellows, fellowSeeds
}

// peerOwner is the member whose listener a job of member may send this server's seeder to at a: member
// itself for its URL host, or the member the federation file lists a under, if that member may use it.
// ok is false for any other address.
func (h *Helper) peerOwner(member federation.Member, a netip.Addr) (owner federation.Member, ok bool) {
	a = a.Unmap()
	if a.String() == member.Host() {
		return member, member.MayReach(a)
	}
	for _, m := range h.cfg.Federation.Members() {
		if m.Owns(a) {
			return m, m.MayReach(a)
		}
	}
	return federation.Member{}, false
}

// fetchJob gets a version's job description from the member that asks for help, and checks it against the
// signed infohash. It follows no redirect, and connects only to addresses the member may use.
func (h *Helper) fetchJob(ctx context.Context, member federation.Member, ih metainfo.Hash) (*swarmapi.Job, error) {
	ctx, cancel := context.WithTimeout(federation.WithPrivate(ctx, member.AllowPrivate), jobFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, member.URL+swarmapi.PathJob+ih.HexString(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.members.Do(req)
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

// readyTries bounds the tries of one Ready message (sendReady), readyRetry apart.
const (
	readyTries = 5
	readyRetry = time.Second
)

// reportReady waits until the version is served (its fetch has begun, and what clients ask for goes first)
// and holds the piece the challenge names and, for a site served over HTTPS, for this server's certificate
// for the site's name, then tells the member where this server serves its site. If either fails it declines.
// It does not wait for the whole fetch: a helper is of use from its first seconds (the paper's helpers report
// only once they hold the site, and a crowd's first plain clients then go to the site's full link). Once the
// fetch is done it reports again, Fetched; if the fetch fails it declines.
func (h *Helper) reportReady(member federation.Member, r *federation.HelpRequest, ih metainfo.Hash, challenge []byte, job *swarmapi.Job) {
	ctx := h.memberCtx
	start := time.Now()
	var certErr error
	var certTook time.Duration
	certDone := make(chan struct{})
	if r.TLS {
		go func() {
			defer close(certDone)
			_, certErr = h.certs.Obtain(ctx, r.Site, h.publishVia(member))
			certTook = time.Since(start)
		}()
	} else {
		close(certDone)
	}
	var info metainfo.Info
	if err := bencode.Unmarshal(job.InfoBytes, &info); err != nil {
		return
	}
	proofPiece := federation.ChallengePiece(challenge, info.NumPieces())
	st, err := h.WaitServed(ctx, ih, proofPiece)
	<-certDone
	decline := func(reason string) {
		_ = h.cfg.Client.Send(ctx, member.URL, federation.KindDecline,
			&federation.Decline{Site: r.Site, InfoHash: r.InfoHash, Reason: reason}, nil)
	}
	if err != nil || st.Phase == PhaseFailed {
		h.log.Warn("webseed: help failed", slog.String("site", r.Site), slog.Any("err", errors.Join(err, st.Err)))
		decline("fetch failed")
		return
	}
	if certErr != nil {
		h.log.Warn("webseed: no certificate for the helped site", slog.String("site", r.Site), slog.Any("err", certErr))
		_ = h.Release(ih)
		decline("no certificate for " + r.Site)
		return
	}
	piece, err := seeder.ReadPiece(&info, filepath.Join(h.cfg.DataDir, ih.HexString()), proofPiece)
	if err != nil {
		h.log.Error("webseed: reading proof piece", slog.Any("err", err))
		return
	}
	addrs := h.cfg.Addrs()
	addr, err := h.servingAddr(addrs.HTTP)
	if err != nil {
		h.log.Error("webseed: cannot report ready", slog.Any("err", err))
		return
	}
	ready := &federation.Ready{Site: r.Site, InfoHash: r.InfoHash, Address: addr, Proof: federation.ProofOf(challenge, piece)}
	if r.TLS {
		if ready.TLSAddress, err = h.servingAddr(addrs.TLS); err != nil {
			h.log.Error("webseed: cannot report ready", slog.Any("err", err))
			return
		}
	}
	ready.Fetched = st.Phase == PhaseReady
	if !h.sendReady(ctx, member, ih, ready) {
		return
	}
	attrs := []any{slog.String("site", r.Site), slog.String("for", member.Name), slog.String("addr", addr.String()),
		slog.Int64("fetched", st.Done), slog.Int64("bytes", st.Total), slog.Duration("to_ready", time.Since(start))}
	if r.TLS {
		attrs = append(attrs, slog.String("https", ready.TLSAddress.String()), slog.Duration("certificate", certTook))
	}
	h.log.Info("webseed: helping", attrs...)
	if ready.Fetched {
		return
	}
	// The member favours a helper still fetching on its link (one at a time): say when this one is done.
	st, err = h.Wait(ctx, ih)
	switch {
	case err != nil || errors.Is(st.Err, errReleased):
		return // released, or shutting down
	case st.Phase != PhaseReady:
		h.log.Warn("webseed: help failed", slog.String("site", r.Site), slog.Any("err", st.Err))
		decline("fetch failed")
	default:
		ready.Fetched = true
		h.sendReady(ctx, member, ih, ready)
	}
}

// sendReady sends member a Ready and reports whether it was taken. The member checks a Ready by reading
// from this server what it serves: while the fetch goes on, that read waits for its piece behind the
// requests already out, and may take longer than the member waits, so a refused Ready is sent again while
// the job is served, readyTries times at most.
func (h *Helper) sendReady(ctx context.Context, member federation.Member, ih metainfo.Hash, ready *federation.Ready) bool {
	for try := 1; ; try++ {
		err := h.cfg.Client.Send(ctx, member.URL, federation.KindReady, ready, nil)
		if err == nil {
			return true
		}
		if try == readyTries || !h.served(ih) {
			h.log.Warn("webseed: ready refused", slog.String("member", member.Name), slog.Any("err", err))
			return false
		}
		h.log.Info("webseed: ready refused; reporting again", slog.String("member", member.Name), slog.Any("err", err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(readyRetry):
		}
	}
}

// publishVia has member, the site's gateway that recruited this server, publish and remove the ACME DNS-01
// challenges of this server's certificate for the site.
func (h *Helper) publishVia(member federation.Member) certs.Publish {
	return func(ctx context.Context, name, value string, present bool) error {
		return h.cfg.Client.Send(ctx, member.URL, federation.KindChallenge,
			&federation.Challenge{Site: name, Value: value, Remove: !present}, nil)
	}
}

// servingAddr is where steered clients reach this server at a listener's address: that address, or, when it
// is on every interface, the federation file's first address for this server with its port.
func (h *Helper) servingAddr(a net.Addr) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, errors.New("webseed: no listener to report")
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return ap, err
	}
	if !ap.Addr().IsUnspecified() {
		return ap, nil
	}
	if len(h.cfg.Self.Addresses) == 0 {
		return ap, fmt.Errorf("webseed: listening on every interface and the federation file gives no address for %s", h.cfg.Self.Name)
	}
	return netip.AddrPortFrom(h.cfg.Self.Addresses[0], ap.Port()), nil
}

// ReleaseFrom ends help for a member's site, when that member (from, verified) asked for it.
func (h *Helper) ReleaseFrom(from string, r *federation.Release) error {
	var ih metainfo.Hash
	if err := ih.FromHexString(r.InfoHash); err != nil {
		return fmt.Errorf("webseed: %w: %w", federation.ErrBadBody, err)
	}
	switch err := h.ReleaseBy(from, ih); {
	case errors.Is(err, ErrNotRequester):
		return fmt.Errorf("webseed: release from %s: %w: %w", from, federation.ErrForbidden, err)
	case errors.Is(err, ErrUnknownJob):
		return nil // released already, or expired
	case err != nil:
		return fmt.Errorf("webseed: release from %s: %w", from, err)
	}
	h.log.Info("webseed: released", slog.String("site", r.Site), slog.String("by", from))
	return nil
}

// Handles reports whether a request is the helper's to serve: a webseed path of a version it helps with
// (not one of its server's own, Config.OwnVersion), or a request for a site it helps with (by Host) that is
// none of its server's own names (Config.OwnSite). Its server routes such requests to the Helper before its
// own handlers.
func (h *Helper) Handles(r *http.Request) bool {
	if rest, ok := strings.CutPrefix(r.URL.Path, swarmapi.PathSeed); ok && rest != "" {
		if name, _, ok := strings.Cut(rest, "/"); ok {
			return h.cfg.OwnVersion == nil || !h.cfg.OwnVersion(name)
		}
		return false
	}
	host := BareHost(r.Host)
	return host != "" && (h.cfg.OwnSite == nil || !h.cfg.OwnSite(host)) && h.Serves(host)
}
