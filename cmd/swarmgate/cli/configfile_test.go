package cli

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
)

// TestConfigFileExample loads the documented example, docs/swarmgate.conf, as serve would: every line must
// be a working setting, and each lands in the gateway's configuration.
func TestConfigFileExample(t *testing.T) {
	cfg, _, err := serveConfig([]string{"-config", "../../../docs/swarmgate.conf", "-stun", "off"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.Site.Origin == nil || cfg.Site.Origin.String() != "http://127.0.0.1:8080":
		t.Errorf("origin %v", cfg.Site.Origin)
	case cfg.Site.Name != "www.example.com" || cfg.Net.Listen != "127.0.0.1:8000" || cfg.DataDir != "/var/lib/swarmgate":
		t.Errorf("site %q, listen %q, data %q", cfg.Site.Name, cfg.Net.Listen, cfg.DataDir)
	case !slices.Equal(cfg.Site.PublicPaths, []string{"/assets/", "/media/"}):
		t.Errorf("public %v", cfg.Site.PublicPaths)
	case cfg.Visitors.P2P != gateway.P2PAuto:
		t.Errorf("p2p %q", cfg.Visitors.P2P)
	case cfg.Monitor.Threshold != 50 || cfg.Monitor.ClientRate != 5 || cfg.Monitor.Window != 10*time.Second ||
		cfg.Monitor.EnterAfter != 5*time.Second || cfg.Monitor.ExitAfter != 30*time.Second:
		t.Errorf("monitor %+v", cfg.Monitor)
	case cfg.Site.MinSwarmSize != 65536 || cfg.Visitors.UploadRatio != 2 || cfg.Visitors.UploadCeiling != 52428800:
		t.Errorf("sizes %d %v %d", cfg.Site.MinSwarmSize, cfg.Visitors.UploadRatio, cfg.Visitors.UploadCeiling)
	case !slices.Equal(cfg.Clients.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}):
		t.Errorf("trusted proxies %v", cfg.Clients.TrustedProxies)
	}
}

// TestConfigFile: the command line overrides the file; a mistake names the file, the line and the setting.
func TestConfigFile(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "swarmgate.conf")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("# comment\n\ncrowd-threshold 80\np2p always\n")
	cfg, _, err := serveConfig([]string{"--config=" + file, "-crowd-threshold", "120", "-stun", "off"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Monitor.Threshold != 120 || cfg.Visitors.P2P != gateway.P2PAlways {
		t.Errorf("threshold %v (want the flag's 120), p2p %q (want the file's always)", cfg.Monitor.Threshold, cfg.Visitors.P2P)
	}
	for body, want := range map[string]string{
		"crowd-threshold 50\nno-such-setting 1\n": ":2: no setting \"no-such-setting\"",
		"crowd-threshold 0\n":                     ":1: crowd-threshold \"0\"",
		"p2p sometimes\n":                         "Visitors.P2P \"sometimes\"",
		"config other.conf\n":                     ":1: a configuration file cannot name another",
	} {
		_, _, err := serveConfig([]string{"-config", write(body), "-stun", "off"}, io.Discard)
		if !errors.Is(err, errBadFlag) || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: err = %v, want one containing %q", body, err, want)
		}
	}
	if _, _, err := serveConfig([]string{"-config", filepath.Join(t.TempDir(), "missing.conf")}, io.Discard); !errors.Is(err, errBadFlag) {
		t.Errorf("missing file: err = %v", err)
	}
}
