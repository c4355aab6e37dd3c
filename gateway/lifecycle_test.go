package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
)

// TestValidate: bad values are refused with ErrBadConfig, naming the field; zero values take the defaults.
func TestValidate(t *testing.T) {
	ftp, _ := url.Parse("ftp://example.org/")
	for name, cfg := range map[string]gateway.Config{
		"no data dir":        {},
		"origin not http":    {DataDir: "d", Site: gateway.SiteConfig{Origin: ftp}},
		"negative min size":  {DataDir: "d", Site: gateway.SiteConfig{MinSwarmSize: -1}},
		"negative fallback":  {DataDir: "d", Visitors: gateway.VisitorConfig{Fallback: -time.Second}},
		"negative ratio":     {DataDir: "d", Visitors: gateway.VisitorConfig{UploadRatio: -2}},
		"conns below -1":     {DataDir: "d", Clients: gateway.ClientConfig{MaxConnsPerClient: -2}},
		"negative idle":      {DataDir: "d", Clients: gateway.ClientConfig{IdleTimeout: -time.Second}},
		"bad client rate":    {DataDir: "d", Monitor: monitor.Config{ClientRate: -3}},
		"negative threshold": {DataDir: "d", Monitor: monitor.Config{Threshold: -1}},
	} {
		if err := cfg.Validate(); !errors.Is(err, gateway.ErrBadConfig) {
			t.Errorf("%s: Validate = %v, want ErrBadConfig", name, err)
		}
		if _, err := gateway.New(cfg); !errors.Is(err, gateway.ErrBadConfig) {
			t.Errorf("%s: New = %v, want ErrBadConfig", name, err)
		}
	}
	cfg := gateway.Config{DataDir: "d", Clients: gateway.ClientConfig{MaxConnsPerClient: -1}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Visitors.Fallback != gateway.DefaultFallback || cfg.Visitors.UploadRatio != gateway.DefaultUploadRatio ||
		cfg.Clients.MaxConnsPerClient != -1 || cfg.Clients.IdleTimeout != gateway.DefaultIdleTimeout || cfg.Site.MinSwarmSize <= 0 {
		t.Errorf("defaults not filled in: %+v", cfg)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// freePort is a TCP port on 127.0.0.1 that nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNewFailsCleanly: when New fails part-way it releases everything it had acquired: listeners (the public
// ones, and the seeder's loopback tracker listener), the seeder's goroutines and sockets.
func TestNewFailsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	fed, err := federation.ParseFederation([]byte(fmt.Sprintf(
		`{"members":[{"name":"alpha","url":"http://127.0.0.1","key":%q,"addresses":["127.0.0.1"],"allowPrivate":true}]}`,
		federation.FormatPublicKey(pub))))
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(nil) // a key the federation file does not list: joinFederation fails
	for _, tc := range []struct {
		name string
		cfg  func(listen string) gateway.Config
	}{
		{"HTTPS port taken", func(listen string) gateway.Config {
			return gateway.Config{Net: gateway.NetConfig{Listen: listen, TLSListen: busy.Addr().String()}}
		}},
		{"not a member", func(listen string) gateway.Config {
			return gateway.Config{Net: gateway.NetConfig{Listen: listen, PeerListen: "127.0.0.1:0", STUNListen: "127.0.0.1:0"},
				Federation: &gateway.FederationConfig{Key: stranger, Members: fed}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			cfg := tc.cfg(listen)
			cfg.DataDir = t.TempDir()
			before := openFDs(t)
			if _, err := gateway.New(cfg); err == nil {
				t.Fatal("New succeeded; want an error")
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d file descriptors open after the failed New, %d before", after, before)
			}
			ln, err := net.Listen("tcp", listen) // the public listener was released
			if err != nil {
				t.Fatalf("listen address still taken: %v", err)
			}
			ln.Close()
		})
	}
}

// TestCloseWithoutRun: a server that never ran closes all it holds; Close is idempotent, and Run after
// Close fails rather than serving.
func TestCloseWithoutRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	before := openFDs(t)
	g, err := gateway.New(gateway.Config{DataDir: t.TempDir(), Net: gateway.NetConfig{Listen: listen, STUNListen: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after Close, %d before", after, before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Run(ctx); err == nil {
		t.Error("Run after Close returned nil; want the closed listener's error")
	}
}
