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
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/gateway/examplesite"
)

// demo runs an example origin and a gateway in front of it on loopback.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address of the gateway (the URL to open)")
	dir := fs.String("dir", "", "directory for the example site and the gateway's data (default: a new temporary directory)")
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

	g, err := gateway.New(gateway.Config{Listen: *listen, Origin: originURL, DataDir: filepath.Join(*dir, "gateway"),
		Root: siteDir, Logger: log})
	if err != nil {
		return err
	}
	a := g.Addr().String()
	fmt.Fprintf(stdout, `swarmgate demo
  origin (the example site):  %s
  gateway (open this):        http://%s/
  metrics:                    http://%s%s

Open the gateway's URL in two or more browser tabs: the first takes the 2 MB photo and the 8 MB audio
from the gateway, the later ones from the tabs already open (each tab is a visitor with its own engine).
In a tab's console, swarmgate.stats() tells where its bytes came from. Ctrl-C stops.
`, originURL, a, a, gateway.PathMetrics)
	return g.Run(ctx)
}
