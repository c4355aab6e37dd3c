package steer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Publisher publishes the A and AAAA records of site names. The gateway's crowd logic calls it: the
// origin's addresses in normal state, the origin plus ready, healthy helpers in a crowd. Implementations
// are safe for concurrent use.
type Publisher interface {
	// Set makes addrs the complete set of A and AAAA records of name (a host name in the publisher's zone),
	// replacing the earlier set; an empty addrs removes the name. Each address carries a weight, its share
	// of answers. It returns once the change is live on the serving DNS server.
	Set(ctx context.Context, name string, addrs []Weighted) error
	// Withdraw removes addrs from name's records at once and leaves the others, as for a helper that failed
	// its health check. Addresses not published are ignored.
	Withdraw(ctx context.Context, name string, addrs ...netip.Addr) error
	// TTL is the time to live of published records: resolvers may hand out an address for this long after
	// it was withdrawn, so a helper must keep serving at least that long after its withdrawal.
	TTL() time.Duration
	// AddTXT adds value to the TXT records of name (a name in the publisher's zone, such as an ACME DNS-01
	// challenge's _acme-challenge.<site>), beside the values already there: helpers validating at once each
	// publish their own. Adding a value already published changes nothing. The records have the short TTL
	// TXTTTL. It returns once the record is live on the serving DNS server.
	AddTXT(ctx context.Context, name, value string) error
	// RemoveTXT removes value from name's TXT records and leaves the others; a value not published is
	// ignored.
	RemoveTXT(ctx context.Context, name, value string) error
}

// Weighted is an address to publish with its weight.
type Weighted struct {
	// Addr is an IPv4 address (an A record) or an IPv6 address (AAAA). An IPv4-mapped IPv6 address is
	// published as IPv4.
	Addr netip.Addr
	// Weight is the address's share of answers, typically the server's spare capacity in requests per
	// second. It must be positive. Among the addresses of one family, an address comes first in about
	// Weight/sum(Weights) of the embedded server's answers; the Updater ignores weights (DNS has none).
	Weight uint32
}

// Limits on what may be published. The crowd logic is the only caller, so they are defensive: they bound
// the memory and per-query work of a bug, not of an attacker.
const (
	// MaxAddrsPerName bounds one name's address set. Each query draws from the set in O(size·MaxAnswers),
	// and a federation lending capacity to one site rarely has more than a few dozen members; 256 leaves
	// room while keeping a zone transfer of the name under 10 KB.
	MaxAddrsPerName = 256
	// MaxNames bounds the names published in one zone (a site needs one or two: example.com and
	// www.example.com). The zone is copied on every change, so it must stay small.
	MaxNames = 1024
	// MaxTXTPerName bounds one name's TXT values. An ACME challenge name holds one value per helper
	// validating at that moment, and a federation lends a site a few dozen members at most.
	MaxTXTPerName = 64
	// MaxTXTLen bounds one TXT value: one DNS character-string (RFC 1035 3.3). An ACME DNS-01 value is 43.
	MaxTXTLen = 255
)

// TXTTTL is the time to live of TXT records. They carry ACME challenges, which live for one validation:
// resolvers need not keep them, and a removed value should be gone from caches soon.
const TXTTTL = 10 * time.Second

// canonicalZone checks a zone origin and returns it lowercase and fully qualified.
func canonicalZone(zone string) (string, error) {
	if zone == "" {
		return "", fmt.Errorf("steer: %w: empty", ErrBadZone)
	}
	z := dns.CanonicalName(zone)
	if z == "." || !isHostName(z) {
		return "", fmt.Errorf("steer: %w: %q", ErrBadZone, zone)
	}
	return z, nil
}

// canonicalName checks that name is a host name in zone (canonical) and returns it lowercase and fully
// qualified.
func canonicalName(zone, name string) (string, error) {
	n := dns.CanonicalName(name)
	if name == "" || !isHostName(n) {
		return "", fmt.Errorf("steer: %w: %q", ErrBadName, name)
	}
	if !dns.IsSubDomain(zone, n) {
		return "", fmt.Errorf("steer: %w: %q is not in %s", ErrOutsideZone, name, zone)
	}
	return n, nil
}

// isHostName reports whether a canonical name has only labels of letters, digits, '-' and '_' (so labels
// split on '.' without escapes), within DNS length limits.
func isHostName(n string) bool {
	if _, ok := dns.IsDomainName(n); !ok || len(n) > 254 {
		return false
	}
	if n == "." {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(n, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkTXT checks a TXT value: 1 to MaxTXTLen bytes of printable ASCII without space, quote or backslash,
// so that it reads the same in zone files, dig's output and every DNS library.
func checkTXT(value string) error {
	if value == "" || len(value) > MaxTXTLen {
		return fmt.Errorf("steer: %w: %d bytes, want 1 to %d", ErrBadTXT, len(value), MaxTXTLen)
	}
	for _, c := range []byte(value) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("steer: %w: %q", ErrBadTXT, value)
		}
	}
	return nil
}

func txtRR(owner, value string, ttl uint32) *dns.TXT {
	return &dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{value}}
}

// canonicalAddr unmaps IPv4-mapped addresses and rejects invalid and zoned ones.
func canonicalAddr(a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("steer: %w: %q", ErrBadAddr, a)
	}
	return a.Unmap(), nil
}

// canonicalSet checks an address set and returns a sorted copy with canonical addresses.
func canonicalSet(addrs []Weighted) ([]Weighted, error) {
	if len(addrs) > MaxAddrsPerName {
		return nil, fmt.Errorf("steer: %w: %d > %d", ErrTooManyAddrs, len(addrs), MaxAddrsPerName)
	}
	out := make([]Weighted, 0, len(addrs))
	for _, w := range addrs {
		a, err := canonicalAddr(w.Addr)
		if err != nil {
			return nil, err
		}
		if w.Weight == 0 {
			return nil, fmt.Errorf("steer: %w: %s", ErrZeroWeight, a)
		}
		out = append(out, Weighted{Addr: a, Weight: w.Weight})
	}
	slices.SortFunc(out, func(x, y Weighted) int { return x.Addr.Compare(y.Addr) })
	for i := 1; i < len(out); i++ {
		if out[i].Addr == out[i-1].Addr {
			return nil, fmt.Errorf("steer: %w: %s", ErrDuplicateAddr, out[i].Addr)
		}
	}
	return out, nil
}
