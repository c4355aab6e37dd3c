package seeder

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/swarmgate/swarmgate/tracker"
)

// Tracker connection timing.
const (
	// minReconnectDelay and maxReconnectDelay bound the backoff between attempts to reach a tracker: the
	// first retry comes soon (a gateway restart takes seconds), later ones no more often than once a minute.
	minReconnectDelay = time.Second
	maxReconnectDelay = time.Minute
	// stableSession is how long a socket must have lasted for its loss to restart the backoff.
	stableSession = time.Minute
	// minAnnounceInterval and maxAnnounceInterval bound the interval a tracker asks for. A WebSocket
	// tracker keeps a peer while its socket is open, so re-announcing only refreshes counts: more often
	// than every 10 s would be noise, less often than every 30 min would look dead to a strict tracker.
	minAnnounceInterval = 10 * time.Second
	maxAnnounceInterval = 30 * time.Minute
	// failureRetry is when a torrent is announced again after the tracker refused an announce (for
	// example because the previous socket still held the peer ID).
	failureRetry = 10 * time.Second
)

// session is one open socket to a tracker: it announces the seeder's torrents and hands relayed offers
// to the answering code.
type session struct {
	s       *Seeder
	url     string
	c       *tracker.Client
	log     *slog.Logger
	changed chan struct{} // the set of torrents changed

	// Only touched by the session's goroutine.
	announced map[tracker.ID]*announceState
}

type announceState struct {
	left     int64 // as last announced
	interval time.Duration
	sent     time.Time // last announce
	next     time.Time // when the next one is due
}

// runTracker keeps a session with one tracker until ctx is done.
func (s *Seeder) runTracker(ctx context.Context, url string) {
	log := s.log.With(slog.String("tracker", url))
	delay := minReconnectDelay
	for {
		start := time.Now()
		err := s.runSession(ctx, url, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= stableSession {
			delay = minReconnectDelay
		}
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64())) // jitter: trackers restart for everyone
		log.Warn("seeder: tracker unreachable; retrying", slog.Any("err", err), slog.Duration("in", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// runSession connects to a tracker and serves the socket until it fails or ctx is done.
func (s *Seeder) runSession(ctx context.Context, url string, log *slog.Logger) error {
	c, err := tracker.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ss := &session{s: s, url: url, c: c, log: log, changed: make(chan struct{}, 1), announced: make(map[tracker.ID]*announceState)}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}()
	log.Info("seeder: connected to tracker")

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if err := ss.reconcile(); err != nil {
		return err
	}
	for {
		timer.Reset(ss.untilNext())
		select {
		case <-ctx.Done():
			// Closing the socket takes the seeder out of every swarm; no "stopped" announces needed.
			return ctx.Err()
		case m, ok := <-c.Messages():
			if !ok {
				return fmt.Errorf("seeder: %w: %w", ErrTrackerClosed, c.Err())
			}
			ss.handle(ctx, m)
		case <-ss.changed:
			if err := ss.reconcile(); err != nil {
				return err
			}
		case <-timer.C:
			if err := ss.announceDue(); err != nil {
				return err
			}
		}
	}
}

// handle serves one message from the tracker.
func (ss *session) handle(ctx context.Context, m *tracker.Message) {
	switch {
	case m.FailureReason != "":
		ss.log.Warn("seeder: tracker refused a request", slog.String("reason", m.FailureReason),
			slog.String("infohash", m.InfoHash.String()))
		if st := ss.announced[m.InfoHash]; st != nil {
			st.next = time.Now().Add(failureRetry)
		}
	case m.Offer != nil:
		s := ss.s
		if !s.inSwarm(m.InfoHash) {
			s.offersRefused.Add(1)
			return
		}
		s.wg.Go(func() { s.answer(ctx, ss.c, m, ss.log) })
	case m.Answer != nil:
		// The seeder makes no offers; nothing to do.
	default: // an announce reply
		if st := ss.announced[m.InfoHash]; st != nil && m.Interval > 0 {
			st.interval = min(max(time.Duration(m.Interval)*time.Second, ss.s.minAnnounce), maxAnnounceInterval)
			st.next = st.sent.Add(st.interval)
		}
	}
}

// reconcile announces torrents added since the last call ("started"), those fetched to the end since
// ("completed") and those removed ("stopped").
func (ss *session) reconcile() error {
	current := ss.s.swarms(ss.url)
	for ih, st := range current {
		switch a := ss.announced[ih]; {
		case a == nil:
			ss.announced[ih] = &announceState{interval: tracker.DefaultInterval}
			if err := ss.announce(ih, tracker.EventStarted, st); err != nil {
				return err
			}
		case a.left > 0 && st.left == 0:
			if err := ss.announce(ih, tracker.EventCompleted, st); err != nil {
				return err
			}
		}
	}
	for ih := range ss.announced {
		if _, ok := current[ih]; !ok {
			delete(ss.announced, ih)
			if err := ss.announce(ih, tracker.EventStopped, swarmState{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// announceDue re-announces the torrents whose interval has passed.
func (ss *session) announceDue() error {
	now := time.Now()
	var due []tracker.ID
	for ih, st := range ss.announced {
		if !now.Before(st.next) {
			due = append(due, ih)
		}
	}
	if len(due) == 0 {
		return nil
	}
	current := ss.s.swarms(ss.url)
	for _, ih := range due {
		if err := ss.announce(ih, "", current[ih]); err != nil {
			return err
		}
	}
	return nil
}

// announce tells the tracker what the seeder holds: the whole torrent, or all but st.left bytes while it
// fetches. It makes no offers: browsers offer, the seeder answers.
func (ss *session) announce(ih tracker.ID, event string, st swarmState) error {
	if a := ss.announced[ih]; a != nil {
		a.sent = time.Now()
		a.next = a.sent.Add(a.interval)
		a.left = st.left
	}
	err := ss.c.Announce(tracker.Announce{
		InfoHash: ih, PeerID: ss.s.peerID, Event: event, Uploaded: st.uploaded, Left: st.left,
	})
	if err != nil {
		return fmt.Errorf("seeder: announce %s: %w", ih, err)
	}
	return nil
}

// untilNext is the time until the next announce is due.
func (ss *session) untilNext() time.Duration {
	d := maxAnnounceInterval
	now := time.Now()
	for _, st := range ss.announced {
		d = min(d, st.next.Sub(now))
	}
	return max(d, 0)
}
