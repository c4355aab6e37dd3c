package steer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Two ACME DNS-01 values (base64url SHA-256, as helpers validating at once would publish).
const (
	txtA = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	txtB = "f6A_lO4UHuUFPx2hv6Qt2Fdz4Wd_kA8ncmUrjpASSmY"
)

// txtValues asks server for name's TXT records and returns their values sorted, and the answers' TTLs.
func txtValues(t *testing.T, server, name string) (values []string, ttls []uint32) {
	t.Helper()
	r := query(t, server, name, dns.TypeTXT)
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		t.Fatalf("%s TXT at %s: %s", name, server, dns.RcodeToString[r.Rcode])
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			values = append(values, strings.Join(txt.Txt, ""))
			ttls = append(ttls, txt.Hdr.Ttl)
		}
	}
	slices.Sort(values)
	return values, ttls
}

// TestTXT publishes and removes ACME challenge values beside a site's addresses: several at once, each
// removed on its own, the serial growing with each change and the records in zone transfers.
func TestTXT(t *testing.T) {
	s := startServer(t, testConfig())
	addr := s.Addr().String()
	ctx := context.Background()
	const name = "_acme-challenge.www.example.test"
	mustSet(t, s, "www.example.test", Weighted{origin4, 1})

	if r := query(t, addr, name, dns.TypeTXT); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before publishing: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	serial := s.Serial()
	for _, v := range []string{txtA, txtB, txtA} { // the second txtA changes nothing
		if err := s.AddTXT(ctx, name, v); err != nil {
			t.Fatalf("AddTXT %s: %v", v, err)
		}
	}
	if s.Serial() != serial+2 {
		t.Errorf("serial %d after two new values, want %d", s.Serial(), serial+2)
	}
	values, ttls := txtValues(t, addr, name)
	if want := []string{txtA, txtB}; !slices.Equal(values, want) {
		t.Fatalf("TXT %v, want %v", values, want)
	}
	for _, ttl := range ttls {
		if ttl != uint32(TXTTTL.Seconds()) {
			t.Errorf("TXT TTL %d, want %v", ttl, TXTTTL)
		}
	}
	if r := query(t, addr, name, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("A at the challenge name: %s %v, want NODATA", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if got := lookup(t, addr, "www.example.test"); len(got) != 1 || got[0] != origin4 {
		t.Errorf("the site's addresses changed: %v", got)
	}

	if err := s.RemoveTXT(ctx, name, txtA); err != nil {
		t.Fatal(err)
	}
	if values, _ := txtValues(t, addr, name); !slices.Equal(values, []string{txtB}) {
		t.Fatalf("after removing one: %v", values)
	}
	if err := s.RemoveTXT(ctx, name, txtA); err != nil { // not published: ignored
		t.Fatal(err)
	}
	if err := s.RemoveTXT(ctx, name, txtB); err != nil {
		t.Fatal(err)
	}
	if r := query(t, addr, name, dns.TypeTXT); r.Rcode != dns.RcodeNameError {
		t.Errorf("after removing all: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if s.Serial() != serial+4 {
		t.Errorf("serial %d after four changes, want %d", s.Serial(), serial+4)
	}
}

func TestTXTErrors(t *testing.T) {
	s := startServer(t, testConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		name, value string
		want        error
	}{
		{"_acme-challenge.www.example.com", txtA, ErrOutsideZone},
		{"_acme-challenge.www example.test", txtA, ErrBadName},
		{"ns1.example.test", txtA, ErrReservedName},
		{"_acme-challenge.example.test", "", ErrBadTXT},
		{"_acme-challenge.example.test", "two words", ErrBadTXT},
		{"_acme-challenge.example.test", `quo"te`, ErrBadTXT},
		{"_acme-challenge.example.test", "tab\there", ErrBadTXT},
		{"_acme-challenge.example.test", strings.Repeat("x", MaxTXTLen+1), ErrBadTXT},
	} {
		if err := s.AddTXT(ctx, tc.name, tc.value); !errors.Is(err, tc.want) {
			t.Errorf("AddTXT(%q, %q): %v, want %v", tc.name, tc.value, err, tc.want)
		}
		if err := s.RemoveTXT(ctx, tc.name, tc.value); !errors.Is(err, tc.want) {
			t.Errorf("RemoveTXT(%q, %q): %v, want %v", tc.name, tc.value, err, tc.want)
		}
	}
	for i := range MaxTXTPerName {
		if err := s.AddTXT(ctx, "_acme-challenge.example.test", strings.Repeat("v", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddTXT(ctx, "_acme-challenge.example.test", "one-too-many"); !errors.Is(err, ErrTooManyTXT) {
		t.Errorf("value %d: %v, want %v", MaxTXTPerName+1, err, ErrTooManyTXT)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.AddTXT(cancelled, "_acme-challenge.example.test", txtA); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
