package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	steer "github.com/swarmgate/swarmgate/gateway/dns"
	"github.com/swarmgate/swarmgate/gateway/examplesite"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/webseed/federation"
)

// The demo federation: three members on three loopback addresses (distinct hosts to Linux), one site.
var demoMembers = []struct{ name, ip string }{{"alpha", "127.0.0.1"}, {"beta", "127.0.0.2"}, {"gamma", "127.0.0.3"}}

const (
	demoZone = "demo.test"
	demoSite = "launch.demo.test"
)

// demo runs an example origin, its gateway and two cooperating servers on loopback, with embedded DNS.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 8000, "TCP port of the three servers (127.0.0.1, .2 and .3); 0 picks one free on all")
	dnsPort := fs.Int("dns-port", 5353, "UDP/TCP port of the embedded DNS server on 127.0.0.1; 0 picks one")
	dir := fs.String("dir", "", "directory for the example site and the servers' data (default: a new temporary directory)")
	threshold := fs.Float64("threshold", 50, "requests per second that make a flash crowd")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "swarmgate:", err)
		return errUsage
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "swarmgate-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *port == 0 {
		if *port, err = commonFreePort(); err != nil {
			return err
		}
	}
	siteDir := filepath.Join(*dir, "site")
	if _, err := examplesite.Write(siteDir); err != nil {
		return err
	}

	originLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: origin: %w", err)
	}
	origin := &http.Server{Handler: http.FileServer(http.Dir(siteDir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = origin.Serve(originLn) }()
	defer origin.Close()
	originURL := &url.URL{Scheme: "http", Host: originLn.Addr().String()}

	// Keys, made on first start in each member's data directory, and the federation file naming them.
	keys := map[string]ed25519.PrivateKey{}
	var members []string
	for _, m := range demoMembers {
		k, err := federation.LoadOrCreateKey(filepath.Join(*dir, m.name))
		if err != nil {
			return err
		}
		keys[m.name] = k
		members = append(members, fmt.Sprintf(`{"name":%q,"url":"http://%s:%d","key":%q,"addresses":[%q]}`,
			m.name, m.ip, *port, federation.FormatPublicKey(k.Public().(ed25519.PublicKey)), m.ip))
	}
	fedFile := filepath.Join(*dir, "federation.json")
	if err := os.WriteFile(fedFile, []byte(`{"members":[`+strings.Join(members, ",")+"]}\n"), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fed, err := federation.LoadFederation(fedFile)
	if err != nil {
		return err
	}
	dnsSrv, err := steer.NewServer(steer.ServerConfig{Zone: demoZone, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(*dnsPort)),
		NameServers: []steer.NameServer{{Name: "ns1." + demoZone, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}},
		Logger:      log})
	if err != nil {
		return err
	}

	var servers []*gateway.Server
	for i, m := range demoMembers {
		cfg := gateway.Config{
			Listen:     net.JoinHostPort(m.ip, strconv.Itoa(*port)),
			DataDir:    filepath.Join(*dir, m.name),
			SiteName:   demoSite,
			PeerListen: net.JoinHostPort(m.ip, "0"),
			Federation: &gateway.FederationConfig{Key: keys[m.name], Members: fed},
			Logger:     log.With("member", m.name),
			Monitor:    monitor.Config{Threshold: *threshold},
		}
		if i == 0 { // alpha fronts the site and runs its DNS
			cfg.Origin, cfg.Root, cfg.DNS = originURL, siteDir, dnsSrv
		}
		g, err := gateway.New(cfg)
		if err != nil {
			return err
		}
		servers = append(servers, g)
	}
	a := fmt.Sprintf("127.0.0.1:%d", *port)
	fmt.Fprintf(stdout, `swarmgate demo: a site behind its gateway, two cooperating servers, embedded DNS
  origin (the example site):  %s
  gateway (open this):        http://%s/
  dashboard:                  http://%s/.swarm/dashboard
  helpers:                    http://127.0.0.2:%d/ and http://127.0.0.3:%d/ (members beta and gamma)
  DNS for %s:   dig @127.0.0.1 -p %d %s

Open the gateway's URL in two or more browser tabs: the first takes the 2 MB photo and the 8 MB audio from
the gateway, the later ones from the tabs already open. In a tab's console, swarmgate.stats() says where its
bytes came from. To watch a flash crowd, keep the dashboard open and run:

  go run ./cmd/swarmgate load -rate 150 -duration 40s http://%s/style.css

The gateway enters the crowd state, beta and gamma fetch the site over BitTorrent and join DNS, then the
load stops, the records are withdrawn and the helpers released. Ctrl-C stops.
`, originURL, a, a, *port, *port, demoSite, dnsSrv.Addr().Port(), demoSite, a)

	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, g := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// commonFreePort finds a TCP port free on all three demo addresses.
func commonFreePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", demoMembers[0].ip+":0")
		if err != nil {
			return 0, fmt.Errorf("demo: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		held := []net.Listener{ln}
		ok := true
		for _, m := range demoMembers[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(m.ip, strconv.Itoa(port)))
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
	return 0, errors.New("demo: no TCP port is free on 127.0.0.1, .2 and .3")
}
