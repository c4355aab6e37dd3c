// Package cli parses swarmgate's command line into configuration and calls the packages that do the work.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/crypto/acme/autocert"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/gateway/monitor"
	"github.com/swarmgate/swarmgate/swarmapi"
	"github.com/swarmgate/swarmgate/tracker"
	"github.com/swarmgate/swarmgate/uplink"
)

const usage = `swarmgate turns a flash crowd into the CDN for a web site.

Usage:
  swarmgate demo [flags]     run an example site, its gateway, two helpers and DNS on loopback
  swarmgate load [flags] URL send a steady, bounded stream of requests (to make a crowd on your own servers)
  swarmgate serve [flags]    run the gateway in front of a site's origin
  swarmgate bench tracker    measure the tracker against the bittorrent-tracker npm server
  swarmgate bench crowd      a flash crowd of browsers on a capped uplink, without and with swarmgate
  swarmgate bench firstview  one visitor's first view of a hero image and a video: direct and through swarmgate
  swarmgate version          print the version

Run 'swarmgate COMMAND -h' for a command's flags.
`

// Main runs the command line until it is done or the process is interrupted, and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run runs the command line until it is done or ctx ends, and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demo(ctx, args[1:], stdout, stderr)
	case "load":
		err = load(ctx, args[1:], stdout, stderr)
	case "bench":
		err = bench(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "swarmgate", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "swarmgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "swarmgate:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// processFlags are serve's settings for the process rather than the gateway.
type processFlags struct {
	logLevel  string
	gcPercent int
}

// serveConfig parses serve's flags into the gateway's configuration.
func serveConfig(args []string, stderr io.Writer) (gateway.Config, processFlags, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg gateway.Config
	fs.StringVar(&cfg.Net.Listen, "listen", "127.0.0.1:8000", "address to serve HTTP on")
	origin := fs.String("origin", "", "the site's origin server, e.g. http://127.0.0.1:8080 (without it only /.swarm/ is served)")
	fs.StringVar(&cfg.DataDir, "data", "swarmgate-data", "directory for the gateway's state (stored assets, site versions)")
	fs.StringVar(&cfg.Site.Root, "root", "", "the site's document root, to swarm its assets from the first visitor on")
	fs.BoolVar(&cfg.Site.Inject, "inject", false, "add the loader's script tag to proxied HTML pages")
	fs.BoolVar(&cfg.Visitors.NoUploads, "no-uploads", false, "make every visitor download-only (no browser uploads to others)")
	positive(fs, &cfg.Visitors.UploadRatio, "upload-ratio", gateway.DefaultUploadRatio, "cap a page view's uploads at this multiple of what it holds", false)
	positive(fs, &cfg.Visitors.UploadCeiling, "upload-ceiling", gateway.DefaultUploadCeiling, "cap a page view's uploads at this many bytes", false)
	fs.BoolVar(&cfg.Visitors.IgnoreGPC, "ignore-gpc", false, "let browsers that send Global Privacy Control or Do Not Track upload")
	fs.Func("p2p", "when pages send visitors to the swarm: auto (in a crowd and as it ends; in normal times pages pass unchanged), always, or off (default auto)", func(v string) error {
		cfg.Visitors.P2P = gateway.P2PMode(v)
		return nil
	})
	sw := fs.Bool("service-worker", true, "let the loader install swarmgate's service worker for repeat views (never over a site's own)")
	public := fs.String("public", "", "comma-separated path prefixes whose responses are public even with cookies")
	positive(fs, &cfg.Site.MinSwarmSize, "min-swarm-size", catalog.DefaultMinSize, "smallest asset, in bytes, that browsers fetch from the swarm", false)
	positive(fs, &cfg.Visitors.Fallback, "fallback", gateway.DefaultFallback, "how long browsers wait without progress from peers before using HTTP", false)
	fs.DurationVar(&cfg.Site.MicroCacheTTL, "micro-cache-ttl", gateway.DefaultMicroCacheTTL, "in a crowd, reuse a public page without cache headers this long (origin shield); negative: never")
	stunAddr := fs.String("stun", "auto", "UDP address of the gateway's own STUN server; auto: --listen's host, port 3478; off: none")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	acmeHost := fs.String("acme-host", "", "public host name to get a certificate for automatically (ACME, TLS-ALPN-01 on the listen port)")
	fs.StringVar(&cfg.Net.TLSListen, "tls-listen", "", "also serve HTTPS on this address (e.g. :443), --listen staying plain HTTP; needed to help HTTPS sites")
	var acme acmeFlags
	fs.StringVar(&acme.directory, "acme-directory", "", "ACME directory URL; with --federation, help HTTPS sites with certificates of our own for their names (DNS-01 through the site's DNS)")
	fs.StringVar(&acme.roots, "acme-ca-roots", "", "PEM file of the CAs trusted for the ACME server's HTTPS (a private CA such as pebble's); default: the system's")
	fs.StringVar(&acme.email, "acme-email", "", "contact address of the ACME account for --acme-directory")
	ice := fs.String("ice", "", "comma-separated STUN/TURN URLs for browsers (only servers you run: a third party would learn who visits)")
	fs.StringVar(&cfg.DashboardToken, "dashboard-token", "", "open /.swarm/dashboard to requests carrying this token (?token=); without it, loopback only")
	fs.Func("trusted-proxy", "a front proxy of yours (IP or CIDR; repeat the flag for more) whose X-Forwarded-For or Forwarded names the client", func(v string) error {
		p, err := parsePrefix(v)
		if err == nil {
			cfg.Clients.TrustedProxies = append(cfg.Clients.TrustedProxies, p)
		}
		return err
	})
	positive(fs, &cfg.Clients.MaxConnsPerClient, "max-conns-per-client", gateway.DefaultMaxConnsPerClient, "TCP connections one address (IPv6 /64) may hold open; --trusted-proxy addresses are exempt; -1: no cap", true)
	positive(fs, &cfg.Tracker.MaxSocketsPerClient, "tracker-sockets-per-client", tracker.DefaultMaxSocketsPerClient, "tracker WebSockets one client may hold open; -1: no cap", true)
	positive(fs, &cfg.Tracker.MaxSwarmsPerClient, "swarms-per-client", tracker.DefaultMaxSwarmsPerClient, "tracker swarms one client may have started that still exist; -1: no cap", true)
	positive(fs, &cfg.Monitor.Threshold, "crowd-threshold", monitor.DefaultThreshold, "demand (successful site GETs per second, each client's counted up to --crowd-client-rate) that declares a flash crowd", false)
	positive(fs, &cfg.Monitor.ClientRate, "crowd-client-rate", monitor.DefaultClientRate, "requests per second one client (IPv4 address, IPv6 /64) adds to the demand at most; -1 counts every request", true)
	positive(fs, &cfg.Monitor.Window, "crowd-window", monitor.DefaultWindow, "span the demand is averaged over", false)
	positive(fs, &cfg.Monitor.EnterAfter, "crowd-enter-after", monitor.DefaultEnterAfter, "how long demand must stay over the threshold before a crowd is declared", false)
	positive(fs, &cfg.Monitor.ExitAfter, "crowd-exit-after", monitor.DefaultExitAfter, "how long a crowd must stay calm before it ends", false)
	fs.StringVar(&cfg.Site.Name, "site", "", "the site's host name (as DNS publishes it and helpers see it in Host)")
	fedFile := fs.String("federation", "", "federation file (JSON): the members that lend each other capacity")
	fs.StringVar(&cfg.Net.PeerListen, "peer-listen", "", "address for BitTorrent peers (TCP and uTP), needed to fetch for helpers and to help")
	dnsListen := fs.String("dns-listen", "", "run the embedded authoritative DNS server on this address (UDP and TCP), e.g. :53")
	dnsZone := fs.String("dns-zone", "", "the zone the embedded DNS server is authoritative for")
	dnsNS := fs.String("dns-ns", "", "the zone's name server host name (its addresses: this member's in the federation file)")
	rfc2136 := fs.String("rfc2136", "", "instead of the embedded server, send RFC 2136 updates to this DNS server (host:port)")
	tsig := fs.String("tsig", "", "TSIG key for --rfc2136 as NAME:BASE64SECRET (hmac-sha256)")
	uplinkRate := fs.String("uplink", "", "cap what this machine sends (HTTP and seeding) at this rate, e.g. 20Mbit or 2.5MB; empty: no cap")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "Go GC target (GOGC); lower holds less memory per idle tracker socket for a little more CPU")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String(configFlag, "", "configuration file: serve's flags, one a line (name value); flags given here override it (example: docs/swarmgate.conf)")
	if path, err := configPath(args); err != nil {
		return cfg, processFlags{}, err
	} else if path != "" {
		if err := loadConfigFile(fs, path); err != nil {
			return cfg, processFlags{}, err
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, processFlags{}, err
		}
		return cfg, processFlags{}, errUsage
	}
	if *gcPercent <= 0 {
		return cfg, processFlags{}, fmt.Errorf("%w: --gc-percent must be positive", errBadFlag)
	}
	if err := federationConfig(&cfg, *fedFile); err != nil {
		return cfg, processFlags{}, err
	}
	if err := dnsConfig(&cfg, *dnsListen, *dnsZone, *dnsNS, *rfc2136, *tsig); err != nil {
		return cfg, processFlags{}, err
	}

	if fs.NArg() > 0 {
		return cfg, processFlags{}, fmt.Errorf("%w: unexpected argument %q", errBadFlag, fs.Arg(0))
	}
	if *origin != "" {
		u, err := url.Parse(*origin)
		if err != nil {
			return cfg, processFlags{}, fmt.Errorf("%w: --origin: %v", errBadFlag, err)
		}
		cfg.Site.Origin = u
	}
	switch *stunAddr {
	case "off":
	case "auto":
		host, port, err := net.SplitHostPort(cfg.Net.Listen)
		if err != nil {
			return cfg, processFlags{}, fmt.Errorf("%w: --listen %q: %v", errBadFlag, cfg.Net.Listen, err)
		}
		if port != "0" {
			port = "3478"
		}
		cfg.Net.STUNListen = net.JoinHostPort(host, port)
	default:
		cfg.Net.STUNListen = *stunAddr
	}
	tlsCfg, err := tlsConfig(*tlsCert, *tlsKey, *acmeHost, cfg.DataDir)
	if err != nil {
		return cfg, processFlags{}, err
	}
	cfg.Net.TLS = tlsCfg
	if err := acmeConfig(&cfg, acme); err != nil {
		return cfg, processFlags{}, err
	}
	cfg.Visitors.NoServiceWorker = !*sw
	if *uplinkRate != "" {
		r, err := uplink.ParseRate(*uplinkRate)
		if err != nil {
			return cfg, processFlags{}, fmt.Errorf("%w: --uplink: %v", errBadFlag, err)
		}
		if cfg.Net.Uplink, err = uplink.New(r); err != nil {
			return cfg, processFlags{}, fmt.Errorf("%w: --uplink: %v", errBadFlag, err)
		}
	}
	cfg.Site.PublicPaths = splitList(*public)
	for _, p := range cfg.Site.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			return cfg, processFlags{}, fmt.Errorf("%w: --public %q: paths start with /", errBadFlag, p)
		}
	}
	for _, u := range splitList(*ice) {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return cfg, processFlags{}, fmt.Errorf("%w: --ice %q: want stun:, turn: or turns: URLs", errBadFlag, u)
		}
		cfg.Visitors.ICEServers = append(cfg.Visitors.ICEServers, swarmapi.ICEServer{URLs: []string{u}})
	}
	if err := cfg.Validate(); err != nil {
		return cfg, processFlags{}, fmt.Errorf("%w: %w", errBadFlag, err)
	}
	return cfg, processFlags{logLevel: *logLevel, gcPercent: *gcPercent}, nil
}

// tlsConfig builds the TLS configuration from a certificate and key, or for automatic certificates.
func tlsConfig(certFile, keyFile, acmeHost, dataDir string) (*tls.Config, error) {
	switch {
	case (certFile == "") != (keyFile == ""):
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", errBadFlag)
	case certFile != "" && acmeHost != "":
		return nil, fmt.Errorf("%w: --acme-host and --tls-cert exclude each other", errBadFlag)
	case certFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --tls-cert/--tls-key: %v", errBadFlag, err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case acmeHost != "":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(acmeHost),
			Cache:      autocert.DirCache(filepath.Join(dataDir, "acme")),
		}
		return m.TLSConfig(), nil
	}
	return nil, nil
}

// parsePrefix reads an IP address (a single host) or a CIDR prefix.
func parsePrefix(v string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an IP address or a CIDR prefix such as 10.0.0.0/8: %w", err)
	}
	return p.Masked(), nil
}

// checkMonitor refuses crowd settings that parse but make no sense.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// defaultGCPercent is the daemon's GC target. A gateway in a crowd holds tens of thousands of idle tracker
// sockets whose live state is small (about 1.2 KB each); with Go's default of 100 the heap's headroom more than
// doubles their resident memory. At 25, measured with `swarmgate bench tracker -n 10000`: 2.2 KiB per idle
// socket instead of 3.1, for about 10% more CPU per announce.
const defaultGCPercent = 25

// errBadFlag marks a flag value that parsed but makes no sense.
var errBadFlag = errors.New("bad flag")

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, pf, err := serveConfig(args, stderr)
	if err != nil {
		if errors.Is(err, errBadFlag) {
			fmt.Fprintln(stderr, "swarmgate serve:", err)
			return errUsage
		}
		return err
	}
	log, err := newLogger(stderr, pf.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "swarmgate:", err)
		return errUsage
	}
	if os.Getenv("GOGC") == "" { // an explicit GOGC in the environment wins
		debug.SetGCPercent(pf.gcPercent)
	}
	cfg.Logger = log
	srv, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	a, scheme, ws := srv.Addr(), "http", "ws"
	if cfg.Net.TLS != nil {
		scheme, ws = "https", "wss"
	}
	if cfg.Site.Origin != nil {
		fmt.Fprintf(stdout, "swarmgate: gateway at %s://%s in front of %s\n", scheme, a, cfg.Site.Origin)
	}
	fmt.Fprintf(stdout, "swarmgate: tracker at %s://%s%s, metrics at %s://%s%s\n", ws, a, swarmapi.PathAnnounce, scheme, a, swarmapi.PathMetrics)
	return srv.Run(ctx)
}
