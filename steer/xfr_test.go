package steer

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// transferIn runs a zone transfer of example.test. from addr and returns every record received.
func transferIn(t *testing.T, addr string, m *dns.Msg) ([]dns.RR, error) {
	t.Helper()
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return rrs, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

func TestTransfer(t *testing.T) {
	cfg := testConfig()
	cfg.TransferFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s := startServer(t, cfg)
	mustSet(t, s, "www.example.test", Weighted{origin4, 1}, Weighted{helperA, 9}, Weighted{origin6, 2})
	mustSet(t, s, "example.test", Weighted{origin4, 1})
	if err := s.AddTXT(context.Background(), "_acme-challenge.www.example.test", txtA); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()

	axfr := new(dns.Msg)
	axfr.SetAxfr("example.test.")
	rrs, err := transferIn(t, addr, axfr)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	want := []string{
		"example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. SERIAL 3600 600 1209600 30",
		"example.test.\t3600\tIN\tNS\tns1.example.test.",
		"example.test.\t3600\tIN\tNS\tns.elsewhere.test.",
		"ns1.example.test.\t3600\tIN\tA\t192.0.2.53",
		"ns1.example.test.\t3600\tIN\tAAAA\t2001:db8::53",
		"example.test.\t30\tIN\tA\t192.0.2.1",
		"www.example.test.\t30\tIN\tA\t192.0.2.1",
		"www.example.test.\t30\tIN\tA\t198.51.100.2",
		"www.example.test.\t30\tIN\tAAAA\t2001:db8::1",
		"_acme-challenge.www.example.test.\t10\tIN\tTXT\t\"" + txtA + "\"",
		"example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. SERIAL 3600 600 1209600 30",
	}
	serial := s.Serial()
	for i := range want {
		want[i] = strings.Replace(want[i], "SERIAL", itoa(serial), 1)
	}
	if got := rrStrings(rrs); !slices.Equal(got, want) {
		t.Errorf("AXFR:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A zone of 250 names spans several messages.
	var many []Weighted
	for i := range 250 {
		many = append(many, Weighted{netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 1})
	}
	mustSet(t, s, "many.example.test", many...)
	rrs, err = transferIn(t, addr, axfr)
	if err != nil || len(rrs) != len(want)+250 {
		t.Errorf("AXFR of a multi-message zone: %d records, %v; want %d", len(rrs), err, len(want)+250)
	}

	ixfr := func(theirs uint32) *dns.Msg {
		m := new(dns.Msg)
		m.SetIxfr("example.test.", theirs, "ns1.example.test.", "hostmaster.example.test.")
		return m
	}
	rrs, err = transferIn(t, addr, ixfr(s.Serial()))
	if err != nil || len(rrs) != 1 || rrs[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("IXFR when up to date: %v, %v; want the single SOA", rrStrings(rrs), err)
	}
	rrs, err = transferIn(t, addr, ixfr(s.Serial()-1))
	if err != nil || len(rrs) != len(want)+250 {
		t.Errorf("IXFR when behind: %d records, %v; want the whole zone (%d)", len(rrs), err, len(want)+250)
	}
	r := exchange(t, "udp", addr, ixfr(s.Serial()-1))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != s.Serial() {
		t.Errorf("IXFR over UDP: %v; want the single current SOA", r)
	}

	other := new(dns.Msg)
	other.SetAxfr("www.example.test.")
	if _, err := transferIn(t, addr, other); err == nil {
		t.Errorf("AXFR of a name that is not the zone succeeded")
	}
}

func TestTransferNotAllowed(t *testing.T) {
	cfg := testConfig()
	cfg.TransferFrom = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	s := startServer(t, cfg)
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	rrs, err := transferIn(t, s.Addr().String(), m)
	if err == nil || len(rrs) != 0 {
		t.Fatalf("AXFR from 127.0.0.1, allowed only 10/8 and ::1: %d records, err %v", len(rrs), err)
	}
	t.Logf("refused: %v", err)
}

// TestNotify: a secondary gets a NOTIFY at start and after every change, with the new serial.
func TestNotify(t *testing.T) {
	type note struct {
		serial uint32
		ok     bool
	}
	notes := make(chan note, 16)
	secondary := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n := note{}
		if len(r.Answer) == 1 {
			if soa, ok := r.Answer[0].(*dns.SOA); ok {
				n.serial = soa.Serial
			}
		}
		n.ok = r.Opcode == dns.OpcodeNotify && r.Authoritative && len(r.Question) == 1 &&
			r.Question[0].Name == "example.test." && r.Question[0].Qtype == dns.TypeSOA
		m := new(dns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
		notes <- n
	})}
	started := make(chan struct{})
	secondary.NotifyStartedFunc = func() { close(started) }
	served := make(chan error, 1)
	go func() { served <- secondary.ListenAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = secondary.Shutdown()
		<-served
	})
	at := netip.MustParseAddrPort(secondary.PacketConn.LocalAddr().String())

	cfg := testConfig()
	cfg.NotifyTo = []netip.AddrPort{at}
	cfg.TransferFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s := startServer(t, cfg)
	expect := func(serial uint32) {
		t.Helper()
		select {
		case n := <-notes:
			if !n.ok || n.serial != serial {
				t.Fatalf("NOTIFY %+v, want a well-formed one for serial %d", n, serial)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no NOTIFY for serial %d", serial)
		}
	}
	expect(s.Serial())
	mustSet(t, s, "www.example.test", Weighted{origin4, 1})
	expect(s.Serial())
	if err := s.Withdraw(context.Background(), "www.example.test", origin4); err != nil {
		t.Fatal(err)
	}
	expect(s.Serial())
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
