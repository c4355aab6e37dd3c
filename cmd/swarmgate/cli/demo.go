package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/internal/loopfed"
)

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
	p2p := fs.String("p2p", string(gateway.P2PAlways), "when pages send visitors to the swarm: always (so that two tabs show it), auto or off")
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

	fed, err := loopfed.New(loopfed.Config{
		Port: *port, DNSAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(*dnsPort)), Zone: demoZone, Site: demoSite,
		Origin: originURL, Root: siteDir, Dir: *dir, Monitor: monitor.Config{Threshold: *threshold}, Logger: log,
		P2P: gateway.P2PMode(*p2p),
	})
	if err != nil {
		return err
	}
	*port = fed.Port
	dnsSrv := fed.DNS
	a := fmt.Sprintf("127.0.0.1:%d", *port)
	fmt.Fprintf(stdout, `swarmgate demo: a site behind its gateway, two cooperating servers, embedded DNS
  origin (the example site):  %s
  gateway (open this):        http://%s/
  dashboard:                  http://%s/.swarm/dashboard
  helpers:                    http://127.0.0.2:%d/ and http://127.0.0.3:%d/ (members beta and gamma)
  DNS for %s:   dig @127.0.0.1 -p %d %s

Open the gateway's URL in two or more browser tabs: the first takes the 2 MB photo and the 8 MB audio from
the gateway, the later ones from the tabs already open. (The demo runs with --p2p %s; serve's default,
auto, sends pages to the swarm only in a crowd and as it ends, and leaves them unchanged in normal times.) In a tab's console, swarmgate.stats() says where its
bytes came from. To watch a flash crowd, keep the dashboard open and run:

  go run ./cmd/swarmgate load -rate 150 -duration 40s http://%s/style.css

The gateway enters the crowd state, beta and gamma fetch the site over BitTorrent and join DNS, then the
load stops, the records are withdrawn and the helpers released. Ctrl-C stops.
`, originURL, a, a, *port, *port, demoSite, dnsSrv.Addr().Port(), demoSite, *p2p, a)

	return fed.Run(ctx)
}
