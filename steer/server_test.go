package steer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// TestAnswers checks every kind of answer of the embedded server over real sockets.
func TestAnswers(t *testing.T) {
	s := startServer(t, testConfig())
	ctx := context.Background()
	mustSet(t, s, "www.example.test", Weighted{origin4, 1}, Weighted{origin6, 1})
	mustSet(t, s, "example.test.", Weighted{origin4, 1})
	mustSet(t, s, "a.b.example.test", Weighted{helperA, 1})
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	soaSerial := s.Serial()

	type want struct {
		rcode  int
		aa     bool
		answer []string // RR strings of the answer section, in order
		ns     []string // types of the authority section
		extra  []string // RR strings of the additional section, OPT excluded
	}
	soaNeg := []string{"SOA"}
	tests := []struct {
		name   string
		netw   string
		qname  string
		qtype  uint16
		qclass uint16
		opcode int
		opt    bool  // send an OPT record (EDNS)
		ednsV  uint8 // its EDNS version
		want   want
	}{
		{name: "A", qname: "www.example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"www.example.test.\t30\tIN\tA\t192.0.2.1"}}},
		{name: "AAAA", qname: "www.example.test.", qtype: dns.TypeAAAA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"www.example.test.\t30\tIN\tAAAA\t2001:db8::1"}}},
		{name: "A over TCP", netw: "tcp", qname: "www.example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"www.example.test.\t30\tIN\tA\t192.0.2.1"}}},
		{name: "owner keeps the query's case (0x20)", qname: "wWw.ExAmple.TEST.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"wWw.ExAmple.TEST.\t30\tIN\tA\t192.0.2.1"}}},
		{name: "A at apex", qname: "example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"example.test.\t30\tIN\tA\t192.0.2.1"}}},
		{name: "NODATA AAAA at apex", qname: "example.test.", qtype: dns.TypeAAAA,
			want: want{rcode: dns.RcodeSuccess, aa: true, ns: soaNeg}},
		{name: "NODATA MX", qname: "www.example.test.", qtype: dns.TypeMX,
			want: want{rcode: dns.RcodeSuccess, aa: true, ns: soaNeg}},
		{name: "NODATA empty non-terminal", qname: "b.example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeSuccess, aa: true, ns: soaNeg}},
		{name: "NODATA SOA below apex", qname: "www.example.test.", qtype: dns.TypeSOA,
			want: want{rcode: dns.RcodeSuccess, aa: true, ns: soaNeg}},
		{name: "SOA", qname: "example.test.", qtype: dns.TypeSOA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{
				fmt.Sprintf("example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. %d 3600 600 1209600 30", soaSerial)}}},
		{name: "NS with glue", qname: "example.test.", qtype: dns.TypeNS,
			want: want{rcode: dns.RcodeSuccess, aa: true,
				answer: []string{"example.test.\t3600\tIN\tNS\tns1.example.test.", "example.test.\t3600\tIN\tNS\tns.elsewhere.test."},
				extra:  []string{"ns1.example.test.\t3600\tIN\tA\t192.0.2.53", "ns1.example.test.\t3600\tIN\tAAAA\t2001:db8::53"}}},
		{name: "name server address", qname: "ns1.example.test.", qtype: dns.TypeAAAA,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"ns1.example.test.\t3600\tIN\tAAAA\t2001:db8::53"}}},
		{name: "NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeNameError, aa: true, ns: soaNeg}},
		{name: "NXDOMAIN below a name", qname: "x.www.example.test.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeNameError, aa: true, ns: soaNeg}},
		{name: "ANY gets RFC 8482 HINFO", qname: "www.example.test.", qtype: dns.TypeANY,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"www.example.test.\t30\tIN\tHINFO\t\"RFC8482\" \"\""}}},
		{name: "REFUSED outside the zone", qname: "www.example.com.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeRefused}},
		{name: "REFUSED parent of the zone", qname: "test.", qtype: dns.TypeNS,
			want: want{rcode: dns.RcodeRefused}},
		{name: "REFUSED root", qname: ".", qtype: dns.TypeNS,
			want: want{rcode: dns.RcodeRefused}},
		{name: "REFUSED over TCP too", netw: "tcp", qname: "example.org.", qtype: dns.TypeA,
			want: want{rcode: dns.RcodeRefused}},
		{name: "REFUSED class CHAOS", qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS,
			want: want{rcode: dns.RcodeRefused}},
		{name: "EDNS answer", qname: "www.example.test.", qtype: dns.TypeA, opt: true,
			want: want{rcode: dns.RcodeSuccess, aa: true, answer: []string{"www.example.test.\t30\tIN\tA\t192.0.2.1"}}},
		{name: "EDNS version 1 gets BADVERS", qname: "www.example.test.", qtype: dns.TypeA, opt: true, ednsV: 1,
			want: want{rcode: dns.RcodeBadVers}},
		{name: "NOTIFY not implemented", qname: "example.test.", qtype: dns.TypeSOA, opcode: dns.OpcodeNotify,
			want: want{rcode: dns.RcodeNotImplemented}},
		{name: "UPDATE not implemented", qname: "example.test.", qtype: dns.TypeSOA, opcode: dns.OpcodeUpdate,
			want: want{rcode: dns.RcodeNotImplemented}},
		{name: "AXFR over UDP refused", qname: "example.test.", qtype: dns.TypeAXFR,
			want: want{rcode: dns.RcodeRefused}},
		{name: "AXFR from a client not allowed", netw: "tcp", qname: "example.test.", qtype: dns.TypeAXFR,
			want: want{rcode: dns.RcodeRefused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			m.RecursionDesired = true // a stub resolver's query: must still get no recursion
			if tc.qclass != 0 {
				m.Question[0].Qclass = tc.qclass
			}
			if tc.opcode != 0 {
				m.Opcode = tc.opcode
			}
			if tc.opt {
				m.SetEdns0(1232, false)
				m.IsEdns0().SetVersion(tc.ednsV)
			}
			netw := tc.netw
			if netw == "" {
				netw = "udp"
			}
			r := exchange(t, netw, addr, m)
			if r.Rcode != tc.want.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.want.rcode], r)
			}
			if r.RecursionAvailable {
				t.Errorf("RA set: the server must never offer recursion")
			}
			if r.Authoritative != tc.want.aa {
				t.Errorf("AA = %v, want %v", r.Authoritative, tc.want.aa)
			}
			if r.Truncated {
				t.Errorf("TC set on a small answer")
			}
			if tc.opcode == 0 && !r.RecursionDesired {
				t.Errorf("RD not copied from the query")
			}
			if got := rrStrings(r.Answer); !slices.Equal(got, tc.want.answer) {
				t.Errorf("answer:\n%q\nwant\n%q", got, tc.want.answer)
			}
			var nsTypes []string
			for _, rr := range r.Ns {
				nsTypes = append(nsTypes, dns.TypeToString[rr.Header().Rrtype])
				if soa, ok := rr.(*dns.SOA); ok {
					if soa.Hdr.Ttl != 30 || soa.Minttl != 30 || soa.Serial != soaSerial {
						t.Errorf("negative SOA: TTL %d, MINIMUM %d, serial %d; want 30, 30, %d", soa.Hdr.Ttl, soa.Minttl, soa.Serial, soaSerial)
					}
				}
			}
			if !slices.Equal(nsTypes, tc.want.ns) {
				t.Errorf("authority types %q, want %q", nsTypes, tc.want.ns)
			}
			var extra []dns.RR
			for _, rr := range r.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					extra = append(extra, rr)
				}
			}
			if got := rrStrings(extra); !slices.Equal(got, tc.want.extra) {
				t.Errorf("additional:\n%q\nwant\n%q", got, tc.want.extra)
			}
			if tc.opt != (r.IsEdns0() != nil) {
				t.Errorf("OPT in reply %v, in query %v", r.IsEdns0() != nil, m.IsEdns0() != nil)
			}
		})
	}
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func mustSet(t *testing.T, p Publisher, name string, addrs ...Weighted) {
	t.Helper()
	if err := p.Set(context.Background(), name, addrs); err != nil {
		t.Fatalf("Set %s: %v", name, err)
	}
}

// TestTruncation: an answer too big for UDP comes with TC set, and the client gets it whole over TCP.
func TestTruncation(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAnswers = 60
	s := startServer(t, cfg)
	var set []Weighted
	for i := range 60 {
		set = append(set, Weighted{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 1})
	}
	mustSet(t, s, "big.example.test", set...)
	addr := s.Addr().String()

	plain := query(t, addr, "big.example.test", dns.TypeAAAA)
	plain.Compress = true // Len then measures what came over the wire
	if !plain.Truncated || plain.Len() > dns.MinMsgSize {
		t.Errorf("UDP without EDNS: TC %v, %d bytes; want TC and at most 512 bytes", plain.Truncated, plain.Len())
	}
	m := new(dns.Msg)
	m.SetQuestion("big.example.test.", dns.TypeAAAA)
	m.SetEdns0(4096, false)
	withEDNS := exchange(t, "udp", addr, m)
	withEDNS.Compress = true
	if !withEDNS.Truncated || withEDNS.Len() > maxUDPSize || withEDNS.IsEdns0() == nil {
		t.Errorf("UDP with EDNS 4096: TC %v, %d bytes, OPT %v; want TC, at most %d bytes, OPT", withEDNS.Truncated, withEDNS.Len(), withEDNS.IsEdns0() != nil, maxUDPSize)
	}
	m.Question[0].Name = "big.example.test."
	overTCP := exchange(t, "tcp", addr, m)
	if overTCP.Truncated || len(overTCP.Answer) != 60 {
		t.Errorf("TCP: TC %v, %d answers; want the whole 60", overTCP.Truncated, len(overTCP.Answer))
	}
	if got := addrsIn(overTCP.Answer); len(got) != 60 {
		t.Errorf("TCP answer holds %d addresses", len(got))
	}
	// The default MaxAnswers keeps plain UDP answers whole.
	s2 := startServer(t, testConfig())
	mustSet(t, s2, "big.example.test", set...)
	r := query(t, s2.Addr().String(), "big.example.test", dns.TypeAAAA)
	if r.Truncated || len(r.Answer) != DefaultMaxAnswers {
		t.Errorf("default MaxAnswers over UDP: TC %v, %d answers; want no TC and %d", r.Truncated, len(r.Answer), DefaultMaxAnswers)
	}
}

// TestWeightedOrder checks the draw itself: the first address follows the weights, and every draw returns
// distinct addresses.
func TestWeightedOrder(t *testing.T) {
	set := []Weighted{{origin4, 1}, {helperA, 2}, {helperB, 7}}
	r := rand.New(rand.NewPCG(7, 7))
	const n = 100_000
	first := map[netip.Addr]int{}
	for range n {
		got := weightedOrder(r, set, 3)
		if len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
			t.Fatalf("draw %v: want the 3 addresses once each", got)
		}
		first[got[0]]++
	}
	for _, w := range set {
		share := float64(first[w.Addr]) / n
		want := float64(w.Weight) / 10
		// With n = 100,000 the standard deviation of a share is below 0.0016; 0.01 is over 6 of them.
		if math.Abs(share-want) > 0.01 {
			t.Errorf("%s first in %.3f of draws, want %.2f", w.Addr, share, want)
		}
	}
	if got := weightedOrder(r, set, 2); len(got) != 2 {
		t.Errorf("k=2: got %d addresses", len(got))
	}
	if got := weightedOrder(r, set, 10); len(got) != 3 {
		t.Errorf("k=10 of 3: got %d addresses", len(got))
	}
	if got := weightedOrder(r, nil, 3); len(got) != 0 {
		t.Errorf("empty set: got %v", got)
	}
	// Weights near the uint32 limit must not overflow the sum.
	big := []Weighted{{origin4, math.MaxUint32}, {helperA, math.MaxUint32}, {helperB, 1}}
	if got := weightedOrder(r, big, 3); len(got) != 3 {
		t.Errorf("huge weights: got %v", got)
	}
}

// TestWeightedAnswers checks the distribution over the wire with the seeded RNG: the helper with most
// spare capacity comes first most often, every answer holds the whole set.
func TestWeightedAnswers(t *testing.T) {
	s := startServer(t, testConfig())
	set := []Weighted{{origin4, 1}, {helperA, 3}, {helperB, 6}}
	mustSet(t, s, "www.example.test", set...)
	addr := s.Addr().String()
	const n = 500
	first := map[netip.Addr]int{}
	for range n {
		r := query(t, addr, "www.example.test", dns.TypeA)
		got := addrsIn(r.Answer)
		if len(got) != 3 {
			t.Fatalf("answer %v: want all 3 addresses", got)
		}
		first[got[0]]++
	}
	for _, w := range set {
		share := float64(first[w.Addr]) / n
		want := float64(w.Weight) / 10
		// The standard deviation of a share over 500 answers is at most 0.023; 0.08 is over 3.5 of them,
		// and the seed makes the run repeatable anyway.
		if math.Abs(share-want) > 0.08 {
			t.Errorf("%s first in %.3f of answers, want %.2f", w.Addr, share, want)
		}
	}
	t.Logf("first-answer counts over %d queries: %v", n, first)
}

// TestSetWithdraw: changes are live for the next query and bump the serial; weight-only changes do not.
func TestSetWithdraw(t *testing.T) {
	s := startServer(t, testConfig())
	ctx := context.Background()
	addr := s.Addr().String()
	answer := func() []netip.Addr {
		t.Helper()
		r := query(t, addr, "www.example.test", dns.TypeA)
		got := addrsIn(r.Answer)
		slices.SortFunc(got, netip.Addr.Compare)
		return got
	}
	soaSerial := func() uint32 {
		t.Helper()
		r := query(t, addr, "example.test", dns.TypeSOA)
		return r.Answer[0].(*dns.SOA).Serial
	}
	serial := soaSerial()
	if serial != s.Serial() {
		t.Fatalf("SOA serial %d, Serial() %d", serial, s.Serial())
	}
	if r := query(t, addr, "www.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before Set: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}

	steps := []struct {
		name       string
		do         func() error
		want       []netip.Addr
		serialStep uint32
	}{
		{"normal: origin only", func() error { return s.Set(ctx, "www.example.test", []Weighted{{origin4, 5}}) },
			[]netip.Addr{origin4}, 1},
		{"crowd: origin and helpers", func() error {
			return s.Set(ctx, "www.example.test", []Weighted{{origin4, 1}, {helperA, 4}, {helperB, 4}})
		}, []netip.Addr{origin4, helperA, helperB}, 1},
		{"weights only", func() error {
			return s.Set(ctx, "www.example.test", []Weighted{{helperB, 9}, {origin4, 1}, {helperA, 2}})
		}, []netip.Addr{origin4, helperA, helperB}, 0},
		{"same set again", func() error {
			return s.Set(ctx, "www.example.test", []Weighted{{helperB, 9}, {origin4, 1}, {helperA, 2}})
		}, []netip.Addr{origin4, helperA, helperB}, 0},
		{"helper fails its health check", func() error { return s.Withdraw(ctx, "www.example.test", helperA) },
			[]netip.Addr{origin4, helperB}, 1},
		{"withdraw an absent address", func() error { return s.Withdraw(ctx, "www.example.test", helperA) },
			[]netip.Addr{origin4, helperB}, 0},
		{"withdraw nothing", func() error { return s.Withdraw(ctx, "www.example.test") },
			[]netip.Addr{origin4, helperB}, 0},
		{"crowd ends", func() error { return s.Withdraw(ctx, "www.example.test", helperB) },
			[]netip.Addr{origin4}, 1},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := answer(); !slices.Equal(got, st.want) {
			t.Errorf("%s: answer %v, want %v", st.name, got, st.want)
		}
		if got := soaSerial(); got != serial+st.serialStep {
			t.Errorf("%s: serial %d, want %d", st.name, got, serial+st.serialStep)
		}
		serial = soaSerial()
	}
	if err := s.Withdraw(ctx, "www.example.test", origin4); err != nil {
		t.Fatal(err)
	}
	if r := query(t, addr, "www.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after withdrawing the last address: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if s.Serial() != serial+1 {
		t.Errorf("serial %d after removing the name, want %d", s.Serial(), serial+1)
	}
}

func TestSetErrors(t *testing.T) {
	s, err := NewServer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tooMany := make([]Weighted, MaxAddrsPerName+1)
	for i := range tooMany {
		tooMany[i] = Weighted{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1}
	}
	tests := []struct {
		name  string
		qname string
		addrs []Weighted
		want  error
	}{
		{"outside the zone", "www.example.com", []Weighted{{origin4, 1}}, ErrOutsideZone},
		{"zone's parent", "test", []Weighted{{origin4, 1}}, ErrOutsideZone},
		{"empty name", "", []Weighted{{origin4, 1}}, ErrBadName},
		{"wildcard", "*.example.test", []Weighted{{origin4, 1}}, ErrBadName},
		{"space", "w w.example.test", []Weighted{{origin4, 1}}, ErrBadName},
		{"name server", "ns1.example.test", []Weighted{{origin4, 1}}, ErrReservedName},
		{"zero weight", "www.example.test", []Weighted{{origin4, 0}}, ErrZeroWeight},
		{"invalid address", "www.example.test", []Weighted{{netip.Addr{}, 1}}, ErrBadAddr},
		{"zoned address", "www.example.test", []Weighted{{netip.MustParseAddr("fe80::1%eth0"), 1}}, ErrBadAddr},
		{"duplicate", "www.example.test", []Weighted{{origin4, 1}, {origin4, 2}}, ErrDuplicateAddr},
		{"duplicate via IPv4-mapped", "www.example.test",
			[]Weighted{{origin4, 1}, {netip.AddrFrom16(origin4.As16()), 2}}, ErrDuplicateAddr},
		{"too many", "www.example.test", tooMany, ErrTooManyAddrs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Set(context.Background(), tc.qname, tc.addrs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Set: %v, want %v", err, tc.want)
			}
			t.Logf("error reads: %v", err)
		})
	}
	if s.Serial() != s.snap.Load().serial || len(s.snap.Load().records) != 0 {
		t.Errorf("a failed Set changed the zone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Set(ctx, "www.example.test", []Weighted{{origin4, 1}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a canceled context: %v", err)
	}
	if err := s.Withdraw(context.Background(), "www.example.test", netip.Addr{}); !errors.Is(err, ErrBadAddr) {
		t.Errorf("Withdraw of an invalid address: %v", err)
	}
}

func TestMaxNames(t *testing.T) {
	s, err := NewServer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range MaxNames {
		if err := s.Set(context.Background(), fmt.Sprintf("n%d.example.test", i), []Weighted{{origin4, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(context.Background(), "one-more.example.test", []Weighted{{origin4, 1}}); !errors.Is(err, ErrTooManyNames) {
		t.Fatalf("name %d: %v, want ErrTooManyNames", MaxNames+1, err)
	}
	if err := s.Set(context.Background(), "n0.example.test", []Weighted{{helperA, 1}}); err != nil {
		t.Errorf("changing an existing name at the limit: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	s, err := NewServer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if r := query(t, s.Addr().String(), "example.test", dns.TypeSOA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("SOA: %s", dns.RcodeToString[r.Rcode])
	}
	if err := s.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Run returned: %v, want ErrClosed", err)
	}
	// The port is free again.
	s2, err := NewServer(ServerConfig{Zone: "example.test", Addr: s.Addr().String(), NameServers: testConfig().NameServers})
	if err != nil {
		t.Fatalf("rebinding %s after Run: %v", s.Addr(), err)
	}
	if err := s2.Close(); err != nil {
		t.Errorf("Close without Run: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := NewServer(ServerConfig{Zone: "example.test", Addr: "192.0.2.1:0", NameServers: testConfig().NameServers}); err == nil {
		t.Errorf("NewServer on an address not on this host succeeded")
	}
}

// TestConcurrentChanges: queries over both transports during a stream of changes always see one whole
// version of the set (run under -race).
func TestConcurrentChanges(t *testing.T) {
	s := startServer(t, testConfig())
	ctx := context.Background()
	mustSet(t, s, "www.example.test", Weighted{origin4, 1})
	addr := s.Addr().String()
	errc := make(chan error, 8)
	stop := make(chan struct{})
	var answered atomic.Int64
	for i := range 4 {
		netw := []string{"udp", "tcp"}[i%2]
		go func() {
			c := &dns.Client{Net: netw}
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion("www.example.test.", dns.TypeA)
				r, _, err := c.Exchange(m, addr)
				if err != nil {
					errc <- err
					return
				}
				got := addrsIn(r.Answer)
				slices.SortFunc(got, netip.Addr.Compare)
				if !slices.Equal(got, []netip.Addr{origin4}) && !slices.Equal(got, []netip.Addr{origin4, helperA, helperB}) {
					errc <- fmt.Errorf("torn answer %v", got)
					return
				}
				answered.Add(1)
			}
		}()
	}
	for i := 0; i < 200 || answered.Load() < 400 && i < 100_000; i++ {
		mustSet(t, s, "www.example.test", Weighted{origin4, 1}, Weighted{helperA, 2}, Weighted{helperB, 3})
		if err := s.Withdraw(ctx, "www.example.test", helperA, helperB); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
