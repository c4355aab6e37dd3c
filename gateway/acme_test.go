package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/pebbletest"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/webseed"
)

// challengeValue is a well-formed ACME DNS-01 TXT value.
const challengeValue = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

// challengeTXT asks our DNS server for the TXT values published for name's ACME challenges.
func challengeTXT(t *testing.T, server netip.AddrPort, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("_acme-challenge."+name), dns.TypeTXT)
	r, err := dns.Exchange(m, server.String())
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out
}

// postEnvelope posts a raw federation message to a member and returns the HTTP status.
func postEnvelope(t *testing.T, memberURL string, body []byte) int {
	t.Helper()
	resp, err := http.Post(memberURL+federation.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	t.Logf("%d %s", resp.StatusCode, bytes.TrimSpace(msg))
	return resp.StatusCode
}

func sealed(t *testing.T, key []byte, from, to string, m federation.Message) []byte {
	t.Helper()
	b, err := federation.Seal(key, from, to, m.Kind(), m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testDNS is an embedded DNS server for example.test with a 1 s TTL, for the site's gateway to run.
func testDNS(t *testing.T) *steer.Server {
	t.Helper()
	s, err := steer.NewServer(steer.ServerConfig{Zone: "example.test", Addr: "127.0.0.1:0", TTL: time.Second,
		NameServers: []steer.NameServer{{Name: "ns1.example.test", Addrs: addrs("127.0.0.1")}}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChallengeRefused: the site's gateway publishes no ACME challenge for a message that is unsigned or
// forged, from a member it has not recruited, or for a name that is not the site's.
func TestChallengeRefused(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2")
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	keys, fed := newFederation(t, port, "alpha", "beta")
	dnsSrv := testDNS(t)
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port)},
		Site:       gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: &gateway.FederationConfig{Key: keys["alpha"], Members: fed}, DNS: dnsSrv})
	alphaURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	testutil.Eventually(t, 10*time.Second, "normal-state DNS", func() bool { return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1")) })

	ch := &federation.Challenge{Site: siteName, Value: challengeValue}
	var env map[string]any // a well-formed envelope from beta, its signature taken off
	if err := json.Unmarshal(sealed(t, keys["beta"], "beta", "alpha", ch), &env); err != nil {
		t.Fatal(err)
	}
	delete(env, "sig")
	unsigned, _ := json.Marshal(env)
	cases := []struct {
		name string
		body []byte
		want int
	}{
		{"unsigned", unsigned, http.StatusUnauthorized},
		{"forged (beta's name, alpha's key)", sealed(t, keys["alpha"], "beta", "alpha", ch), http.StatusUnauthorized},
		{"from a member not recruited", sealed(t, keys["beta"], "beta", "alpha", ch), http.StatusForbidden},
		{"for another site's name", sealed(t, keys["beta"], "beta", "alpha",
			&federation.Challenge{Site: "www.other.test", Value: challengeValue}), http.StatusForbidden},
		{"for a name below the site's", sealed(t, keys["beta"], "beta", "alpha",
			&federation.Challenge{Site: "x." + siteName, Value: challengeValue}), http.StatusForbidden},
	}
	for _, tc := range cases {
		if got := postEnvelope(t, alphaURL, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{siteName, "www.other.test", "x." + siteName} {
		if v := challengeTXT(t, dnsSrv.Addr(), name); len(v) != 0 {
			t.Errorf("TXT published for %s: %v", name, v)
		}
	}
}

// originCertificate is the site's own certificate, whose key stays with the site's gateway.
func originCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: siteName},
		DNSNames: []string{siteName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestHelperHTTPSByACME is issue 4's HTTPS end to end on loopback: alpha serves its site over HTTPS with
// its own certificate; in a crowd it recruits beta, which gets a certificate of its own for the site's name
// from a real ACME server (Debian's pebble) by DNS-01, the challenge published by alpha's DNS on beta's
// signed request. A client that resolves the site to beta and trusts only pebble's root gets the site's
// bytes over HTTPS; after the crowd no challenge record is left.
func TestHelperHTTPSByACME(t *testing.T) {
	port := samePort(t, "127.0.0.1", "127.0.0.2")
	tlsPort := samePort(t, "127.0.0.1", "127.0.0.2")
	for tlsPort == port {
		tlsPort = samePort(t, "127.0.0.1", "127.0.0.2")
	}
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	keys, fed := newFederation(t, port, "alpha", "beta")
	dnsSrv := testDNS(t) // alpha runs it; pebble asks it for the challenges
	pb := pebbletest.Start(t, dnsSrv.Addr().String())
	originCert := originCertificate(t)

	alpha := runMember(t, gateway.Config{
		Net:  gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), TLSListen: fmt.Sprintf("127.0.0.1:%d", tlsPort), TLS: &tls.Config{Certificates: []tls.Certificate{originCert}}, PeerListen: "127.0.0.1:0"},
		Site: gateway.SiteConfig{Origin: origin, Root: dir, Name: siteName},
		Federation: &gateway.FederationConfig{Key: keys["alpha"], Members: fed, HealthInterval: 300 * time.Millisecond,
			HelperRoots: pb.IssuerRoots},
		DNS:     dnsSrv,
		Monitor: monitor.Config{Window: time.Second, Threshold: 10, ClientRate: -1, EnterAfter: 300 * time.Millisecond, ExitAfter: 3 * time.Second}})
	betaData := t.TempDir()
	runMember(t, gateway.Config{
		Net:        gateway.NetConfig{Listen: fmt.Sprintf("127.0.0.2:%d", port), TLSListen: fmt.Sprintf("127.0.0.2:%d", tlsPort), PeerListen: "127.0.0.2:0"},
		DataDir:    betaData,
		Federation: &gateway.FederationConfig{Key: keys["beta"], Members: fed},
		Helping:    &webseed.Config{ACME: &certs.Config{Directory: pb.Directory, Roots: pb.Roots, Email: "ops@beta.example.test"}}})
	testutil.Eventually(t, 10*time.Second, "normal-state DNS", func() bool { return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1")) })

	crowd := time.Now()
	stopLoad := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port))
	testutil.Eventually(t, 45*time.Second, "beta in DNS", func() bool {
		return slices.Equal(resolve(t, dnsSrv.Addr()), addrs("127.0.0.1", "127.0.0.2"))
	})
	_, took := alpha.g.Helpers()
	t.Logf("crowd start to beta in DNS, certificate from pebble included: %v (alpha's count from its crowd state: %v)",
		time.Since(crowd).Round(time.Millisecond), took.Round(time.Millisecond))

	// Pages served over HTTPS keep the site's own webseed: beta's is plain HTTP at its address, which such a
	// page may not fetch (mixed content).
	wreq, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s?version=%s", port, swarmapi.PathWebseeds,
		url.QueryEscape(alpha.g.Catalog().Current().Name)), nil)
	wreq.Header.Set("X-Forwarded-Proto", "https")
	wresp, err := http.DefaultClient.Do(wreq)
	if err != nil {
		t.Fatal(err)
	}
	var ws swarmapi.Webseeds
	err = json.NewDecoder(wresp.Body).Decode(&ws)
	wresp.Body.Close()
	if want := fmt.Sprintf("https://127.0.0.1:%d%s", port, swarmapi.PathSeed); err != nil || ws.Now || !slices.Equal(ws.Webseeds, []string{want}) {
		t.Errorf("webseeds for an HTTPS page in the crowd: %+v (%v); want only %s", ws, err, want)
	}

	// Recruited, beta still may not have challenges published for another name.
	alphaURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	if got := postEnvelope(t, alphaURL, sealed(t, keys["beta"], "beta", "alpha",
		&federation.Challenge{Site: "www.other.test", Value: challengeValue})); got != http.StatusForbidden {
		t.Errorf("recruited beta's challenge for another name: status %d, want 403", got)
	}

	// A browser that trusts only pebble's root resolves the site through alpha's DNS and connects to beta.
	https := func(ip netip.Addr) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pb.IssuerRoots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(tlsPort)).String())
			},
			DisableKeepAlives: true,
		}}
	}
	beta := netip.MustParseAddr("127.0.0.2")
	if !slices.Contains(resolve(t, dnsSrv.Addr()), beta) {
		t.Fatal("the site does not resolve to beta")
	}
	for _, p := range append([]string{examplesite.PageHTML}, examplesite.Heavy...) {
		resp, err := https(beta).Get(fmt.Sprintf("https://%s:%d%s", siteName, tlsPort, p))
		if err != nil {
			t.Fatalf("GET %s over HTTPS from beta: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s from beta: %d", p, resp.StatusCode)
		}
		if want, ok := s.files[p]; ok && p != examplesite.PageHTML && !bytes.Equal(body, want) {
			t.Fatalf("%s over HTTPS from beta differs from the origin's", p)
		}
		leaf := resp.TLS.PeerCertificates[0]
		if !slices.Equal(leaf.DNSNames, []string{siteName}) || bytes.Equal(leaf.Raw, originCert.Certificate[0]) {
			t.Fatalf("beta's certificate: SANs %v, the origin's own: %v", leaf.DNSNames, bytes.Equal(leaf.Raw, originCert.Certificate[0]))
		}
		if p == examplesite.PageHTML {
			t.Logf("beta serves %s with its own certificate: SANs %v, issuer %q, serial %x", siteName, leaf.DNSNames,
				leaf.Issuer.CommonName, leaf.SerialNumber)
		}
	}
	// Alpha keeps its own certificate, which pebble's root does not vouch for; plain HTTP to beta still works.
	if _, err := https(netip.MustParseAddr("127.0.0.1")).Get(fmt.Sprintf("https://%s:%d/", siteName, tlsPort)); err == nil {
		t.Error("alpha served a certificate under pebble's root: it must keep the origin's")
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.2:%d%s", port, examplesite.ImagePNG), nil)
	req.Host = siteName
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("plain HTTP from beta: %v", err)
	} else {
		resp.Body.Close()
	}
	if _, err := os.Stat(filepath.Join(betaData, "certs", siteName+".pem")); err != nil {
		t.Errorf("beta did not store its certificate: %v", err)
	}
	if v := challengeTXT(t, dnsSrv.Addr(), siteName); len(v) != 0 {
		t.Errorf("challenge record still published once beta holds its certificate: %v", v)
	}

	stopLoad()
	testutil.Eventually(t, 30*time.Second, "normal state", func() bool { return alpha.g.Monitor().Status().State == monitor.Normal })
	testutil.Eventually(t, 10*time.Second, "beta released", func() bool {
		h := mustHelpers(alpha.g)
		return len(h) == 1 && h[0].State == "released"
	})
	if v := challengeTXT(t, dnsSrv.Addr(), siteName); len(v) != 0 {
		t.Errorf("challenge record left after the crowd: %v", v)
	}
}
