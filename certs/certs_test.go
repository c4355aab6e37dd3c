package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/internal/pebbletest"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/steer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

// startDNS runs an embedded authoritative server for example.test on loopback until the test ends.
func startDNS(t *testing.T) *steer.Server {
	t.Helper()
	s, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0",
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}},
		Logger:      testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func txt(t *testing.T, s *steer.Server, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, err := dns.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out
}

// publisher publishes challenges straight into the embedded server, as the site's gateway does on a
// helper's request, and counts what it was asked.
type publisher struct {
	dns            *steer.Server
	added, removed atomic.Int32
}

func (p *publisher) publish(ctx context.Context, name, value string, present bool) error {
	if !present {
		p.removed.Add(1)
		return p.dns.RemoveTXT(ctx, "_acme-challenge."+name, value)
	}
	p.added.Add(1)
	return p.dns.AddTXT(ctx, "_acme-challenge."+name, value)
}

// TestObtainFromPebble gets a certificate for a name from a real ACME server (Debian's pebble) by DNS-01
// through the embedded DNS server, then reuses it from memory and from disk, and renews it near expiry.
func TestObtainFromPebble(t *testing.T) {
	dnsSrv := startDNS(t)
	pb := pebbletest.Start(t, dnsSrv.Addr().String())
	dir := t.TempDir()
	newManager := func() *Manager {
		m, err := New(Config{Directory: pb.Directory, Roots: pb.Roots, Email: "ops@example.test", Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	m := newManager()
	p := &publisher{dns: dnsSrv}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "www.example.test"

	if m.Get(name) != nil {
		t.Fatal("a certificate before any was obtained")
	}
	start := time.Now()
	c, err := m.Obtain(ctx, name, p.publish)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	t.Logf("first certificate from pebble (account registration included) in %v", time.Since(start).Round(time.Millisecond))
	checkCert(t, c, name, pb.IssuerRoots)
	if p.added.Load() != 1 || p.removed.Load() != 1 {
		t.Errorf("challenges published %d, removed %d; want 1 and 1", p.added.Load(), p.removed.Load())
	}
	if v := txt(t, dnsSrv, "_acme-challenge."+name); len(v) != 0 {
		t.Errorf("challenge record left behind: %v", v)
	}
	if m.Get(name) != c || m.Get(strings.ToUpper(name)+".") != c {
		t.Error("Get does not hand out the obtained certificate")
	}

	// Reused from memory, then by another manager (a restarted helper) from disk: no new challenge.
	if again, err := m.Obtain(ctx, name, p.publish); err != nil || again != c {
		t.Fatalf("second Obtain: %v (same certificate: %v)", err, again == c)
	}
	restarted := newManager()
	fromDisk, err := restarted.Obtain(ctx, name, p.publish)
	if err != nil || string(fromDisk.Certificate[0]) != string(c.Certificate[0]) {
		t.Fatalf("Obtain after restart: %v (same certificate: %v)", err, err == nil && string(fromDisk.Certificate[0]) == string(c.Certificate[0]))
	}
	if p.added.Load() != 1 {
		t.Errorf("a reused certificate published %d challenges", p.added.Load()-1)
	}

	// Near expiry it is renewed.
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	restarted.now = func() time.Time { return c.Leaf.NotAfter.Add(-life / 4) }
	start = time.Now()
	renewed, err := restarted.Obtain(ctx, name, p.publish)
	if err != nil {
		t.Fatalf("renewal: %v", err)
	}
	t.Logf("renewal with a registered account in %v", time.Since(start).Round(time.Millisecond))
	// RFC 8555 7.4 lets a CA reuse a valid authorization; pebble does so for 1 order in 100 even at
	// PEBBLE_AUTHZREUSE=0 (it reuses when rand.Intn(100) is not above the percentage), so the renewal
	// publishes one challenge or none.
	if renewed.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) == 0 {
		t.Errorf("not renewed: serial %v", renewed.Leaf.SerialNumber)
	}
	if n := p.added.Load(); n == 1 {
		t.Log("the CA reused the first order's authorization: the renewal published no challenge")
	} else if n != 2 || p.removed.Load() != 2 {
		t.Errorf("renewal published %d challenges and removed %d; want 1 and 1", n-1, p.removed.Load()-1)
	}
	checkCert(t, renewed, name, pb.IssuerRoots)

	// A name outside the DNS zone fails validation and leaves nothing behind; a bad name fails at once.
	if _, err := m.Obtain(ctx, "www.example.com", p.publish); err == nil {
		t.Error("Obtain for a name whose challenge cannot be published succeeded")
	} else {
		t.Logf("outside the zone: %v", err)
	}
	for _, bad := range []string{"localhost", "*.example.test", "../etc.example.test", "a..example.test", "-a.example.test"} {
		if _, err := m.Obtain(ctx, bad, p.publish); !errors.Is(err, ErrBadName) {
			t.Errorf("Obtain(%q): %v, want %v", bad, err, ErrBadName)
		}
	}
}

func checkCert(t *testing.T, c *tls.Certificate, name string, roots *x509.CertPool) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, d := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("certificate does not verify for %s under pebble's root: %v", name, err)
	}
	if len(c.Leaf.DNSNames) != 1 || c.Leaf.DNSNames[0] != name {
		t.Errorf("SANs %v, want [%s]", c.Leaf.DNSNames, name)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Dir: t.TempDir()},
		{Directory: "http://127.0.0.1/dir", Dir: t.TempDir()},
		{Directory: "https://127.0.0.1/dir"},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("New(%+v): %v, want %v", cfg, err, ErrBadConfig)
		}
	}
}
