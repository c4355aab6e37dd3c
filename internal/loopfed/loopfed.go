// Package loopfed runs a whole swarmgate federation on one machine: members on loopback addresses
// (127.0.0.1, 127.0.0.2, ...: distinct hosts to Linux) sharing one port, the first fronting a site's origin
// and running the site zone's embedded DNS server, the others ready to help it. `swarmgate demo` and the
// flash-crowd benchmark are built on it.
package loopfed

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/steer"
	"github.com/swarmgate/swarmgate/uplink"
)

// Names are the members' names, in order; member i listens on 127.0.0.(i+1), or i after Config.FirstIP.
var Names = []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}

// Config configures a loopback federation.
type Config struct {
	// Members is how many servers run (default 3: the site's gateway and two helpers); at most len(Names).
	Members int
	// Port is the TCP port every member serves HTTP on; 0 picks one free on all their addresses.
	Port int
	// FirstIP is the first member's address, the next ones following it (default 127.0.0.1). Loopback
	// connections that bind no address come from 127.0.0.1: a harness whose visitors connect so starts the
	// members after it, or every visitor is taken for the first member (a helper's link favours its fellow
	// members, and would favour them all).
	FirstIP netip.Addr
	// DNSAddr is where the embedded DNS server listens (UDP and TCP), e.g. "127.0.0.1:5353" or port 0.
	DNSAddr string
	// Zone is the DNS zone, Site the site's name in it.
	Zone, Site string
	// Origin is the site's origin, which the first member fronts; Root its document root, if it has one.
	Origin *url.URL
	Root   string
	// Dir holds the federation file and each member's data directory.
	Dir string
	// P2P is the site gateway's P2P policy (gateway.VisitorConfig.P2P).
	P2P gateway.P2PMode
	// Monitor configures every member's flash-crowd detection; Federation the cooperation settings.
	Monitor    monitor.Config
	Federation gateway.FederationConfig
	// Uplink, if set, gives member i its machine's uplink.
	Uplink func(i int) *uplink.Uplink
	// Logger receives the members' logs, each tagged with its name; nil discards them.
	Logger *slog.Logger
}

// Federation is a running loopback federation.
type Federation struct {
	// Servers are the members, Servers[0] the site's gateway.
	Servers []*gateway.Server
	// IPs are the members' addresses, in the same order.
	IPs []netip.Addr
	// DNS is the site zone's embedded server, run by Servers[0].
	DNS  *steer.Server
	Port int
}

// New makes the members' keys (kept in their data directories), writes the federation file and creates the
// servers; Run runs them.
func New(cfg Config) (*Federation, error) {
	if cfg.Members == 0 {
		cfg.Members = 3
	}
	if cfg.Members < 1 || cfg.Members > len(Names) {
		return nil, fmt.Errorf("loopfed: %d members; want 1 to %d", cfg.Members, len(Names))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Federation{Port: cfg.Port}
	ip := cfg.FirstIP
	if !ip.IsValid() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if !ip.Is4() || !ip.IsLoopback() || ip.As4()[3] == 0 || int(ip.As4()[3])+cfg.Members > 256 {
		return nil, fmt.Errorf("loopfed: first address %v: want 127.x.y.z with room for %d members", ip, cfg.Members)
	}
	for range cfg.Members {
		f.IPs = append(f.IPs, ip)
		ip = ip.Next()
	}
	if f.Port == 0 {
		p, err := CommonFreePort(f.IPs)
		if err != nil {
			return nil, err
		}
		f.Port = p
	}
	keys := make([]ed25519.PrivateKey, cfg.Members)
	var members []string
	for i := range cfg.Members {
		k, err := federation.LoadOrCreateKey(filepath.Join(cfg.Dir, Names[i]))
		if err != nil {
			return nil, err
		}
		keys[i] = k
		// Every member is on loopback, which the file must allow; the first fronts the site, the only one
		// a member may ask help for.
		var sites []string
		if i == 0 && cfg.Site != "" {
			sites = []string{cfg.Site}
		}
		m, err := json.Marshal(map[string]any{"name": Names[i], "url": "http://" + netip.AddrPortFrom(f.IPs[i], uint16(f.Port)).String(),
			"key": federation.FormatPublicKey(k.Public().(ed25519.PublicKey)), "addresses": []string{f.IPs[i].String()},
			"sites": sites, "allowPrivate": true})
		if err != nil {
			return nil, fmt.Errorf("loopfed: %w", err)
		}
		members = append(members, string(m))
	}
	fedFile := filepath.Join(cfg.Dir, "federation.json")
	if err := os.WriteFile(fedFile, []byte(`{"members":[`+strings.Join(members, ",")+"]}\n"), 0o644); err != nil {
		return nil, fmt.Errorf("loopfed: %w", err)
	}
	fed, err := federation.LoadFederation(fedFile)
	if err != nil {
		return nil, err
	}
	if f.DNS, err = steer.NewServer(steer.ServerConfig{Zone: cfg.Zone, Addr: cfg.DNSAddr,
		NameServers: []steer.NameServer{{Name: "ns1." + cfg.Zone, Addrs: []netip.Addr{f.IPs[0]}}},
		Logger:      cfg.Logger}); err != nil {
		return nil, err
	}
	for i := range cfg.Members {
		fc := cfg.Federation
		fc.Key, fc.Members = keys[i], fed
		gc := gateway.Config{
			Net:        gateway.NetConfig{Listen: netip.AddrPortFrom(f.IPs[i], uint16(f.Port)).String(), PeerListen: net.JoinHostPort(f.IPs[i].String(), "0")},
			DataDir:    filepath.Join(cfg.Dir, Names[i]),
			Federation: &fc,
			Logger:     cfg.Logger.With("member", Names[i]),
			Monitor:    cfg.Monitor,
		}
		if cfg.Uplink != nil {
			gc.Net.Uplink = cfg.Uplink(i)
		}
		if i == 0 { // the first member fronts the site and runs its DNS
			gc.Site.Origin, gc.Site.Root, gc.DNS, gc.Site.Name = cfg.Origin, cfg.Root, f.DNS, cfg.Site
			gc.Visitors.P2P = cfg.P2P
		}
		g, err := gateway.New(gc)
		if err != nil {
			f.close()
			return nil, err
		}
		f.Servers = append(f.Servers, g)
	}
	return f, nil
}

// close releases servers made but never run (and the DNS server, if the site's gateway is not among them).
func (f *Federation) close() {
	if len(f.Servers) == 0 {
		_ = f.DNS.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = f.Run(ctx)
}

// URL is member i's base URL.
func (f *Federation) URL(i int) string {
	return "http://" + netip.AddrPortFrom(f.IPs[i], uint16(f.Port)).String()
}

// Run runs every member until ctx ends.
func (f *Federation) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.Servers))
	for i, g := range f.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CommonFreePort finds a TCP port free on all the addresses.
func CommonFreePort(ips []netip.Addr) (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ips[0], 0).String())
		if err != nil {
			return 0, fmt.Errorf("loopfed: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		held := []net.Listener{ln}
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("loopfed: no TCP port is free on all of %v", ips)
}
