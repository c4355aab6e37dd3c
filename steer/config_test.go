package steer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestServerConfig(t *testing.T) {
	ns := func(name string, addrs ...string) NameServer {
		n := NameServer{Name: name}
		for _, a := range addrs {
			n.Addrs = append(n.Addrs, netip.MustParseAddr(a))
		}
		return n
	}
	base := func(mod func(*ServerConfig)) ServerConfig {
		c := ServerConfig{Zone: "Example.COM", NameServers: []NameServer{ns("ns1.example.com", "192.0.2.53")}}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     ServerConfig
		wantErr error
		errHas  string // part of the message
		check   func(t *testing.T, z *zoneConfig)
	}{
		{name: "defaults", cfg: base(nil), check: func(t *testing.T, z *zoneConfig) {
			if z.origin != "example.com." || z.addr != ":53" || z.mname != "ns1.example.com." ||
				z.rname != "hostmaster.example.com." || z.ttl != 30 || z.negTTL != 30 || z.refresh != 3600 ||
				z.retry != 600 || z.expire != 1209600 || z.maxAnswers != DefaultMaxAnswers {
				t.Errorf("defaults not filled: %+v", z)
			}
		}},
		{name: "negative TTL follows TTL", cfg: base(func(c *ServerConfig) { c.TTL = 10 * time.Second }),
			check: func(t *testing.T, z *zoneConfig) {
				if z.ttl != 10 || z.negTTL != 10 {
					t.Errorf("ttl %d negTTL %d, want 10 10", z.ttl, z.negTTL)
				}
			}},
		{name: "everything set", cfg: base(func(c *ServerConfig) {
			c.Addr = "127.0.0.1:5353"
			c.NameServers = append(c.NameServers, ns("a.ns.example.net"))
			c.Hostmaster = "dns-admin.example.net"
			c.TTL, c.NegativeTTL = 20*time.Second, 5*time.Second
			c.Refresh, c.Retry, c.Expire = time.Minute, 30*time.Second, 48*time.Hour
			c.MaxAnswers = 3
			c.TransferFrom = []netip.Prefix{netip.MustParsePrefix("198.51.100.7/24")}
			c.NotifyTo = []netip.AddrPort{netip.MustParseAddrPort("[::ffff:198.51.100.7]:53")}
		}), check: func(t *testing.T, z *zoneConfig) {
			if z.rname != "dns-admin.example.net." || z.ttl != 20 || z.negTTL != 5 || z.refresh != 60 ||
				z.retry != 30 || z.expire != 172800 || z.maxAnswers != 3 || len(z.ns) != 2 {
				t.Errorf("fields not taken: %+v", z)
			}
			if z.transferFrom[0].String() != "198.51.100.0/24" || z.notify[0].String() != "198.51.100.7:53" {
				t.Errorf("TransferFrom %v NotifyTo %v not canonical", z.transferFrom, z.notify)
			}
		}},
		{name: "no zone", cfg: base(func(c *ServerConfig) { c.Zone = "" }), wantErr: ErrBadZone},
		{name: "root zone", cfg: base(func(c *ServerConfig) { c.Zone = "." }), wantErr: ErrBadZone},
		{name: "zone with a space", cfg: base(func(c *ServerConfig) { c.Zone = "exa mple.com" }), wantErr: ErrBadZone},
		{name: "bad address", cfg: base(func(c *ServerConfig) { c.Addr = "localhost" }), wantErr: ErrBadConfig, errHas: "Addr"},
		{name: "no name servers", cfg: base(func(c *ServerConfig) { c.NameServers = nil }), wantErr: ErrBadConfig, errHas: "NameServers"},
		{name: "in-zone name server without addresses",
			cfg: base(func(c *ServerConfig) { c.NameServers = []NameServer{ns("ns1.example.com")} }), wantErr: ErrBadConfig, errHas: "needs addresses"},
		{name: "out-of-zone name server with addresses",
			cfg: base(func(c *ServerConfig) { c.NameServers = []NameServer{ns("ns.example.net", "192.0.2.9")} }), wantErr: ErrBadConfig, errHas: "outside the zone"},
		{name: "name server at the apex",
			cfg: base(func(c *ServerConfig) { c.NameServers = []NameServer{ns("example.com", "192.0.2.9")} }), wantErr: ErrBadConfig, errHas: "apex"},
		{name: "name server twice",
			cfg: base(func(c *ServerConfig) { c.NameServers = append(c.NameServers, ns("NS1.example.com.", "192.0.2.9")) }), wantErr: ErrBadConfig, errHas: "twice"},
		{name: "invalid name server address",
			cfg: base(func(c *ServerConfig) { c.NameServers[0].Addrs = []netip.Addr{{}} }), wantErr: ErrBadAddr},
		{name: "bad hostmaster", cfg: base(func(c *ServerConfig) { c.Hostmaster = "hostmaster@example.com" }), wantErr: ErrBadConfig, errHas: "Hostmaster"},
		{name: "TTL below a second", cfg: base(func(c *ServerConfig) { c.TTL = 500 * time.Millisecond }), wantErr: ErrBadConfig, errHas: "TTL"},
		{name: "negative TTL", cfg: base(func(c *ServerConfig) { c.TTL = -time.Second }), wantErr: ErrBadConfig, errHas: "TTL"},
		{name: "expire too long", cfg: base(func(c *ServerConfig) { c.Expire = 100 * 365 * 24 * time.Hour }), wantErr: ErrBadConfig, errHas: "Expire"},
		{name: "MaxAnswers too large", cfg: base(func(c *ServerConfig) { c.MaxAnswers = MaxAddrsPerName + 1 }), wantErr: ErrBadConfig, errHas: "MaxAnswers"},
		{name: "MaxAnswers negative", cfg: base(func(c *ServerConfig) { c.MaxAnswers = -1 }), wantErr: ErrBadConfig, errHas: "MaxAnswers"},
		{name: "invalid transfer prefix", cfg: base(func(c *ServerConfig) { c.TransferFrom = []netip.Prefix{{}} }), wantErr: ErrBadConfig, errHas: "TransferFrom"},
		{name: "notify without port", cfg: base(func(c *ServerConfig) {
			c.NotifyTo = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.8"), 0)}
		}), wantErr: ErrBadConfig, errHas: "NotifyTo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := tc.cfg.check()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want %v mentioning %q", err, tc.wantErr, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			tc.check(t, z)
		})
	}
}

func TestUpdaterConfig(t *testing.T) {
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
	base := func(mod func(*UpdaterConfig)) UpdaterConfig {
		c := UpdaterConfig{Server: "127.0.0.1:53", Zone: "example.com", KeyName: "swarmgate", Secret: secret}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     UpdaterConfig
		wantErr error
		errHas  string
	}{
		{name: "defaults", cfg: base(nil)},
		{name: "sha512 over UDP", cfg: base(func(c *UpdaterConfig) { c.Algorithm = "hmac-sha512"; c.Net = "udp"; c.TTL = time.Minute })},
		{name: "no server", cfg: base(func(c *UpdaterConfig) { c.Server = "" }), wantErr: ErrBadConfig, errHas: "Server"},
		{name: "server without port", cfg: base(func(c *UpdaterConfig) { c.Server = "ns1.example.com" }), wantErr: ErrBadConfig, errHas: "Server"},
		{name: "no zone", cfg: base(func(c *UpdaterConfig) { c.Zone = "" }), wantErr: ErrBadZone},
		{name: "no key name", cfg: base(func(c *UpdaterConfig) { c.KeyName = "" }), wantErr: ErrBadConfig, errHas: "KeyName"},
		{name: "secret not base64", cfg: base(func(c *UpdaterConfig) { c.Secret = "not base64!" }), wantErr: ErrBadConfig, errHas: "Secret"},
		{name: "no secret", cfg: base(func(c *UpdaterConfig) { c.Secret = "" }), wantErr: ErrBadConfig, errHas: "Secret"},
		{name: "md5", cfg: base(func(c *UpdaterConfig) { c.Algorithm = "hmac-md5" }), wantErr: ErrBadConfig, errHas: "Algorithm"},
		{name: "bad net", cfg: base(func(c *UpdaterConfig) { c.Net = "tls" }), wantErr: ErrBadConfig, errHas: "Net"},
		{name: "TTL too short", cfg: base(func(c *UpdaterConfig) { c.TTL = time.Millisecond }), wantErr: ErrBadConfig, errHas: "TTL"},
		{name: "negative timeout", cfg: base(func(c *UpdaterConfig) { c.Timeout = -time.Second }), wantErr: ErrBadConfig, errHas: "Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := NewUpdater(tc.cfg)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("NewUpdater: %v", err)
				}
				if u.TTL() < time.Second {
					t.Errorf("TTL %s", u.TTL())
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %v, want %v mentioning %q", err, tc.wantErr, tc.errHas)
			}
		})
	}
}
