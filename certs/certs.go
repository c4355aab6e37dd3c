package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// Config configures a Manager. Directory and Dir are required.
type Config struct {
	// Directory is the ACME directory URL of the CA, e.g. https://acme-v02.api.letsencrypt.org/directory.
	Directory string
	// Roots, if set, are the only CAs trusted for the ACME server's own HTTPS: a private CA's (pebble's
	// test CA, a company's step-ca). Nil: the system's roots.
	Roots *x509.CertPool
	// Email is the ACME account's contact address, for the CA's expiry and incident notices; optional.
	Email string
	// Dir holds the account key and each name's certificate and key (created with mode 0700).
	Dir string
	// Logger receives the manager's logs; nil discards them.
	Logger *slog.Logger
}

// Publish has a site's DNS publish (present) or remove (!present) value as a TXT record of
// "_acme-challenge." + name. With present, it returns once the record is live for the CA to query.
type Publish func(ctx context.Context, name, value string, present bool) error

const (
	// accountKeyFile is the ACME account's key in Config.Dir.
	accountKeyFile = "account.key"
	// httpTimeout bounds one request to the CA; a CA answers in well under a second, and polling for a
	// validation is many requests.
	httpTimeout = 30 * time.Second
	// cleanupTimeout bounds the removal of a challenge's TXT record after its validation. The removal runs
	// even when Obtain's context has ended, so that no stale record is left behind.
	cleanupTimeout = 10 * time.Second
	// renewDivisor: a certificate is renewed once less than 1/renewDivisor of its lifetime is left (Let's
	// Encrypt renews its 90-day certificates at 30 days). A helper's lease is 30 minutes, so a certificate
	// reused at the start of a crowd cannot expire during it.
	renewDivisor = 3
)

// Manager obtains, stores and hands out certificates. It is safe for concurrent use.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	client    *acme.Client
	transport *http.Transport
	now       func() time.Time

	mu         sync.Mutex
	registered bool
	certs      map[string]*tls.Certificate // by name, valid and not due at the time they were stored
	locks      map[string]chan struct{}    // one Obtain per name at a time
}

// New checks cfg, creates Config.Dir and the account key on first use, and returns a Manager. It does no
// network I/O: the first Obtain registers the account with the CA.
func New(cfg Config) (*Manager, error) {
	u, err := url.Parse(cfg.Directory)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("certs: %w: Directory %q is not an https URL", ErrBadConfig, cfg.Directory)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("certs: %w: no Dir", ErrBadConfig)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, accountKeyFile))
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
	return &Manager{
		cfg: cfg, log: log.With(slog.String("component", "certs")), transport: tr, now: time.Now,
		client: &acme.Client{Key: key, DirectoryURL: cfg.Directory, UserAgent: "swarmgate",
			HTTPClient: &http.Client{Transport: tr, Timeout: httpTimeout}},
		certs: map[string]*tls.Certificate{},
		locks: map[string]chan struct{}{},
	}, nil
}

// Close releases the idle connections to the CA.
func (m *Manager) Close() { m.transport.CloseIdleConnections() }

// Get returns the certificate held in memory for name if it has not expired, else nil. It does no I/O, so
// TLS handshakes may call it.
func (m *Manager) Get(name string) *tls.Certificate {
	m.mu.Lock()
	c := m.certs[strings.ToLower(strings.TrimSuffix(name, "."))]
	m.mu.Unlock()
	if c == nil || !m.now().Before(c.Leaf.NotAfter) {
		return nil
	}
	return c
}

// Obtain returns a certificate for name: the one held in memory or stored in Config.Dir if a third of its
// lifetime is left, else a new one from the CA, for which publish has the site's DNS publish the DNS-01
// challenge (and removes it once validated, whatever the outcome). Concurrent calls for one name share the
// work. The new certificate is stored and held for Get.
func (m *Manager) Obtain(ctx context.Context, name string, publish Publish) (*tls.Certificate, error) {
	name, err := checkName(name)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", name, err)
	}
	defer unlock()
	if c := m.reuse(name); c != nil {
		return c, nil
	}
	start := time.Now()
	c, err := m.issue(ctx, name, publish)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", name, err)
	}
	if err := m.store(name, c); err != nil {
		m.log.Warn("certificate not stored: it will be obtained again next time", slog.String("name", name), slog.Any("err", err))
	}
	m.mu.Lock()
	m.certs[name] = c
	m.mu.Unlock()
	m.log.Info("certificate obtained", slog.String("name", name), slog.Duration("took", time.Since(start)),
		slog.Time("not_after", c.Leaf.NotAfter), slog.String("issuer", c.Leaf.Issuer.CommonName))
	return c, nil
}

// lock takes name's Obtain lock, or gives up when ctx ends.
func (m *Manager) lock(ctx context.Context, name string) (unlock func(), err error) {
	m.mu.Lock()
	l := m.locks[name]
	if l == nil {
		l = make(chan struct{}, 1)
		m.locks[name] = l
	}
	m.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// due reports whether a certificate must be renewed: less than 1/renewDivisor of its lifetime is left.
func (m *Manager) due(leaf *x509.Certificate) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return !m.now().Before(leaf.NotAfter.Add(-life / renewDivisor))
}

// reuse returns name's certificate from memory or from Config.Dir when it is not due for renewal.
func (m *Manager) reuse(name string) *tls.Certificate {
	m.mu.Lock()
	c := m.certs[name]
	m.mu.Unlock()
	if c != nil && !m.due(c.Leaf) {
		return c
	}
	c, err := m.load(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		m.log.Warn("stored certificate unusable: obtaining a new one", slog.String("name", name), slog.Any("err", err))
		return nil
	case m.due(c.Leaf):
		m.log.Info("stored certificate due for renewal", slog.String("name", name), slog.Time("not_after", c.Leaf.NotAfter))
		return nil
	}
	m.mu.Lock()
	m.certs[name] = c
	m.mu.Unlock()
	m.log.Info("reusing stored certificate", slog.String("name", name), slog.Time("not_after", c.Leaf.NotAfter))
	return c
}

// issue gets a new certificate for name from the CA.
func (m *Manager) issue(ctx context.Context, name string, publish Publish) (*tls.Certificate, error) {
	if err := m.register(ctx); err != nil {
		return nil, err
	}
	order, err := m.client.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return nil, fmt.Errorf("ordering: %w", err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, name, u, publish); err != nil {
			return nil, err
		}
	}
	if order, err = m.client.WaitOrder(ctx, order.URI); err != nil {
		return nil, fmt.Errorf("waiting for the order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return nil, err
	}
	der, _, err := m.client.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalizing the order: %w", err)
	}
	return certificate(name, der, key)
}

// authorize completes one authorization of an order by DNS-01, unless the CA holds it valid already.
func (m *Manager) authorize(ctx context.Context, name, authzURL string, publish Publish) error {
	z, err := m.client.GetAuthorization(ctx, authzURL)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "dns-01" {
			chal = c
		}
	}
	if chal == nil {
		return ErrNoDNS01
	}
	value, err := m.client.DNS01ChallengeRecord(chal.Token)
	if err != nil {
		return err
	}
	if err := publish(ctx, name, value, true); err != nil {
		return fmt.Errorf("publishing the challenge: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := publish(ctx, name, value, false); err != nil {
			m.log.Warn("challenge record not removed", slog.String("name", name), slog.Any("err", err))
		}
	}()
	if _, err := m.client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("accepting the challenge: %w", err)
	}
	if _, err := m.client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("validation: %w", err)
	}
	return nil
}

// register creates the ACME account once per process; an account that exists for the key is fine.
func (m *Manager) register(ctx context.Context) error {
	m.mu.Lock()
	done := m.registered
	m.mu.Unlock()
	if done {
		return nil
	}
	acct := &acme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	if _, err := m.client.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("registering the account at %s: %w", m.cfg.Directory, err)
	}
	m.mu.Lock()
	m.registered = true
	m.mu.Unlock()
	return nil
}

// certificate checks an issued chain against the name and key and makes it a tls.Certificate.
func certificate(name string, der [][]byte, key crypto.Signer) (*tls.Certificate, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrBadCertificate)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	if err := leaf.VerifyHostname(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%w: not for our key", ErrBadCertificate)
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

// certFile is where name's key and chain are stored, in one PEM file.
func (m *Manager) certFile(name string) string { return filepath.Join(m.cfg.Dir, name+".pem") }

func (m *Manager) store(name string, c *tls.Certificate) error {
	kb, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	for _, d := range c.Certificate {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return writeFile(m.certFile(name), data)
}

func (m *Manager) load(name string) (*tls.Certificate, error) {
	data, err := os.ReadFile(m.certFile(name))
	if err != nil {
		return nil, err
	}
	kp, err := tls.X509KeyPair(data, data) // one file: each half skips the other's blocks
	if err != nil {
		return nil, err
	}
	key, ok := kp.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T", ErrBadCertificate, kp.PrivateKey)
	}
	return certificate(name, kp.Certificate, key)
}

// writeFile replaces path's content atomically with data, readable by the owner only.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// loadOrCreateKey reads the ECDSA key at path, or makes and stores one if there is none.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		b, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})); err != nil {
			return nil, fmt.Errorf("certs: account key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certs: account key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("certs: account key %s: %w: no EC PRIVATE KEY block", path, ErrBadConfig)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: account key %s: %w: %w", path, ErrBadConfig, err)
	}
	return key, nil
}

// checkName returns name lower-cased without a final dot if it is a host name a CA can certify: two or more
// labels of letters, digits and inner hyphens, 253 bytes at most. It also keeps name safe as a file name.
func checkName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	labels := strings.Split(n, ".")
	ok := len(n) <= 253 && len(labels) >= 2
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			ok = false
			break
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				ok = false
			}
		}
	}
	if !ok {
		return "", fmt.Errorf("certs: %w: %q", ErrBadName, name)
	}
	return n, nil
}
