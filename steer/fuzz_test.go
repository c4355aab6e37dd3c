package steer

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds arbitrary DNS messages to the responder: it must not panic, must answer with a
// message that packs, never claims recursion, and never answers (AA) outside its zone.
func FuzzRespond(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"www.example.test.", dns.TypeA, false},
		{"www.example.test.", dns.TypeAAAA, true},
		{"example.test.", dns.TypeNS, true},
		{"example.test.", dns.TypeSOA, false},
		{"nope.example.test.", dns.TypeA, false},
		{"b.example.test.", dns.TypeMX, false},
		{"example.com.", dns.TypeA, true},
		{"www.example.test.", dns.TypeANY, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(4096, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	cfg := testConfig()
	z, err := cfg.check()
	if err != nil {
		f.Fatal(err)
	}
	snap := newSnapshot(z, 7, map[string][]Weighted{
		"www.example.test.": {{origin4, 1}, {origin6, 2}, {helperA, 3}},
		"a.b.example.test.": {{helperB, 1}},
		"example.test.":     {{origin4, 1}},
		"big.example.test.": bigSet(200),
	}, map[string][]string{
		"_acme-challenge.www.example.test.": {"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "x"},
	})
	pick := newPicker(nil).pick
	f.Fuzz(func(t *testing.T, b []byte, udp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return
		}
		resp := z.respond(req, snap, pick, udp)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, resp)
		}
		if udp && len(out) > maxUDPSize {
			t.Fatalf("UDP answer of %d bytes", len(out))
		}
		if resp.RecursionAvailable {
			t.Fatal("RA set")
		}
		if resp.Authoritative && len(req.Question) == 1 && !dns.IsSubDomain(z.origin, dns.CanonicalName(req.Question[0].Name)) {
			t.Fatalf("authoritative answer for %q", req.Question[0].Name)
		}
	})
}

func bigSet(n int) []Weighted {
	set := make([]Weighted, n)
	for i := range set {
		set[i] = Weighted{netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), uint32(i + 1)}
	}
	return set
}
