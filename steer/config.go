package steer

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// ServerConfig configures the embedded authoritative server. Zero fields take the defaults below; Zone and
// NameServers are required.
type ServerConfig struct {
	// Zone is the origin of the zone the server is authoritative for, e.g. "example.com". Every name it
	// publishes lies in it; queries for names outside it are REFUSED.
	Zone string
	// Addr is where the server listens, UDP and TCP on the same port ("IP:port" or ":port"; port 0 picks a
	// free port, see Server.Addr). Default ":53".
	Addr string

	// NameServers are the zone's NS records, the first one the SOA's primary (MNAME). A name server inside
	// the zone needs its addresses (the server answers them, and they are the glue the parent zone must
	// hold); one outside the zone must have none.
	NameServers []NameServer
	// Hostmaster is the SOA's responsible-person mailbox as a domain name (hostmaster.example.com for
	// hostmaster@example.com). Default "hostmaster." + Zone.
	Hostmaster string

	// TTL is the time to live of published A and AAAA records, in whole seconds: how long after a change
	// resolvers may still answer the old set. Default DefaultTTL.
	TTL time.Duration
	// NegativeTTL is the SOA MINIMUM, the time resolvers cache NXDOMAIN and NODATA answers (RFC 2308).
	// Default TTL, so a newly published name is seen as soon as changed records are.
	NegativeTTL time.Duration
	// Refresh, Retry and Expire are the SOA timers for secondaries. Defaults DefaultRefresh, DefaultRetry
	// and DefaultExpire.
	Refresh, Retry, Expire time.Duration

	// MaxAnswers bounds the addresses of one family in an answer, drawn by weight from the published set.
	// Default DefaultMaxAnswers.
	MaxAnswers int

	// TransferFrom are the client networks allowed zone transfers (AXFR, IXFR) over TCP, usually the
	// secondaries' addresses as /32 or /128 prefixes. Empty: no transfers.
	TransferFrom []netip.Prefix
	// NotifyTo are the secondaries sent a NOTIFY (RFC 1996) over UDP at start and on every change of the
	// zone, so they transfer it at once instead of at the next Refresh. Their addresses need to be in
	// TransferFrom.
	NotifyTo []netip.AddrPort

	// Rand draws the weighted answer order. Nil: a randomly seeded generator. Tests pass a seeded one.
	Rand rand.Source
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// NameServer is one NS record of the zone.
type NameServer struct {
	// Name is the name server's host name.
	Name string
	// Addrs are its addresses; required when Name is inside the zone, forbidden otherwise.
	Addrs []netip.Addr
}

// Defaults for zero ServerConfig fields.
const (
	// DefaultAddr is the DNS port on every interface.
	DefaultAddr = ":53"
	// DefaultTTL keeps steering responsive: a failed helper is out of resolvers' caches 30 s after its
	// withdrawal, and a helper released after the crowd must serve 30 s more. Lower values get clamped by
	// some resolvers and multiply the query load on the server.
	DefaultTTL = 30 * time.Second
	// DefaultRefresh is how often secondaries check the serial without a NOTIFY (an hour, RFC 1912).
	DefaultRefresh = time.Hour
	// DefaultRetry is how soon a secondary retries a failed refresh.
	DefaultRetry = 10 * time.Minute
	// DefaultExpire is how long a secondary keeps answering when the primary is unreachable: two weeks,
	// as RFC 1912 suggests, so a hidden primary's outage does not take the site's DNS down.
	DefaultExpire = 14 * 24 * time.Hour
	// DefaultMaxAnswers: clients use the first address or try a few, and 8 AAAA records (28 bytes each
	// compressed) with the authority and EDNS overhead stay well inside a 512-byte UDP answer, so plain UDP
	// clients never have to retry over TCP.
	DefaultMaxAnswers = 8
)

// maxTTL bounds every configured time: 2^31-1 seconds is the largest TTL RFC 2181 allows.
const maxTTL = (1<<31 - 1) * time.Second

// zoneConfig is a ServerConfig checked and turned into what the responder needs.
type zoneConfig struct {
	origin       string
	ns           []string                // canonical NS names, in configured order
	nsAddrs      map[string][]netip.Addr // in-zone name servers' addresses
	mname        string
	rname        string
	ttl          uint32
	negTTL       uint32
	refresh      uint32
	retry        uint32
	expire       uint32
	maxAnswers   int
	transferFrom []netip.Prefix
	notify       []netip.AddrPort
	addr         string
}

// check validates the configuration and fills defaults into a zoneConfig. It does no I/O.
func (c *ServerConfig) check() (*zoneConfig, error) {
	origin, err := canonicalZone(c.Zone)
	if err != nil {
		return nil, err
	}
	z := &zoneConfig{origin: origin, nsAddrs: make(map[string][]netip.Addr)}

	z.addr = c.Addr
	if z.addr == "" {
		z.addr = DefaultAddr
	}
	if _, port, err := net.SplitHostPort(z.addr); err != nil || port == "" {
		return nil, fmt.Errorf("steer: %w: Addr %q is not IP:port or :port", ErrBadConfig, c.Addr)
	}

	if len(c.NameServers) == 0 {
		return nil, fmt.Errorf("steer: %w: NameServers is empty", ErrBadConfig)
	}
	for _, ns := range c.NameServers {
		n := dns.CanonicalName(ns.Name)
		if ns.Name == "" || !isHostName(n) || n == "." {
			return nil, fmt.Errorf("steer: %w: name server %q is not a host name", ErrBadConfig, ns.Name)
		}
		if slices.Contains(z.ns, n) {
			return nil, fmt.Errorf("steer: %w: name server %s listed twice", ErrBadConfig, n)
		}
		z.ns = append(z.ns, n)
		inZone := dns.IsSubDomain(origin, n)
		switch {
		case inZone && n == origin:
			return nil, fmt.Errorf("steer: %w: name server %s is the zone apex; use a name below it", ErrBadConfig, n)
		case inZone && len(ns.Addrs) == 0:
			return nil, fmt.Errorf("steer: %w: name server %s is in the zone and needs addresses", ErrBadConfig, n)
		case !inZone && len(ns.Addrs) > 0:
			return nil, fmt.Errorf("steer: %w: name server %s is outside the zone; its addresses are not ours to publish", ErrBadConfig, n)
		}
		if inZone {
			var addrs []netip.Addr
			for _, a := range ns.Addrs {
				ca, err := canonicalAddr(a)
				if err != nil {
					return nil, fmt.Errorf("steer: %w: name server %s: %w", ErrBadConfig, n, err)
				}
				addrs = append(addrs, ca)
			}
			z.nsAddrs[n] = addrs
		}
	}
	z.mname = z.ns[0]

	z.rname = "hostmaster." + origin
	if c.Hostmaster != "" {
		z.rname = dns.CanonicalName(c.Hostmaster)
		if !isHostName(z.rname) || z.rname == "." {
			return nil, fmt.Errorf("steer: %w: Hostmaster %q is not a domain name (write hostmaster.example.com)", ErrBadConfig, c.Hostmaster)
		}
	}

	seconds := func(field string, d, def time.Duration) (uint32, error) {
		if d == 0 {
			d = def
		}
		if d < time.Second || d > maxTTL {
			return 0, fmt.Errorf("steer: %w: %s %s is not between 1s and 2^31-1 s", ErrBadConfig, field, d)
		}
		return uint32(d / time.Second), nil
	}
	if z.ttl, err = seconds("TTL", c.TTL, DefaultTTL); err != nil {
		return nil, err
	}
	if z.negTTL, err = seconds("NegativeTTL", c.NegativeTTL, time.Duration(z.ttl)*time.Second); err != nil {
		return nil, err
	}
	if z.refresh, err = seconds("Refresh", c.Refresh, DefaultRefresh); err != nil {
		return nil, err
	}
	if z.retry, err = seconds("Retry", c.Retry, DefaultRetry); err != nil {
		return nil, err
	}
	if z.expire, err = seconds("Expire", c.Expire, DefaultExpire); err != nil {
		return nil, err
	}

	z.maxAnswers = c.MaxAnswers
	if z.maxAnswers == 0 {
		z.maxAnswers = DefaultMaxAnswers
	}
	if z.maxAnswers < 1 || z.maxAnswers > MaxAddrsPerName {
		return nil, fmt.Errorf("steer: %w: MaxAnswers %d is not between 1 and %d", ErrBadConfig, c.MaxAnswers, MaxAddrsPerName)
	}

	for _, p := range c.TransferFrom {
		if !p.IsValid() {
			return nil, fmt.Errorf("steer: %w: TransferFrom has an invalid prefix", ErrBadConfig)
		}
		z.transferFrom = append(z.transferFrom, p.Masked())
	}
	for _, ap := range c.NotifyTo {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("steer: %w: NotifyTo %q is not IP:port", ErrBadConfig, ap)
		}
		z.notify = append(z.notify, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return z, nil
}
