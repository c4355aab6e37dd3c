package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of `swarmgate load`: it is for making a crowd on one's own servers, not for hurting anyone else's.
const (
	maxLoadRate     = 5000
	maxLoadDuration = 10 * time.Minute
	maxLoadClients  = 256
)

// loadTransport is the HTTP transport of load's client i. Against a loopback IPv4 address each client dials
// from a loopback address of its own (127.0.3.1, 127.0.3.2, ...), so that the gateway's monitor sees as
// many clients as -clients: it counts one client's demand only up to its share (--crowd-client-rate). A
// load on a remote server comes from this one machine, and makes a crowd only where that share is lifted.
func loadTransport(u *url.URL, i int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a, err := netip.ParseAddr(u.Hostname()); err != nil || !a.Is4() || !a.IsLoopback() {
		return tr
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(3+i/250), byte(1+i%250))}
	d := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	tr.DialContext = d.DialContext
	return tr
}

// load sends GET requests to one URL at a steady rate for a while, printing a progress line every second.
func load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Float64("rate", 100, fmt.Sprintf("requests per second (at most %d)", maxLoadRate))
	duration := fs.Duration("duration", 30*time.Second, fmt.Sprintf("how long (at most %v)", maxLoadDuration))
	clients := fs.Int("clients", 16, "concurrent connections")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: swarmgate load [flags] URL")
		return errUsage
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		fmt.Fprintf(stderr, "swarmgate load: %q is not an http(s) URL\n", fs.Arg(0))
		return errUsage
	}
	if *rate <= 0 || *rate > maxLoadRate || *duration <= 0 || *duration > maxLoadDuration || *clients <= 0 || *clients > maxLoadClients {
		fmt.Fprintf(stderr, "swarmgate load: rate in (0, %d], duration in (0, %v], clients in [1, %d]\n", maxLoadRate, maxLoadDuration, maxLoadClients)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var ok, failed atomic.Int64
	ticks := make(chan struct{})
	var wg sync.WaitGroup
	for i := range *clients {
		client := &http.Client{Timeout: 10 * time.Second, Transport: loadTransport(u, i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer client.CloseIdleConnections()
			for range ticks {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	every := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	report := time.NewTicker(time.Second)
	defer every.Stop()
	defer report.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			fmt.Fprintf(stdout, "\r%5.0fs  %d ok  %d failed  %.0f req/s ", time.Since(start).Seconds(), ok.Load(), failed.Load(),
				float64(ok.Load()+failed.Load())/time.Since(start).Seconds())
		case <-every.C:
			select {
			case ticks <- struct{}{}:
			default: // every client busy: the target is slower than the rate asked
			}
		}
	}
	close(ticks)
	wg.Wait()
	fmt.Fprintf(stdout, "\rdone: %d ok, %d failed in %v\n", ok.Load(), failed.Load(), time.Since(start).Round(time.Millisecond))
	return nil
}
