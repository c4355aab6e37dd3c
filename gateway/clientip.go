package gateway

// Who a request comes from. The TCP peer is the client, unless the peer is one of the operator's trusted
// proxies (Config.TrustedProxies): then the client is the right-most address of the forwarded chain that is
// not itself a trusted proxy. A forwarding header from any other peer is never believed. Everything that
// keys on a client (the dashboard's loopback rule, the crowd monitor's demand, the caps per client) asks here.

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// clientInfo is what the gateway knows of a request's sender.
type clientInfo struct {
	// addr is the client's address as far as it can be known: the TCP peer, or the right-most untrusted
	// address a trusted proxy forwarded.
	addr netip.Addr
	// sure is false when addr may not be the client: a trusted proxy named no client (no forwarding header,
	// or one that does not parse), or an untrusted peer sent forwarding headers (it relays someone else).
	sure bool
}

// forwardingHeaders are the request headers by which a proxy names the client it relays.
var forwardingHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"}

// resolveClient finds a request's client from its TCP peer (remoteAddr, as in http.Request) and headers.
func resolveClient(remoteAddr string, h http.Header, trusted []netip.Prefix) clientInfo {
	peer := peerAddr(remoteAddr)
	if !peer.IsValid() {
		return clientInfo{}
	}
	if !isTrusted(peer, trusted) {
		relayed := false
		for _, k := range forwardingHeaders {
			relayed = relayed || len(h.Values(k)) > 0
		}
		return clientInfo{addr: peer, sure: !relayed}
	}
	var chain []string
	if v := h.Values("X-Forwarded-For"); len(v) > 0 {
		chain = splitHeaderList(strings.Join(v, ","))
	} else if v := h.Values("Forwarded"); len(v) > 0 {
		chain = forwardedFor(strings.Join(v, ","))
	}
	c := clientInfo{addr: peer}
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := parseNode(chain[i])
		if !ok { // what lies left of an entry we cannot read was written by someone we cannot vouch for
			return clientInfo{addr: c.addr}
		}
		c = clientInfo{addr: a, sure: true}
		if !isTrusted(a, trusted) {
			return c
		}
	}
	return c // the chain is all trusted proxies (or empty): its left-most address, or the peer
}

// clientIP is the address of the request's client (see resolveClient).
func (s *Server) clientIP(r *http.Request) netip.Addr {
	return resolveClient(r.RemoteAddr, r.Header, s.cfg.Clients.TrustedProxies).addr
}

// localClient reports whether a request surely comes from this machine: its resolved client is a loopback
// address, and no untrusted peer relayed it.
func (s *Server) localClient(r *http.Request) bool {
	c := resolveClient(r.RemoteAddr, r.Header, s.cfg.Clients.TrustedProxies)
	return c.sure && c.addr.IsLoopback()
}

// trustedLocal is the dashboard's rule for the operator's pages: the request carries the dashboard token
// (Config.DashboardToken), or comes from this machine (localClient).
func (s *Server) trustedLocal(r *http.Request) bool {
	return s.localClient(r) || s.dash.HasToken(r)
}

// isTrusted reports whether a is in one of the prefixes.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses http.Request.RemoteAddr (or a net.Addr's string); the zero Addr when it is not an IP.
func peerAddr(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// parseNode reads one address of a forwarded chain: "192.0.2.1", "192.0.2.1:80", "2001:db8::1" or
// "[2001:db8::1]:80". Obfuscated identifiers ("_hidden"), "unknown" and zones do not parse.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, _, ok := strings.Cut(rest, "]")
		if !ok {
			return netip.Addr{}, false
		}
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedFor returns the for= value of each element of a Forwarded header (RFC 7239), in order; an
// element without one gives "", which parses as no address.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range splitQuoted(v, ',') {
		node := ""
		for _, pair := range splitQuoted(elem, ';') {
			k, val, _ := strings.Cut(pair, "=")
			if strings.EqualFold(strings.TrimSpace(k), "for") {
				node = unquoteHeader(strings.TrimSpace(val))
			}
		}
		out = append(out, node)
	}
	return out
}

// splitQuoted splits s at sep outside quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquoteHeader undoes an RFC 7230 quoted-string; other values are returned as they are.
func unquoteHeader(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// setForwarded tells the origin who asked: X-Forwarded-For and Forwarded carry the chain of clients, ending
// with the gateway's peer. A trusted proxy's chain is continued; any other peer's is replaced, since it could
// name anyone. X-Real-IP is the client: a trusted proxy's when it sent one, else the gateway's peer (an origin
// behind one proxy often trusts it, and a client's own would pass for its address). X-Forwarded-Host and -Proto
// (and Forwarded's host and proto) are those the browser used: a trusted proxy's when it sent them, else the
// request's own.
func (s *Server) setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	peer := peerAddr(in.RemoteAddr)
	trusted := peer.IsValid() && isTrusted(peer, s.cfg.Clients.TrustedProxies)
	host, proto := in.Host, "http"
	if in.TLS != nil {
		proto = "https"
	}
	var xff, fwd []string
	if trusted {
		xff = splitHeaderList(strings.Join(in.Header.Values("X-Forwarded-For"), ","))
		if v := in.Header.Values("Forwarded"); len(v) > 0 {
			fwd = splitQuoted(strings.Join(v, ","), ',')
			for i := range fwd {
				fwd[i] = strings.TrimSpace(fwd[i])
			}
		} else {
			for _, n := range xff {
				fwd = append(fwd, "for="+forwardedNode(n))
			}
		}
		if h := in.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
		if p := in.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			proto = p
		}
	}
	node := "unknown"
	realIP := ""
	if trusted {
		realIP = in.Header.Get("X-Real-Ip")
	}
	if peer.IsValid() {
		xff = append(xff, peer.String())
		node = peer.String()
		if realIP == "" {
			realIP = peer.String()
		}
	}
	out.Header.Del("X-Real-Ip")
	if realIP != "" {
		out.Header.Set("X-Real-Ip", realIP)
	}
	out.Header.Set("X-Forwarded-For", strings.Join(xff, ", "))
	out.Header.Set("X-Forwarded-Host", host)
	out.Header.Set("X-Forwarded-Proto", proto)
	fwd = append(fwd, "for="+forwardedNode(node)+";host="+quoteIfNeeded(host)+";proto="+proto)
	out.Header.Set("Forwarded", strings.Join(fwd, ", "))
}

// forwardedNode renders an address for Forwarded's for=: IPv6 bracketed and quoted (RFC 7239 section 6).
func forwardedNode(s string) string {
	a, ok := parseNode(s)
	switch {
	case !ok:
		return quoteIfNeeded(s)
	case a.Is6():
		return `"[` + a.String() + `]"`
	}
	return a.String()
}

// quoteIfNeeded makes s an RFC 7230 token or quoted-string.
func quoteIfNeeded(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !isTokenChar(r) }) < 0 {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// splitHeaderList splits a comma-separated header value, trimming each entry.
func splitHeaderList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	out := strings.Split(v, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}
