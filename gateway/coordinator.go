package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/seeder"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/webseed"
)

// FederationConfig makes the gateway a member of a federation of servers that lend each other capacity.
type FederationConfig struct {
	// Key is this server's Ed25519 key (federation.LoadOrCreateKey); its public half names it in Members.
	Key ed25519.PrivateKey
	// Members is the federation file: every member with its URL, public key and addresses.
	Members *federation.Federation
	// HelpCapacity is the load, in requests per second, this gateway asks each helper to take (what a
	// helper offers is its own, webseed.Config.Capacity).
	HelpCapacity int
	// HealthInterval is how often ready helpers are checked. One that answers wrongly (wrong bytes, an HTTP
	// error) or refuses the connection is withdrawn at once; one that does not answer within HealthTimeout
	// HealthStrikes checks in a row is withdrawn then.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check (default DefaultHealthTimeout).
	HealthTimeout time.Duration

	// HelperRoots are the CAs a helper's certificate for this site must chain to before the helper is
	// published in DNS (the health check speaks HTTPS to it as browsers will); nil: the system's roots.
	HelperRoots *x509.CertPool
	// ChallengeTimeout is how long an ACME challenge record published for a helper stays at most; a helper
	// removes its own as soon as the CA has validated it. Default DefaultChallengeTimeout.
	ChallengeTimeout time.Duration
	// HelpLease is how long a help request holds (HelpRequest.Until): a helper stops serving the site when
	// it passes, so one whose site's gateway vanished stops on its own. The gateway renews its helpers'
	// leases, half-way through, for as long as the crowd lasts. Default and most DefaultHelpLease (a
	// helper refuses a longer one).
	HelpLease time.Duration
	// LoadingHold is how long after a crowd (in the normal state that follows the ending one) helpers stay
	// engaged for the pages still loading from them: each such page's engine asks for webseeds while it
	// loads (PathWebseeds), and is answered with the helpers'. They are released once no page has asked for
	// loadingQuiet, or LoadingHold after the crowd at the latest (any client can ask, so the bound is what
	// ends it). Default DefaultLoadingHold.
	LoadingHold time.Duration
}

// Defaults for FederationConfig.
const (
	DefaultHelpCapacity   = 100
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = 3 * time.Second
	// HealthStrikes is how many health checks in a row a helper may leave unanswered (past HealthTimeout)
	// before it is withdrawn. A helper whose link is full of the crowd it serves answers late now and then:
	// in a 40-visitor crowd benchmark one late answer withdrew a helper that was serving a third of the crowd.
	HealthStrikes = 3
	// DefaultChallengeTimeout: a CA validates a DNS-01 challenge within seconds of being told to, and the
	// helper removes the record itself; five minutes allows for slow CAs and retries, and bounds how long a
	// vanished helper's record stays.
	DefaultChallengeTimeout = 5 * time.Minute
	// maxChallengesPerHelper bounds the challenge records one helper may have published at once: an order
	// for the site's name needs one, a retried order a second.
	maxChallengesPerHelper = 4
	// favourFor bounds how long after it was asked a recruit is favoured on the site's uplink: long enough for
	// a copy on any link worth recruiting for, short enough that a member that never finishes (or fetches
	// again and again) cannot hold the link.
	favourFor = time.Minute
	// askTimeout bounds one help request: the member fetches the job (10 s at most) and answers.
	askTimeout = 30 * time.Second
	// askStagger is the longest a member that has not answered yet holds back the next one's request.
	askStagger = 2 * time.Second
	// maxJobHelperPeers bounds the helpers a job lists as peers (a helper refuses a job with too many).
	maxJobHelperPeers = 16
	// DefaultHelpLease is how long a help request holds without renewal (HelpRequest.Until): long enough
	// that renewals (every half lease) are rare, short enough that a helper whose site's gateway vanished
	// does not serve the site, and steer nobody's DNS-cached clients to stale pages, for long. It is the
	// most a helper accepts.
	DefaultHelpLease = webseed.MaxLease
	// DefaultLoadingHold: a page's files, long media included, load within minutes; a visitor who watches a
	// long video streams it the whole time, and ten minutes covers most of what a page holds.
	DefaultLoadingHold = 10 * time.Minute
	// loadingQuiet: engines ask for webseeds every 2 s while they load (js/src/engine.ts WEBSEED_POLL_MS);
	// on a busy machine a page asks late now and then, and none in this long means none is loading.
	loadingQuiet = 10 * time.Second
	// cleanupTimeout bounds the DNS updates that remove challenge records, which a DNS server answers at once.
	cleanupTimeout = 3 * time.Second
)

// Helper states, as the coordinator sees them.
const (
	helperAsked    = "asked"
	helperAccepted = "accepted"
	helperDeclined = "declined"
	helperReady    = "ready"
	helperFailed   = "failed"
	helperReleased = "released"
)

// helperState is one member recruited for the current crowd.
type helperState struct {
	member    federation.Member
	state     string
	reason    string
	tls       bool           // asked to serve over HTTPS
	addr      netip.AddrPort // where it serves, once ready
	tlsAddr   netip.AddrPort // where it serves HTTPS, once ready
	capacity  int
	peer      netip.AddrPort // its BitTorrent listener, once it accepted (Accept.PeerAddress)
	challenge []byte
	version   *catalog.Version
	asked     time.Time
	readyAt   time.Time
	fetched   bool      // it holds the whole version (Ready.Fetched); until then it serves while it fetches
	strikes   int       // health checks in a row it left unanswered
	until     time.Time // the end of its lease (HelpRequest.Until) as last accepted
	renewing  bool      // a renewal of its lease is under way
}

// coordinator is the site-owner side of cooperation: it recruits helpers when the monitor declares a crowd,
// publishes them in DNS once they prove they hold the content and pass a health check, withdraws failing
// ones at once, and releases them after the crowd, once withdrawn records have expired.
type coordinator struct {
	srv       siteServer
	site      string // the site's name (Config.SiteName)
	httpsSite bool   // the site is served over HTTPS, and so must its helpers serve it
	cfg       FederationConfig
	self      federation.Member
	// fellows are the other members' addresses (the federation file does not change while the server runs):
	// favoured looks them up for every write on the uplink.
	fellows map[netip.Addr]bool
	client  *federation.Client
	dns     steer.Publisher
	log     *slog.Logger
	http    *http.Client
	https   *http.Client // health checks of helpers serving HTTPS: verifies their certificate for the site

	mu          sync.Mutex
	helpers     map[string]*helperState
	challenges  map[string]*challengeRecord // by TXT value
	crowdStart  time.Time
	firstReady  time.Duration // from crowd start to the first helper in DNS
	normalSince time.Time     // when the monitor last entered the normal state
	lastLoading time.Time     // when a loading page was last given the helpers' webseeds (LoadingHold)
	published   []steer.Weighted
	wake        chan struct{}
	wg          sync.WaitGroup // requests to members under way; run waits for them
}

// siteServer is what the coordinator sees of the server whose site it recruits for.
type siteServer interface {
	crowdState() monitor.State
	// currentVersion is the site version helpers are recruited for; nil before the first.
	currentVersion() *catalog.Version
}

// newCoordinator makes the coordinator of the site named site, served over HTTPS when https.
func newCoordinator(srv siteServer, site string, https bool, cfg FederationConfig, v *federation.Verifier, dns steer.Publisher, log *slog.Logger) (*coordinator, error) {
	self, err := cfg.Members.Self(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("gateway: federation: %w", err)
	}
	if cfg.HelpCapacity <= 0 {
		cfg.HelpCapacity = DefaultHelpCapacity
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}
	if cfg.ChallengeTimeout <= 0 {
		cfg.ChallengeTimeout = DefaultChallengeTimeout
	}
	if cfg.HelpLease <= 0 || cfg.HelpLease > DefaultHelpLease {
		cfg.HelpLease = DefaultHelpLease
	}
	if cfg.LoadingHold <= 0 {
		cfg.LoadingHold = DefaultLoadingHold
	}
	if site != "" && !self.HasSite(site) {
		log.Warn("gateway: the federation file does not list this site for this member: other members will refuse to help it",
			slog.String("site", site), slog.String("member", self.Name))
	}
	noRedirect := federation.NoRedirects // a helper's health check answers itself; a redirect is no answer
	return &coordinator{
		srv: srv, site: site, httpsSite: https, cfg: cfg, self: self, fellows: fellowAddrs(cfg.Members, self.Name), dns: dns,
		log:    log.With(slog.String("component", "coordinator")),
		client: &federation.Client{Key: cfg.Key, Name: self.Name, Verifier: v},
		http:   &http.Client{Timeout: cfg.HealthTimeout, CheckRedirect: noRedirect},
		https: &http.Client{Timeout: cfg.HealthTimeout, CheckRedirect: noRedirect, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: cfg.HelperRoots, ServerName: site, MinVersion: tls.VersionTLS12}}},
		helpers:    map[string]*helperState{},
		challenges: map[string]*challengeRecord{},
		wake:       make(chan struct{}, 1),
	}, nil
}

// favoured reports whether this server's uplink (Config.Uplink) sends to a connection's remote address before
// anyone else. Every copy a helper holds adds a whole uplink of capacity, so:
//
//   - While this server recruits, it favours the member it recruited first among those still fetching (for
//     favourFor at most): that helper holds the site in the time its copy takes on the full link, then the
//     next. (Favouring all of them at once would make the first wait for them all, and have the link carry
//     what they all ask of it at once, a copy each.) A helper in DNS still fetches until its Ready says
//     Fetched. What the crowd's browsers miss meanwhile they get from one another.
//   - Otherwise it favours every other member: a helper's fellow helpers fetch from it (a job lists the
//     helpers recruited before), and they serve the crowd as soon as they hold the site.
func (c *coordinator) favoured(a netip.Addr) bool {
	c.mu.Lock()
	var first *helperState
	recruiting := false
	now := time.Now()
	for _, h := range c.helpers {
		if h.state != helperAsked && h.state != helperAccepted && (h.state != helperReady || h.fetched) {
			continue
		}
		recruiting = true
		if now.Sub(h.asked) > favourFor {
			continue
		}
		if first == nil || h.asked.Before(first.asked) || (h.asked.Equal(first.asked) && h.member.Name < first.member.Name) {
			first = h
		}
	}
	c.mu.Unlock()
	if recruiting {
		return first != nil && slices.Contains(first.member.Addresses, a)
	}
	return c.fellows[a]
}

// fellowAddrs are the addresses of every member but self.
func fellowAddrs(fed *federation.Federation, self string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, m := range fed.Members() {
		if m.Name == self {
			continue
		}
		for _, a := range m.Addresses {
			out[a] = true
		}
	}
	return out
}

func (c *coordinator) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// onState reacts to the monitor's transitions.
func (c *coordinator) onState(from, to monitor.State) {
	switch to {
	case monitor.Crowd:
		c.mu.Lock()
		if from == monitor.Normal {
			c.crowdStart, c.firstReady = time.Now(), 0
		}
		c.mu.Unlock()
	case monitor.Ending:
	case monitor.Normal:
		c.mu.Lock()
		c.normalSince = time.Now()
		c.mu.Unlock()
	}
	c.kick()
}

// run reconciles the federation with the monitor's state until ctx ends: recruiting in a crowd, checking
// health, publishing DNS, and releasing helpers when the crowd is over.
func (c *coordinator) run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.HealthInterval)
	defer tick.Stop()
	defer c.dropChallenges(context.WithoutCancel(ctx), func(*challengeRecord) bool { return true })
	defer c.wg.Wait() // before the challenges are dropped: a member's answer may still add one
	for {
		c.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-tick.C:
		}
	}
}

func (c *coordinator) reconcile(ctx context.Context) {
	state := c.srv.crowdState()
	switch state {
	case monitor.Crowd:
		c.recruit(ctx)
		c.renew(ctx)
		c.checkHealth(ctx)
	case monitor.Ending:
		c.renew(ctx)
		c.checkHealth(ctx) // helpers keep serving clients that resolved them until the TTL passes
	case monitor.Normal:
		if c.holding(time.Now()) {
			c.renew(ctx) // the pages still loading from the helpers keep them; no new client is sent to them
			c.checkHealth(ctx)
		} else {
			c.release(ctx)
		}
	}
	c.publish(ctx, state)
	c.expireChallenges(ctx, time.Now())
}

// recruit asks every member not yet asked for the current version to help.
func (c *coordinator) recruit(ctx context.Context) {
	v := c.srv.currentVersion()
	if v == nil {
		return
	}
	var asks []*helperState
	for _, m := range c.cfg.Members.Members() {
		if m.Name == c.self.Name {
			continue
		}
		c.mu.Lock()
		h := c.helpers[m.Name]
		if h != nil && h.version == v && !c.askAgain(h) {
			c.mu.Unlock()
			continue
		}
		challenge := make([]byte, 32)
		_, _ = rand.Read(challenge)
		h = &helperState{member: m, state: helperAsked, challenge: challenge, version: v, asked: time.Now(), tls: c.httpsSite}
		c.helpers[m.Name] = h
		c.mu.Unlock()
		asks = append(asks, h)
	}
	if len(asks) == 0 {
		return
	}
	// One after another: a member asked later reads in its job the BitTorrent addresses of those that accepted
	// before it, and fetches from them as well as from the site, so the site's link carries each piece to the
	// helpers about once (an answer takes milliseconds; the fetches take seconds). A member that is slow to
	// answer holds the next one back for askStagger at most.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for _, h := range asks {
			answered := make(chan struct{})
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer close(answered)
				actx, cancel := context.WithTimeout(ctx, askTimeout)
				defer cancel()
				c.ask(actx, h)
			}()
			t := time.NewTimer(askStagger)
			select {
			case <-answered:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}()
}

// helperPeers are the BitTorrent addresses of the helpers that accepted version v (or are ready with it),
// for jobs: a helper fetching v fetches from them too.
func (c *coordinator) helperPeers(v *catalog.Version) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, h := range c.helpers {
		if h.version == v && h.peer.IsValid() && (h.state == helperAccepted || h.state == helperReady) {
			out = append(out, h.peer.String())
		}
	}
	slices.Sort(out)
	return out[:min(len(out), maxJobHelperPeers)]
}

// reaskAfter is how long a member that declined or failed is left alone before it is asked again in the
// same crowd: its capacity may have freed up.
const reaskAfter = 15 * time.Second

// askAgain reports whether a member recruited before should be asked again. Called with mu held.
func (c *coordinator) askAgain(h *helperState) bool {
	switch h.state {
	case helperReleased:
		return true
	case helperDeclined, helperFailed:
		return time.Since(h.asked) >= reaskAfter
	}
	return false
}

// helpRequest is the help request for h's version, with a lease from now. Called with mu held.
func (c *coordinator) helpRequest(h *helperState) *federation.HelpRequest {
	return &federation.HelpRequest{
		Site: c.site, Version: h.version.Name, InfoHash: h.version.InfoHash.HexString(),
		Origin: c.self.URL, Webseeds: []string{c.self.URL + swarmapi.PathSeed}, Tracker: wsURL(c.self.URL) + swarmapi.PathAnnounce,
		Capacity: c.cfg.HelpCapacity, Until: time.Now().Add(c.cfg.HelpLease), Challenge: hex.EncodeToString(h.challenge),
		TLS: h.tls,
	}
}

// renew asks again every helper still engaged whose lease is half gone, with the same request and a new
// Until: the helper keeps its job (and its state here stays) for another lease. A helper that declines is
// withdrawn; one that cannot be reached is tried again at the next reconcile.
func (c *coordinator) renew(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	var due []*helperState
	for _, h := range c.helpers {
		if (h.state == helperAccepted || h.state == helperReady) && !h.renewing && !h.until.IsZero() &&
			h.until.Sub(now) < c.cfg.HelpLease/2 {
			h.renewing = true
			due = append(due, h)
		}
	}
	c.mu.Unlock()
	for _, h := range due {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.renewOne(ctx, h)
		}()
	}
}

func (c *coordinator) renewOne(ctx context.Context, h *helperState) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	c.mu.Lock()
	req := c.helpRequest(h)
	c.mu.Unlock()
	err := c.client.Send(ctx, h.member.URL, federation.KindHelpRequest, req, &federation.Accept{})
	c.mu.Lock()
	h.renewing = false
	current := c.helpers[h.member.Name] == h
	if err == nil && current {
		h.until = req.Until
	}
	c.mu.Unlock()
	var declined *federation.DeclinedError
	switch {
	case err == nil:
		c.log.Debug("coordinator: lease renewed", slog.String("member", h.member.Name), slog.Time("until", req.Until))
	case errors.As(err, &declined) && current:
		c.declined(h.member.Name, &federation.Decline{Site: req.Site, InfoHash: req.InfoHash, Reason: declined.Decline.Reason})
	default:
		c.log.Warn("coordinator: renewing a helper's lease", slog.String("member", h.member.Name), slog.Any("err", err))
	}
}

// ask sends one help request and records the answer.
func (c *coordinator) ask(ctx context.Context, h *helperState) {
	c.mu.Lock()
	req := c.helpRequest(h)
	c.mu.Unlock()
	var acc federation.Accept
	err := c.client.Send(ctx, h.member.URL, federation.KindHelpRequest, req, &acc)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.helpers[h.member.Name] != h {
		return
	}
	var declined *federation.DeclinedError
	switch {
	case errors.As(err, &declined):
		h.state, h.reason = helperDeclined, declined.Error()
	case err != nil:
		h.state, h.reason = helperFailed, err.Error()
	default:
		h.state, h.capacity, h.until = helperAccepted, acc.Capacity, req.Until
		// Only at an address the federation lists for the member, and may use: a job sends other helpers to
		// dial it.
		if ap, err := netip.ParseAddrPort(acc.PeerAddress); err == nil && h.member.Owns(ap.Addr()) && h.member.MayReach(ap.Addr()) {
			h.peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	c.log.Info("coordinator: help request answered", slog.String("member", h.member.Name), slog.String("state", h.state),
		slog.String("reason", h.reason))
}

// ready takes a helper's Ready: it must answer our request for this version (still engaged: not released,
// declined or failed), give addresses the federation file lists for it (and that it may use), prove it holds
// the data, and pass a health check before its address is published.
func (c *coordinator) ready(ctx context.Context, from string, r *federation.Ready) error {
	c.mu.Lock()
	h := c.helpers[from]
	engaged := h != nil && engagedState(h.state)
	c.mu.Unlock()
	if !engaged || h.version.InfoHash.HexString() != r.InfoHash || r.Site != c.site {
		return fmt.Errorf("gateway: ready from %s for %s: %w: %w", from, r.InfoHash, federation.ErrForbidden, ErrNotAsked)
	}
	for _, ap := range []netip.AddrPort{r.Address, r.TLSAddress} {
		if ap.IsValid() && !(h.member.Owns(ap.Addr()) && h.member.MayReach(ap.Addr())) {
			return fmt.Errorf("gateway: ready from %s: address %s: %w: not one the federation file lists for the member",
				from, ap, federation.ErrForbidden)
		}
	}
	piece, err := seeder.ReadPiece(&h.version.Info, h.version.Dir, federation.ChallengePiece(h.challenge, h.version.Info.NumPieces()))
	if err != nil {
		return err
	}
	if federation.ProofOf(h.challenge, piece) != r.Proof {
		return fmt.Errorf("gateway: ready from %s: %w", from, ErrBadProof)
	}
	if h.tls && !r.TLSAddress.IsValid() {
		return fmt.Errorf("gateway: ready from %s: %w: no HTTPS address", from, ErrUnhealthy)
	}
	if err := c.healthy(ctx, r.Address, r.TLSAddress, h.version); err != nil {
		return fmt.Errorf("gateway: ready from %s: %w", from, err)
	}
	c.mu.Lock()
	if c.helpers[from] != h || !engagedState(h.state) { // released, declined or asked again meanwhile
		c.mu.Unlock()
		return fmt.Errorf("gateway: ready from %s for %s: %w: %w", from, r.InfoHash, federation.ErrForbidden, ErrNotAsked)
	}
	if h.state != helperReady {
		h.readyAt = time.Now()
	}
	h.state, h.addr, h.tlsAddr, h.fetched, h.reason = helperReady, r.Address, r.TLSAddress, r.Fetched, ""
	if c.firstReady == 0 && !c.crowdStart.IsZero() {
		c.firstReady = time.Since(c.crowdStart)
	}
	c.mu.Unlock()
	c.log.Info("coordinator: helper ready", slog.String("member", from), slog.String("addr", r.Address.String()),
		slog.Bool("fetched", r.Fetched))
	c.kick()
	return nil
}

// engagedState reports whether a helper in this state may report Ready: asked (its Ready can overtake the
// Accept), accepted, or ready already (it reports again when asked again).
func engagedState(state string) bool {
	return state == helperAsked || state == helperAccepted || state == helperReady
}

// forget drops a withdrawn address from what publish believes is live, so the next publish sets the rest.
func (c *coordinator) forget(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.published = slices.DeleteFunc(slices.Clone(c.published), func(w steer.Weighted) bool { return w.Addr == a })
}

// Published returns the addresses published in DNS for the site.
func (s *Server) Published() []netip.Addr {
	if s.coord == nil {
		return nil
	}
	s.coord.mu.Lock()
	defer s.coord.mu.Unlock()
	var out []netip.Addr
	for _, w := range s.coord.published {
		out = append(out, w.Addr)
	}
	return out
}

// publish sets the site's DNS records: the origin's addresses, plus ready helpers during a crowd.
func (c *coordinator) publish(ctx context.Context, state monitor.State) {
	if c.dns == nil || c.site == "" {
		return
	}
	var helpers []steer.Weighted
	if state == monitor.Crowd {
		for _, h := range c.readyHelpers() {
			helpers = append(helpers, steer.Weighted{Addr: h.addr.Addr(), Weight: uint32(max(h.capacity, 1))})
		}
	}
	// Weights are spare capacity, and in a crowd the site has none: once helpers are ready the site's own
	// addresses stay in the answers (a client that tries several still finds it) with the least weight, so
	// that nearly every new client goes to a helper instead of the full link.
	own := uint32(c.cfg.HelpCapacity)
	if len(helpers) > 0 {
		own = 1
	}
	var set []steer.Weighted
	for _, a := range c.self.Addresses {
		set = append(set, steer.Weighted{Addr: a, Weight: own})
	}
	set = append(set, helpers...)
	c.mu.Lock()
	same := slices.Equal(set, c.published)
	c.mu.Unlock()
	if same {
		return
	}
	if err := c.dns.Set(ctx, c.site, set); err != nil {
		c.log.Error("coordinator: publishing DNS", slog.Any("err", err))
		return
	}
	c.mu.Lock()
	c.published = set
	c.mu.Unlock()
	c.log.Info("coordinator: DNS published", slog.String("name", c.site), slog.Int("addresses", len(set)))
}

func (c *coordinator) readyHelpers() []helperState {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []helperState
	for _, h := range c.helpers {
		if h.state == helperReady {
			out = append(out, *h)
		}
	}
	slices.SortFunc(out, func(a, b helperState) int { return a.addr.Compare(b.addr) })
	return out
}

// webseeds are the ready helpers' webseed URLs: for a new page view's manifest during a crowd, and for a page
// still loading until the helpers are released (in the normal state that follows the ending one, once no
// page loads from them: see holding).
func (c *coordinator) webseeds(loading bool) []string {
	if !loading && c.srv.crowdState() != monitor.Crowd {
		return nil
	}
	var out []string
	for _, h := range c.readyHelpers() {
		out = append(out, "http://"+h.addr.String()+swarmapi.PathSeed)
	}
	if loading && len(out) > 0 {
		c.mu.Lock()
		c.lastLoading = time.Now()
		c.mu.Unlock()
	}
	return out
}

// holding says whether the crowd's helpers are kept after it: a page that loads from them asked for webseeds
// within loadingQuiet, and the crowd ended less than LoadingHold ago.
func (c *coordinator) holding(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Sub(c.lastLoading) < loadingQuiet && now.Sub(c.normalSince) < c.cfg.LoadingHold
}

// release tells every helper still engaged that the crowd is over. It runs in the normal state, which the
// monitor enters only after the ending state has lasted the records' TTL, once no page loads from them.
func (c *coordinator) release(ctx context.Context) {
	c.mu.Lock()
	var engaged []*helperState
	for _, h := range c.helpers {
		if h.state == helperAccepted || h.state == helperReady || h.state == helperAsked || h.state == helperFailed {
			engaged = append(engaged, h)
			h.state = helperReleased
		}
	}
	c.mu.Unlock()
	if len(engaged) > 0 {
		released := map[string]bool{}
		for _, h := range engaged {
			released[h.member.Name] = true
		}
		c.dropChallenges(ctx, func(r *challengeRecord) bool { return released[r.member] })
	}
	for _, h := range engaged {
		err := c.client.Send(ctx, h.member.URL, federation.KindRelease,
			&federation.Release{Site: c.site, InfoHash: h.version.InfoHash.HexString()}, nil)
		c.log.Info("coordinator: released helper", slog.String("member", h.member.Name), slog.Any("err", err))
	}
}

// HelperStatus is one helper as the coordinator sees it.
type HelperStatus struct {
	Name    string
	State   string
	Reason  string
	Address string
	Healthy bool
	Fetched bool // it holds the whole version; a ready helper serves while it fetches
}

// Helpers reports the helpers of the current or last crowd, and how long the first took from the crowd's
// start to its address in DNS (zero when none got there).
func (s *Server) Helpers() ([]HelperStatus, time.Duration) {
	c := s.coord
	if c == nil {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []HelperStatus
	for _, h := range c.helpers {
		hs := HelperStatus{Name: h.member.Name, State: h.state, Reason: h.reason, Healthy: h.state == helperReady,
			Fetched: h.state == helperReady && h.fetched}
		if h.addr.IsValid() {
			hs.Address = h.addr.String()
		}
		out = append(out, hs)
	}
	slices.SortFunc(out, func(a, b HelperStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, c.firstReady
}

// wsURL turns an http(s) base URL into the ws(s) one.
func wsURL(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "ws://" + rest
	}
	return u
}

// declined takes a helper's notice that it stops helping (its own site got a crowd): it is withdrawn.
func (c *coordinator) declined(from string, d *federation.Decline) {
	c.mu.Lock()
	h := c.helpers[from]
	if h == nil || h.state == helperReleased || h.version.InfoHash.HexString() != d.InfoHash {
		c.mu.Unlock()
		return
	}
	wasReady := h.state == helperReady
	h.state, h.reason = helperDeclined, d.Reason
	c.mu.Unlock()
	c.dropChallenges(context.Background(), func(r *challengeRecord) bool { return r.member == from })
	c.log.Info("coordinator: helper stops helping", slog.String("member", from), slog.String("reason", d.Reason))
	if wasReady && c.dns != nil {
		if err := c.dns.Withdraw(context.Background(), c.site, h.addr.Addr()); err != nil {
			c.log.Error("coordinator: withdrawing helper", slog.Any("err", err))
		}
		c.forget(h.addr.Addr())
	}
	c.kick()
}
