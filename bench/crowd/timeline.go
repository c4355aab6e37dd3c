package crowd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
)

// Sample is the run's state at one moment.
type Sample struct {
	T float64 `json:"t"` // seconds from the run's start
	// Active visitors have arrived and are not yet complete; Done are complete or failed.
	Active int `json:"active"`
	Done   int `json:"done"`
	// State and Rate are the site gateway's: normal, crowd or ending, and the request rate it measures.
	State string  `json:"state,omitempty"`
	Rate  float64 `json:"rate,omitempty"`
	// InDNS counts helpers the site's DNS publishes.
	InDNS int `json:"inDNS,omitempty"`
	// Cumulative bytes sent by the site's machine, by the helpers' machines, and (as engines report them
	// to the gateway, less what the helpers' seeders sent) by browsers to each other.
	Site    int64 `json:"site"`
	Helpers int64 `json:"helpers"`
	Peers   int64 `json:"peers"`
	// OriginRequests counts the requests that have reached the origin so far.
	OriginRequests int64 `json:"originRequests"`
}

// timeline samples a run.
type timeline struct {
	m  *machines
	t0 time.Time // the run's start

	mu       sync.Mutex
	active   int
	done     int
	failed   int
	list     []Sample
	crowdAt  time.Time // when the gateway declared the crowd
	helperAt time.Time // when DNS first published a helper
	arrivals int
	total    int // visitors to come
	lineLen  int // of the last progress line, to blank it out
}

func newTimeline(m *machines, cfg Config, t0 time.Time) *timeline {
	return &timeline{m: m, t0: t0, total: cfg.Browsers + cfg.Plain}
}

func (tl *timeline) arrive() {
	tl.mu.Lock()
	tl.active++
	tl.arrivals++
	tl.mu.Unlock()
}

func (tl *timeline) leave(failed bool) {
	tl.mu.Lock()
	tl.active--
	tl.done++
	if failed {
		tl.failed++
	}
	tl.mu.Unlock()
}

func (tl *timeline) samples() []Sample {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.list)
}

// sample records a Sample every interval until ctx ends, and rewrites a progress line on progress.
func (tl *timeline) sample(ctx context.Context, interval time.Duration, progress io.Writer, mode Mode) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastLine := time.Time{}
	for final := false; ; {
		select {
		case <-ctx.Done():
			final = true // one last sample: the timeline ends with the run's final state
		default:
		}
		now := time.Now()
		s := Sample{T: now.Sub(tl.t0).Seconds(), Site: tl.m.siteSent(), OriginRequests: tl.m.originRequests.Load()}
		if f := tl.m.fed; f != nil {
			g := f.Servers[0]
			snap := g.Snapshot()
			s.State, s.Rate = snap.State, snap.Rate
			s.Helpers = tl.m.helpersSent()
			var helperSeeders int64
			for _, h := range f.Servers[1:] {
				helperSeeders += h.Bytes()[gateway.SourceSeeder]
			}
			s.Peers = max(snap.Bytes[gateway.SourcePeers]-helperSeeders, 0)
			for _, a := range g.Published() {
				if a != f.IPs[0] {
					s.InDNS++
				}
			}
			tl.mu.Lock()
			if s.State == "crowd" && tl.crowdAt.IsZero() {
				tl.crowdAt = snap.StateSince
			}
			if s.InDNS > 0 && tl.helperAt.IsZero() {
				tl.helperAt = now
			}
			tl.mu.Unlock()
		}
		tl.mu.Lock()
		s.Active, s.Done = tl.active, tl.done
		tl.list = append(tl.list, s)
		failed, arrivals := tl.failed, tl.arrivals
		tl.mu.Unlock()
		if progress != nil && now.Sub(lastLine) >= time.Second {
			lastLine = now
			line := fmt.Sprintf("%s %5.0fs  visitors %d/%d arrived, %d done (%d failed), %d loading  site sent %s",
				mode, s.T, arrivals, tl.total, s.Done, failed, s.Active, mb(s.Site))
			if s.State != "" {
				line += fmt.Sprintf("  state %s  helpers in DNS %d", s.State, s.InDNS)
			}
			fmt.Fprintf(progress, "\r%-*s", tl.lineLen, line)
			tl.lineLen = len(line)
		}
		if final {
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
