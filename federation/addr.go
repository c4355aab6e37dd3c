package federation

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// nonPublic are the IPv4 and IPv6 ranges, besides those netip.Addr's methods name (loopback, private,
// link-local, multicast, unspecified), that reach no server on the Internet but may reach one inside a
// member's network: "this network" (0.0.0.0/8, which Linux connects to the local host), shared address
// space for carrier-grade NAT, IETF protocol assignments, benchmarking, the reserved class E, NAT64 (which
// embeds an IPv4 address a gateway reaches for us), and deprecated site-local IPv6.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("fec0::/10"),
}

// Public reports whether a is a global unicast address outside every private, loopback, link-local and
// special-purpose range: an address a member may name without the federation file's "allowPrivate".
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// MayReach reports whether this server may connect to a on the member's behalf: a public address always,
// any other (loopback, private, link-local...) only when the federation file sets allowPrivate for it.
func (m Member) MayReach(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || !a.IsValid() {
		return false
	}
	return m.AllowPrivate || Public(a)
}

// HasSite reports whether the federation file lists name (compared case-insensitively, without a trailing
// dot) among the sites the member may ask help for.
func (m Member) HasSite(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, s := range m.Sites {
		if s == name {
			return true
		}
	}
	return false
}

// Host is the host name or IP address of the member's URL, lower-case, without port or brackets.
func (m Member) Host() string {
	u, err := url.Parse(m.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// Owns reports whether the federation file lists a among the member's addresses.
func (m Member) Owns(a netip.Addr) bool {
	a = a.Unmap()
	for _, b := range m.Addresses {
		if a == b {
			return true
		}
	}
	return false
}

// CheckURL checks that a URL a member sends (a help request's origin, webseed or tracker) points at the
// member itself: its host is the host of the member's URL, or one of its listed addresses; and that a host
// given as an IP address is one MayReach allows. A host name is resolved only when connecting: connections
// made with a guarded dialer (GuardControl) check the addresses it resolves to as well. Refusals wrap
// ErrForbidden.
func (m Member) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("federation: %s: URL %q: %w: not an absolute URL", m.Name, raw, ErrForbidden)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || (!m.Owns(a) && host != m.Host()) {
			return fmt.Errorf("federation: %s: URL %q: %w: %s is not the member's URL host or a listed address",
				m.Name, raw, ErrForbidden, host)
		}
		if !m.MayReach(a) {
			return fmt.Errorf("federation: %s: URL %q: %w: %s is not public and the member has no allowPrivate",
				m.Name, raw, ErrForbidden, host)
		}
		return nil
	}
	if host != m.Host() {
		return fmt.Errorf("federation: %s: URL %q: %w: %s is not the member's URL host or a listed address",
			m.Name, raw, ErrForbidden, host)
	}
	return nil
}

// privateKey marks a context whose connections may reach non-public addresses (see WithPrivate).
type privateKey struct{}

// WithPrivate returns a context for connections made on a member's behalf: GuardControl lets them reach
// non-public addresses only when allow is true (the member's AllowPrivate).
func WithPrivate(ctx context.Context, allow bool) context.Context {
	return context.WithValue(ctx, privateKey{}, allow)
}

// GuardControl is a net.Dialer ControlContext that refuses to connect to an address that is not Public,
// unless the dial's context was made by WithPrivate(ctx, true). It sees the address a host name resolved
// to, so a member cannot point its name at an internal server. Refusals wrap ErrForbidden.
func GuardControl(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("federation: dialling %s %s: %w: not an IP address and port", network, address, ErrForbidden)
	}
	if allow, _ := ctx.Value(privateKey{}).(bool); allow {
		a := ap.Addr().Unmap()
		if a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("federation: dialling %s: %w: unspecified or multicast", address, ErrForbidden)
		}
		return nil
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("federation: dialling %s: %w: not a public address", address, ErrForbidden)
	}
	return nil
}

// guardedDialTimeout bounds a guarded dial, as http.DefaultTransport's dialer does.
const guardedDialTimeout = 30 * time.Second

// GuardedTransport returns a clone of http.DefaultTransport whose connections are checked by GuardControl.
func GuardedTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would make the connection, and the check, somewhere else
	t.DialContext = (&net.Dialer{Timeout: guardedDialTimeout, KeepAlive: 30 * time.Second, ControlContext: GuardControl}).DialContext
	return t
}

// NewHTTPClient returns a client for talking to members: connections checked by GuardControl, no
// connection kept idle (members talk rarely, and nothing is left to close), and redirects refused: a
// member's answer must come from the URL the federation file gives, not wherever it points.
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := GuardedTransport()
	t.DisableKeepAlives = true
	return &http.Client{Transport: t, Timeout: timeout, CheckRedirect: NoRedirects}
}

// NoRedirects is an http.Client CheckRedirect that hands the redirect back instead of following it.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
