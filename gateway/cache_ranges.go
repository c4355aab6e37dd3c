package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/gateway/catalog"
	"github.com/swarmgate/swarmgate/internal/counting"
)

// Limits of learning from Range requests.
const (
	// maxWholeFetches bounds the background fetches of whole assets learned from Range requests at once:
	// each holds an origin connection and streams a file to disk, and two leave the origin's link to its
	// visitors while media (fetched by Range by every browser) still enter the swarm.
	maxWholeFetches = 2
	// maxWholeFetchSize bounds one asset fetched whole: the catalogue's own bound on a resource.
	maxWholeFetchSize = catalog.DefaultMaxResourceSize
	// wholeFetchTimeout bounds one background fetch: 1 GiB at about 30 Mbit/s.
	wholeFetchTimeout = 5 * time.Minute
)

// rangeLearner fetches whole, once and in the background, public assets that clients ask for only by
// Range (browsers fetch <video> and <audio> that way, and download managers large files), so that they
// enter the next version like any other asset.
type rangeLearner struct {
	mu       sync.Mutex
	inFlight map[string]bool
}

// learnFromRange starts the whole fetch of the asset a public 206 is part of, when it is worth swarming
// (MinSwarmSize to maxWholeFetchSize), not stored fresh already, not being fetched, and a fetch slot is
// free (else a later Range request tries again).
func (s *Server) learnFromRange(resp *http.Response, st *storeState) {
	if resp.StatusCode != http.StatusPartialContent || len(resp.Header.Values("Content-Encoding")) > 0 ||
		catalog.CheckPath(st.key) != nil || s.cfg.Site.Origin == nil {
		return
	}
	if ok, _ := sharedCacheable(resp.Header); !ok {
		return
	}
	total := rangeTotal(resp.Header.Get("Content-Range"))
	if total < s.cfg.Site.MinSwarmSize || total > maxWholeFetchSize {
		return
	}
	if res, ok := s.cat.Lookup(st.key); ok && time.Now().Before(res.Expires) {
		return
	}
	rl := &s.ranges
	rl.mu.Lock()
	if rl.inFlight == nil {
		rl.inFlight = map[string]bool{}
	}
	if rl.inFlight[st.key] || len(rl.inFlight) >= maxWholeFetches || !s.startLearning(st.key) {
		rl.mu.Unlock()
		return
	}
	rl.inFlight[st.key] = true
	rl.mu.Unlock()
	host := resp.Request.Host
	s.background(func() {
		defer func() {
			rl.mu.Lock()
			delete(rl.inFlight, st.key)
			rl.mu.Unlock()
		}()
		if err := s.fetchWhole(st.key, host); err != nil {
			s.log.Info("gateway: not learned from ranges", slog.String("path", st.key), slog.Any("err", err))
		}
	})
}

// fetchWhole GETs key from the origin (as the site's host, anonymously, in identity encoding) and stores it
// when the whole response may be shared.
func (s *Server) fetchWhole(key, host string) error {
	ctx, cancel := context.WithTimeout(s.runCtx, wholeFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.cfg.Site.Origin.String(), "/")+key, nil)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	req.Host = host
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := (timedTransport{http.DefaultTransport, s.mon}).RoundTrip(req)
	if err != nil {
		return fmt.Errorf("gateway: fetching %s whole: %w", key, err)
	}
	defer resp.Body.Close()
	cacheable, lifetime := sharedCacheable(resp.Header)
	if resp.StatusCode != http.StatusOK || !cacheable || len(resp.Header.Values("Content-Encoding")) > 0 {
		return fmt.Errorf("gateway: fetching %s whole: %w", key, errNotShareable)
	}
	received := time.Now().Add(-ageOf(resp.Header))
	meta := catalog.Meta{ContentType: resp.Header.Get("Content-Type"), Header: catalog.StoredHeader(resp.Header),
		Received: received, Expires: received.Add(lifetime)}
	changed, err := s.cat.Learn(key, meta, resp.ContentLength, counting.NewReadCloser(resp.Body, &s.counters.origin))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	s.log.Info("gateway: learned from ranges", slog.String("path", key))
	if changed {
		s.kickBuild()
	}
	return nil
}

// rangeTotal is the complete length in a Content-Range field ("bytes 0-99/1234"), -1 when unknown.
func rangeTotal(v string) int64 {
	unit, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return -1
	}
	_, total, ok := strings.Cut(rest, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
