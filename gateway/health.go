package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"

	"github.com/swarmgate/swarmgate/gateway/catalog"
)

// Health checks of ready helpers: a steered client's request, compared with the site's own bytes.

// healthy fetches the start of the version's smallest file from a helper, as a steered client would (Host:
// the site), and compares it with our copy: over HTTP at addr, and over HTTPS at tlsAddr when that is
// valid, where the helper's certificate must be valid for the site under HelperRoots.
func (c *coordinator) healthy(ctx context.Context, addr, tlsAddr netip.AddrPort, v *catalog.Version) error {
	if err := c.probe(ctx, c.http, "http://"+addr.String(), v); err != nil {
		return err
	}
	if tlsAddr.IsValid() {
		return c.probe(ctx, c.https, "https://"+tlsAddr.String(), v)
	}
	return nil
}

// late marks err as errLate when the health check's time ran out (the helper did not answer in time), as
// opposed to a connection refused or reset.
func late(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", errLate, err)
	}
	return err
}

func (c *coordinator) probe(ctx context.Context, hc *http.Client, base string, v *catalog.Version) error {
	f := slices.MinFunc(v.Files, func(a, b catalog.File) int { return int(a.Size - b.Size) })
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+f.Path, nil)
	if err != nil {
		return err
	}
	req.Host = c.site
	const probe = 4096
	req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", probe-1))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnhealthy, late(ctx, err))
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, probe))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnhealthy, f.Path, late(ctx, err))
	}
	if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s: status %d", ErrUnhealthy, f.Path, resp.StatusCode)
	}
	rc, _, err := v.Open(f.Path[1:])
	if err != nil {
		return err
	}
	defer rc.Close()
	want, _ := io.ReadAll(io.LimitReader(rc, int64(len(got))))
	if len(got) == 0 || !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s: wrong bytes", ErrUnhealthy, f.Path)
	}
	return nil
}

// checkHealth checks every ready helper; a failing one is withdrawn from DNS at once.
func (c *coordinator) checkHealth(ctx context.Context) {
	// What a check needs is copied under the lock: a helper's Ready (a repeated one, or one after it was asked
	// again) writes its addresses meanwhile.
	type check struct {
		h             *helperState
		addr, tlsAddr netip.AddrPort
		v             *catalog.Version
	}
	c.mu.Lock()
	var ready []check
	for _, h := range c.helpers {
		if h.state == helperReady {
			ready = append(ready, check{h, h.addr, h.tlsAddr, h.version})
		}
	}
	c.mu.Unlock()
	for _, ck := range ready {
		h := ck.h
		err := c.healthy(ctx, ck.addr, ck.tlsAddr, ck.v)
		if ctx.Err() != nil {
			return // shutting down: no verdict
		}
		c.mu.Lock()
		if h.state != helperReady { // released or withdrawn meanwhile
			c.mu.Unlock()
			continue
		}
		if err == nil {
			h.strikes = 0
			c.mu.Unlock()
			continue
		}
		if errors.Is(err, errLate) {
			if h.strikes++; h.strikes < HealthStrikes {
				strikes := h.strikes
				c.mu.Unlock()
				c.log.Info("coordinator: helper late to answer its health check", slog.String("member", h.member.Name),
					slog.Int("strikes", strikes), slog.Int("of", HealthStrikes), slog.Any("err", err))
				continue
			}
		}
		h.state, h.reason = helperFailed, err.Error()
		addr := h.addr.Addr()
		c.mu.Unlock()
		c.log.Warn("coordinator: helper failed its health check", slog.String("member", h.member.Name), slog.Any("err", err))
		if c.dns != nil {
			if err := c.dns.Withdraw(ctx, c.site, addr); err != nil {
				c.log.Error("coordinator: withdrawing helper", slog.Any("err", err))
			}
			c.forget(addr)
		}
	}
}
