// Package pebbletest runs Debian's pebble, Let's Encrypt's test ACME server, on loopback for tests. Each
// Start gets its own ports and its own certificate for pebble's HTTPS, sends pebble's DNS-01 validation
// queries to a DNS server the test names (pebble's -dnsserver), and turns off pebble's random sleeps and
// nonce rejections, so a certificate takes about a second.
package pebbletest

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
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testutil"
)

// Binary is the name of Debian's pebble executable (package pebble).
const Binary = "pebble"

// startTimeout bounds the wait for pebble's directory to answer; it is up in well under a second.
const startTimeout = 20 * time.Second

// Pebble is one running pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// Roots trusts pebble's own HTTPS: give it to the ACME client.
	Roots *x509.CertPool
	// IssuerRoots trusts the certificates pebble issues (its root from the management interface's
	// /roots/0): give it to HTTPS clients of the servers that got them.
	IssuerRoots *x509.CertPool
	// Management is the base URL of pebble's management interface.
	Management string
}

// lookPath finds pebble, installing Debian's package first when it is missing and the test runs as root
// (as CI does). It returns "" when pebble is neither installed nor installable.
func lookPath(t testing.TB) string {
	installOnce.Do(func() {
		if _, err := exec.LookPath(Binary); err == nil || os.Geteuid() != 0 {
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "pebble")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		installLog = fmt.Sprintf("apt-get install pebble: %v\n%s", err, out)
	})
	p, err := exec.LookPath(Binary)
	if err != nil {
		t.Logf("pebble not found: %v; %s", err, installLog)
		return ""
	}
	return p
}

var (
	installOnce sync.Once
	installLog  string
)

// Start runs pebble until the test ends, validating DNS-01 challenges by asking dnsServer ("ip:port"). It
// skips the test when pebble is neither installed nor installable (bash .ci/test installs it).
func Start(t testing.TB, dnsServer string) *Pebble {
	t.Helper()
	bin := lookPath(t)
	if bin == "" {
		t.Skip("pebble (Debian package pebble) is not installed and cannot be installed here; bash .ci/test installs it")
	}
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, certFile, certPEM)
	write(t, keyFile, keyPEM)
	ports := freePorts(t, 4)
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       ports[2], // HTTP-01 and TLS-ALPN-01 are never used: nothing listens there
		"tlsPort":                        ports[3],
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	confFile := filepath.Join(dir, "pebble-config.json")
	write(t, confFile, conf)

	cmd := exec.Command(bin, "-config", confFile, "-dnsserver", dnsServer)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once instead of after up to 5 s
		"PEBBLE_WFE_NONCEREJECT=0", // never reject a good nonce (15% by default)
		"PEBBLE_AUTHZREUSE=0",      // validate orders through DNS; pebble still reuses a valid authorization 1 time in 100
	)
	proc := testutil.StartProcess(t, cmd, "pebble", "PEBBLE_LOG")

	p := &Pebble{
		Directory:  fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		Management: fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		Roots:      x509.NewCertPool(),
	}
	p.Roots.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Roots}, DisableKeepAlives: true}}
	start := time.Now()
	for {
		if b, err := get(hc, p.Directory); err == nil && bytes.Contains(b, []byte("newOrder")) {
			break
		}
		select {
		case <-proc.Exited():
			t.Fatalf("pebbletest: pebble exited before answering: %v\n%s", proc.Err(), proc.Logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(start) > startTimeout {
			t.Fatalf("pebbletest: pebble's directory did not answer within %v\n%s", startTimeout, proc.Logs.String())
		}
	}
	root, err := get(hc, p.Management+"/roots/0")
	if err != nil {
		t.Fatalf("pebbletest: pebble's issuing root: %v", err)
	}
	p.IssuerRoots = x509.NewCertPool()
	if !p.IssuerRoots.AppendCertsFromPEM(root) {
		t.Fatalf("pebbletest: /roots/0 is not PEM: %q", root)
	}
	t.Logf("pebble up at %s after %v", p.Directory, time.Since(start).Round(time.Millisecond))
	return p
}

func get(hc *http.Client, u string) ([]byte, error) {
	resp, err := hc.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	return b, err
}

// selfSigned makes the certificate pebble serves its API with, for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebbletest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// freePorts returns n distinct free TCP ports on 127.0.0.1; pebble binds them a moment later.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range held {
		l.Close()
	}
	return ports
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
