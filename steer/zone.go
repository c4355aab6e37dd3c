package steer

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Protocol limits of the responder.
const (
	// maxUDPSize is the largest UDP response sent and the size advertised in our OPT record: 1232 bytes fit
	// an IPv6 packet without fragmentation on any path (DNS Flag Day 2020). Larger answers are truncated (TC)
	// and the client retries over TCP.
	maxUDPSize = 1232
	// infraTTL is the TTL of the SOA and NS records and of in-zone name servers' addresses. They change
	// only with the configuration, and resolvers that cache them longer ask the parent zone less often.
	infraTTL = 3600
)

// snapshot is one version of the zone's published data. It is never modified once built: a change builds
// a new one, so handlers read it without locks.
type snapshot struct {
	serial uint32
	// records are the published names (canonical) and their sorted address sets.
	records map[string][]Weighted
	// txt are the names (canonical) with TXT records and their sorted values.
	txt map[string][]string
	// nodes are every name that exists in the zone: the apex, in-zone name servers, published names and
	// the names between them and the apex (empty non-terminals, which answer NODATA, not NXDOMAIN).
	nodes map[string]bool
}

func newSnapshot(z *zoneConfig, serial uint32, records map[string][]Weighted, txt map[string][]string) *snapshot {
	s := &snapshot{serial: serial, records: records, txt: txt, nodes: map[string]bool{z.origin: true}}
	add := func(name string) {
		for n := name; n != z.origin && !s.nodes[n]; {
			s.nodes[n] = true
			_, rest, _ := strings.Cut(n, ".") // host names have no escaped dots
			n = rest
		}
	}
	for n := range z.nsAddrs {
		add(n)
	}
	for n := range records {
		add(n)
	}
	for n := range txt {
		add(n)
	}
	return s
}

// addrsOf returns the address set answered for a canonical name and type (A or AAAA), and whether it is
// weighted (published) rather than a name server's configured addresses.
func (z *zoneConfig) addrsOf(s *snapshot, name string, qtype uint16) (set []Weighted, weighted bool) {
	want4 := qtype == dns.TypeA
	if addrs, ok := z.nsAddrs[name]; ok {
		for _, a := range addrs {
			if a.Is4() == want4 {
				set = append(set, Weighted{Addr: a, Weight: 1})
			}
		}
		return set, false
	}
	for _, w := range s.records[name] {
		if w.Addr.Is4() == want4 {
			set = append(set, w)
		}
	}
	return set, true
}

func (z *zoneConfig) soaRR(serial, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      z.mname,
		Mbox:    z.rname,
		Serial:  serial,
		Refresh: z.refresh,
		Retry:   z.retry,
		Expire:  z.expire,
		Minttl:  z.negTTL,
	}
}

func (z *zoneConfig) nsRRs(owner string) []dns.RR {
	rrs := make([]dns.RR, 0, len(z.ns))
	for _, n := range z.ns {
		rrs = append(rrs, &dns.NS{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: infraTTL}, Ns: n})
	}
	return rrs
}

func addrRR(owner string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// glue returns the addresses of in-zone name servers, for the additional section of NS answers.
func (z *zoneConfig) glue() []dns.RR {
	var rrs []dns.RR
	for _, n := range z.ns {
		for _, a := range z.nsAddrs[n] {
			rrs = append(rrs, addrRR(n, a, infraTTL))
		}
	}
	return rrs
}

// pickFunc orders and bounds a weighted address set for one answer.
type pickFunc func(set []Weighted, k int) []netip.Addr

// respond answers a query from snapshot s. udp says whether the answer goes over UDP, where it is
// truncated (TC set) to what the client accepts. Zone transfers are not its business (see xfr.go).
func (z *zoneConfig) respond(req *dns.Msg, s *snapshot, pick pickFunc, udp bool) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = false // never: this is no resolver

	udpSize := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(maxUDPSize, false)
		if opt.Version() != 0 {
			resp.Rcode = dns.RcodeBadVers // RFC 6891 6.1.3
			return resp
		}
		udpSize = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
	}
	defer func() {
		if udp {
			resp.Truncate(udpSize)
		}
		resp.Compress = true
	}()

	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode = dns.RcodeNotImplemented
		return resp
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(z.origin, name) {
		resp.Rcode = dns.RcodeRefused // not ours, and we never recurse or forward
		return resp
	}
	resp.Authoritative = true
	negative := func(rcode int) *dns.Msg {
		resp.Rcode = rcode
		resp.Ns = []dns.RR{z.soaRR(s.serial, z.negTTL)} // RFC 2308: the SOA's TTL bounds negative caching
		return resp
	}
	if !s.nodes[name] {
		return negative(dns.RcodeNameError)
	}

	apex := name == z.origin
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		set, weighted := z.addrsOf(s, name, q.Qtype)
		ttl := uint32(infraTTL)
		addrs := make([]netip.Addr, 0, len(set))
		if weighted {
			ttl = z.ttl
			addrs = pick(set, z.maxAnswers)
		} else {
			for _, w := range set {
				addrs = append(addrs, w.Addr)
			}
		}
		for _, a := range addrs {
			resp.Answer = append(resp.Answer, addrRR(q.Name, a, ttl))
		}
	case dns.TypeTXT:
		for _, v := range s.txt[name] {
			resp.Answer = append(resp.Answer, txtRR(q.Name, v, uint32(TXTTTL/time.Second)))
		}
	case dns.TypeSOA:
		if apex {
			soa := z.soaRR(s.serial, infraTTL)
			soa.Hdr.Name = q.Name
			resp.Answer = []dns.RR{soa}
		}
	case dns.TypeNS:
		if apex {
			resp.Answer = z.nsRRs(q.Name)
			resp.Extra = append(z.glue(), resp.Extra...) // keep the OPT record last
		}
	case dns.TypeANY:
		// RFC 8482: answer ANY with one synthesized HINFO instead of every RRset.
		resp.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: z.ttl},
			Cpu: "RFC8482",
		}}
	}
	if len(resp.Answer) == 0 {
		return negative(dns.RcodeSuccess) // NODATA
	}
	return resp
}
