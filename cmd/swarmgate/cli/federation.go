package cli

import (
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/webseed"
)

// federationConfig loads the member key (made on first start in the data directory) and the federation file.
func federationConfig(cfg *gateway.Config, file string) error {
	if file == "" {
		return nil
	}
	fed, err := federation.LoadFederation(file)
	if err != nil {
		return fmt.Errorf("%w: --federation: %v", errBadFlag, err)
	}
	key, err := federation.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return err
	}
	if _, err := fed.Self(key); err != nil {
		return fmt.Errorf("%w: --federation: this server's key %s is not in %s: %v", errBadFlag,
			federation.FormatPublicKey(key.Public().(ed25519.PublicKey)), file, err)
	}
	cfg.Federation = &gateway.FederationConfig{Key: key, Members: fed}
	return nil
}

// dnsConfig sets up DNS steering: the embedded authoritative server, or RFC 2136 updates to another.
func dnsConfig(cfg *gateway.Config, listen, zone, ns, server, tsig string) error {
	switch {
	case listen == "" && server == "":
		return nil
	case listen != "" && server != "":
		return fmt.Errorf("%w: --dns-listen and --rfc2136 exclude each other", errBadFlag)
	case cfg.Site.Name == "":
		return fmt.Errorf("%w: DNS steering needs --site", errBadFlag)
	case zone == "":
		return fmt.Errorf("%w: DNS steering needs --dns-zone", errBadFlag)
	}
	if server != "" {
		name, secret, ok := strings.Cut(tsig, ":")
		if !ok || name == "" || secret == "" {
			return fmt.Errorf("%w: --rfc2136 needs --tsig NAME:BASE64SECRET", errBadFlag)
		}
		u, err := steer.NewUpdater(steer.UpdaterConfig{Server: server, Zone: zone, KeyName: name, Secret: secret, Algorithm: "hmac-sha256"})
		if err != nil {
			return fmt.Errorf("%w: --rfc2136: %v", errBadFlag, err)
		}
		cfg.DNS = u
		return nil
	}
	var nsAddrs []netip.Addr
	if cfg.Federation != nil {
		if self, err := cfg.Federation.Members.Self(cfg.Federation.Key); err == nil {
			nsAddrs = self.Addresses
		}
	}
	if ns == "" {
		ns = "ns1." + zone
	}
	srv, err := steer.NewServer(steer.ServerConfig{Zone: zone, Addr: listen, NameServers: []steer.NameServer{{Name: ns, Addrs: nsAddrs}}})
	if err != nil {
		return fmt.Errorf("%w: --dns-listen: %v", errBadFlag, err)
	}
	cfg.DNS = srv
	return nil
}

// acmeFlags are the flags of a helper's certificates for the sites it helps.
type acmeFlags struct {
	directory, roots, email string
}

// acmeConfig lets a federation member help sites served over HTTPS, with certificates of its own from an
// ACME CA (stored under --data).
func acmeConfig(cfg *gateway.Config, f acmeFlags) error {
	switch {
	case f.directory == "" && (f.roots != "" || f.email != ""):
		return fmt.Errorf("%w: --acme-ca-roots and --acme-email go with --acme-directory", errBadFlag)
	case f.directory == "":
		return nil
	case cfg.Federation == nil:
		return fmt.Errorf("%w: --acme-directory is for helping other members' HTTPS sites: it needs --federation", errBadFlag)
	case cfg.Net.TLSListen == "" && cfg.Net.TLS == nil:
		return fmt.Errorf("%w: --acme-directory needs an HTTPS listener: --tls-listen (or --tls-cert/--acme-host)", errBadFlag)
	}
	c := &certs.Config{Directory: f.directory, Email: f.email}
	if f.roots != "" {
		pem, err := os.ReadFile(f.roots)
		if err != nil {
			return fmt.Errorf("%w: --acme-ca-roots: %v", errBadFlag, err)
		}
		c.Roots = x509.NewCertPool()
		if !c.Roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: --acme-ca-roots %s: no PEM certificate", errBadFlag, f.roots)
		}
	}
	if cfg.Helping == nil {
		cfg.Helping = &webseed.Config{}
	}
	cfg.Helping.ACME = c
	return nil
}
