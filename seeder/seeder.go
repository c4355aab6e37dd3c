package seeder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/swarmgate/swarmgate/tracker"
)

// maxAllocPeerRequestData is the engine's per-connection budget for requested block data being sent.
// anacrolix/torrent v1.59.1 defaults to 1 MiB, and its upload to a peer that keeps more than 64 requests
// outstanding then stalls for good; WebTorrent browsers keep 79–109 blocks (16 KiB each) requested, so 16 MiB
// covers them with room to spare.
const maxAllocPeerRequestData = 16 << 20

// Seeder seeds torrents to browsers over WebRTC through WebSocket trackers (and, when configured, to
// ordinary BitTorrent peers over TCP/uTP).
type Seeder struct {
	cfg       Config
	log       *slog.Logger
	engineLog *slog.Logger // the engine's own messages, filtered by Config.EngineLogLevel
	cl        *torrent.Client
	ln        *listener
	peerID    tracker.ID
	sockets   []io.Closer // TCP and uTP sockets for ordinary BitTorrent peers, when listening

	ctx    context.Context // done when Close begins
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	running  bool
	torrents map[metainfo.Hash]*entry
	peers    map[*peer]struct{}
	creating int // peer connections being made, counted against MaxPeers
	sessions map[*session]struct{}
	// extra are trackers beyond Config.TrackerURLs that some torrents announce to (AnnounceTo), each with the
	// cancel of its session while Run runs one (nil else); runCtx and runWG carry the sessions Run starts for
	// them. A tracker no torrent announces to any more is left (dropExtrasLocked).
	extra  map[string]context.CancelFunc
	runCtx context.Context
	runWG  *sync.WaitGroup

	adding sync.WaitGroup // AddTorrent calls under way
	runs   sync.WaitGroup // Run calls under way
	wg     sync.WaitGroup // answering goroutines, and each peer connection until it is closed

	minAnnounce time.Duration // minAnnounceInterval; tests shorten it

	uploaded       atomic.Int64
	offersAnswered atomic.Int64
	offersRefused  atomic.Int64
	addrSeq        atomic.Uint64
	warnMDNS       sync.Once
}

// entry is one torrent: reserved while its data is verified, ready once it is being seeded.
type entry struct {
	t     *torrent.Torrent
	ready bool
	extra []string // trackers besides Config.TrackerURLs this torrent is announced to
}

// New starts the BitTorrent engine. Tracker connections start with Run.
func New(cfg Config) (*Seeder, error) {
	if err := cfg.fillDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("seeder: data dir: %w", err)
	}
	cc := torrent.NewDefaultClientConfig()
	cc.DataDir = cfg.DataDir
	cc.Seed = true
	cc.NoDHT = true
	cc.DisableTrackers = true   // the seeder announces to trackers itself (see session.go) ...
	cc.DisableWebtorrent = true // ... and owns the WebRTC side
	cc.DisablePEX = true        // browsers' addresses are of no use to other peers, and not ours to share
	cc.NoDefaultPortForwarding = true
	cc.DisableAcceptRateLimiting = true // else one failed handshake blocks a whole /24 for 15 minutes
	cc.MaxAllocPeerRequestDataPerConn = maxAllocPeerRequestData
	cc.EstablishedConnsPerTorrent = cfg.MaxPeers // MaxPeers bounds browsers; do not drop them again
	engineLog := levelHandler{
		h: cfg.Logger.With(slog.String("component", "torrent")).Handler(), min: cfg.EngineLogLevel,
	}
	cc.Slogger = slog.New(engineLog)
	cc.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{
		// Part files and an in-memory piece completion (the default with part files): nothing to close.
		ClientBaseDir: cfg.DataDir, Logger: cc.Slogger,
	})
	// The engine opens no sockets of its own (see listenBitTorrent).
	cc.DisableTCP = true
	cc.DisableUTP = true
	cc.ListenPort = 0
	cl, err := torrent.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("seeder: starting engine: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Seeder{
		cfg:         cfg,
		log:         cfg.Logger,
		engineLog:   cc.Slogger,
		cl:          cl,
		ln:          newListener(),
		peerID:      tracker.ID(cl.PeerID()),
		ctx:         ctx,
		cancel:      cancel,
		torrents:    make(map[metainfo.Hash]*entry),
		peers:       make(map[*peer]struct{}),
		sessions:    make(map[*session]struct{}),
		extra:       make(map[string]context.CancelFunc),
		minAnnounce: minAnnounceInterval,
	}
	cl.AddListener(s.ln)
	if cfg.ListenAddr != "" {
		if err := s.listenBitTorrent(cfg.ListenAddr, engineLog); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// PeerID is the peer ID the seeder announces and handshakes with.
func (s *Seeder) PeerID() tracker.ID { return s.peerID }

// ListenPort is the TCP/uTP port ordinary BitTorrent peers reach the seeder on, or 0 when
// Config.ListenAddr is empty.
func (s *Seeder) ListenPort() int { return s.cl.LocalPort() }

// AddTorrent seeds a torrent whose files are already on disk under dir (Config.DataDir when empty), at the
// paths the metainfo gives: dir/<name> for a single-file torrent, dir/<name>/<path...> for several files
// (as metainfo.Info.BuildFromFilePath describes a file or directory inside dir). It checks every piece
// against the torrent's hashes first and refuses data that is missing or does not match. Trackers that
// are connected learn of the torrent at once.
func (s *Seeder) AddTorrent(mi *metainfo.MetaInfo, dir string) error {
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return fmt.Errorf("seeder: %w: %w", ErrBadMetaInfo, err)
	}
	ih := mi.HashInfoBytes()
	if dir == "" {
		dir = s.cfg.DataDir
	}
	if err := checkFiles(&info, dir); err != nil {
		return fmt.Errorf("seeder: torrent %s: %w", ih.HexString(), err)
	}

	e, err := s.reserve(ih, "add torrent")
	if err != nil {
		return err
	}
	defer s.adding.Done()

	t, err := s.load(ih, mi.InfoBytes, dir)
	s.mu.Lock()
	if err != nil {
		delete(s.torrents, ih)
		s.dropExtrasLocked(e)
		s.mu.Unlock()
		return fmt.Errorf("seeder: torrent %s: %w", ih.HexString(), err)
	}
	e.t, e.ready = t, true
	s.notifySessionsLocked()
	s.mu.Unlock()
	s.log.Info("seeder: seeding", slog.String("infohash", ih.HexString()), slog.String("name", info.BestName()),
		slog.Int64("bytes", info.TotalLength()))
	return nil
}

// reserve claims an infohash for a torrent being added (op names the caller in errors). The caller must call
// s.adding.Done when the add is over, whatever its outcome.
func (s *Seeder) reserve(ih metainfo.Hash, op string) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("seeder: %s %s: %w", op, ih.HexString(), ErrClosed)
	}
	if _, dup := s.torrents[ih]; dup {
		return nil, fmt.Errorf("seeder: %s %s: %w", op, ih.HexString(), ErrDuplicateTorrent)
	}
	e := &entry{}
	s.torrents[ih] = e
	s.adding.Add(1)
	return e, nil
}

// load adds the torrent to the engine and waits until every piece has been hashed, dropping it again when
// any piece is wrong.
func (s *Seeder) load(ih metainfo.Hash, infoBytes []byte, dir string) (*torrent.Torrent, error) {
	st := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		// A fresh in-memory completion per torrent: the engine hashes every piece when the torrent is added
		// (the "initial check"), and keeps no database in the site's directory. It is never closed: closing
		// only clears the map, which would race with a hasher still finishing after Drop.
		PieceCompletion: storage.NewMapPieceCompletion(),
		UsePartFiles:    g.Some(false),
		Logger:          s.engineLog,
	})
	t, isNew := s.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih, InfoBytes: infoBytes, Storage: st})
	if !isNew {
		return nil, ErrDuplicateTorrent
	}
	bad, err := waitVerified(s.ctx, t)
	if err != nil {
		t.Drop()
		return nil, ErrClosed
	}
	if bad > 0 {
		t.Drop()
		return nil, fmt.Errorf("%w: %d of %d pieces", ErrIncomplete, bad, t.NumPieces())
	}
	return t, nil
}

// verifyPoll is how often waitVerified looks at the pieces besides when the engine reports a change.
const verifyPoll = 250 * time.Millisecond

// waitVerified waits until the engine has hashed every piece of t and recorded the result, and returns how
// many pieces failed. (Torrent.VerifyData is no help: it returns once a piece is hashed but before its
// completion is recorded.)
func waitVerified(ctx context.Context, t *torrent.Torrent) (bad int, err error) {
	sub := t.SubscribePieceStateChanges()
	defer sub.Close()
	tick := time.NewTicker(verifyPoll)
	defer tick.Stop()
	for {
		settled := true
		bad = 0
		for _, run := range t.PieceStateRuns() {
			if !run.Ok || run.Checking || run.Marking {
				settled = false
				break
			}
			if !run.Complete {
				bad += run.Length
			}
		}
		if settled {
			return bad, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-sub.Values:
		case <-tick.C:
		}
	}
}

// checkFiles reports the first file of the torrent that is missing under dir or has the wrong size, so that
// the engine never creates or extends files in a site's directory.
func checkFiles(info *metainfo.Info, dir string) error {
	for _, f := range info.UpvertedFiles() {
		parts := []string{dir}
		if info.BestName() != metainfo.NoName {
			parts = append(parts, info.BestName())
		}
		p := filepath.Join(append(parts, f.BestPath()...)...)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMissingFile, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != f.Length {
			return fmt.Errorf("%w: %s is %d bytes, want %d", ErrMissingFile, p, fi.Size(), f.Length)
		}
	}
	return nil
}

// RemoveTorrent stops seeding a torrent: trackers are told it stopped and its peers are disconnected.
func (s *Seeder) RemoveTorrent(ih metainfo.Hash) error {
	s.mu.Lock()
	e, ok := s.torrents[ih]
	if !ok || !e.ready {
		s.mu.Unlock()
		return fmt.Errorf("seeder: torrent %s: %w", ih.HexString(), ErrUnknownTorrent)
	}
	delete(s.torrents, ih)
	s.dropExtrasLocked(e)
	s.notifySessionsLocked()
	s.mu.Unlock()
	e.t.Drop()
	s.log.Info("seeder: stopped seeding", slog.String("infohash", ih.HexString()))
	return nil
}

// swarmState is what the seeder announces for one torrent: bytes uploaded so far, and bytes it still lacks
// (0 once it seeds).
type swarmState struct {
	uploaded, left int64
}

// swarms returns the torrents to announce to the tracker at url: those being seeded, and those being
// fetched with that tracker (Fetch), which announce what they still lack.
func (s *Seeder) swarms(url string) map[tracker.ID]swarmState {
	type item struct {
		t     *torrent.Torrent
		ready bool
	}
	s.mu.Lock()
	ts := make(map[tracker.ID]item, len(s.torrents))
	configured := slices.Contains(s.cfg.TrackerURLs, url)
	for ih, e := range s.torrents {
		if e.t != nil && (configured && e.ready || slices.Contains(e.extra, url)) {
			ts[tracker.ID(ih)] = item{e.t, e.ready}
		}
	}
	s.mu.Unlock()
	out := make(map[tracker.ID]swarmState, len(ts))
	for id, it := range ts {
		stats := it.t.Stats()
		st := swarmState{uploaded: stats.BytesWrittenData.Int64()}
		if !it.ready {
			st.left = max(it.t.BytesMissing(), 1) // complete but not yet verified to the end: still leeching
		}
		out[id] = st
	}
	return out
}

// inSwarm says whether the seeder answers offers for a torrent: one it seeds or one it is fetching.
func (s *Seeder) inSwarm(ih tracker.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.torrents[metainfo.Hash(ih)]
	return ok && e.t != nil
}

func (s *Seeder) notifySessionsLocked() {
	for ss := range s.sessions {
		select {
		case ss.changed <- struct{}{}:
		default:
		}
	}
}

// Run keeps a socket open to every configured tracker, announcing the torrents being seeded and answering
// the offers relayed to it, until ctx is done or the seeder is closed. It reconnects, with backoff, to a
// tracker whose socket drops. It returns nil when ctx ends.
func (s *Seeder) Run(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("seeder: run: %w", ErrClosed)
	case s.running:
		s.mu.Unlock()
		return fmt.Errorf("seeder: run: %w", ErrRunning)
	}
	s.running = true
	s.runs.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		s.runs.Done()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	var wg sync.WaitGroup
	s.mu.Lock()
	s.runCtx, s.runWG = ctx, &wg
	for _, u := range s.cfg.TrackerURLs {
		wg.Go(func() { s.runTracker(ctx, u) })
	}
	for u := range s.extra {
		s.startExtraLocked(u)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.runCtx, s.runWG = nil, nil
	s.mu.Unlock()
	wg.Wait()
	return nil
}

// AnnounceTo announces a torrent being seeded to more trackers than Config.TrackerURLs (a helper joins the
// swarm of the site it helps, so that browsers get pieces from it over WebRTC). Sessions to trackers not yet
// connected start at once when Run is running, else when it starts.
func (s *Seeder) AnnounceTo(ih metainfo.Hash, urls ...string) error {
	for _, u := range urls {
		if err := checkTrackerURL(u); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.torrents[ih]
	if !ok {
		return fmt.Errorf("seeder: announce %s: %w", ih.HexString(), ErrUnknownTorrent)
	}
	s.announceToLocked(e, urls)
	return nil
}

// announceToLocked adds trackers to a torrent's and starts sessions with those new to the seeder.
func (s *Seeder) announceToLocked(e *entry, urls []string) {
	for _, u := range urls {
		if slices.Contains(s.cfg.TrackerURLs, u) || slices.Contains(e.extra, u) {
			continue
		}
		e.extra = append(e.extra, u)
		if _, ok := s.extra[u]; !ok {
			s.startExtraLocked(u)
		}
	}
	s.notifySessionsLocked()
}

// startExtraLocked records tracker u as one some torrent announces to, and starts its session if Run runs.
func (s *Seeder) startExtraLocked(u string) {
	s.extra[u] = nil
	if s.runWG == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	s.extra[u] = cancel
	s.runWG.Go(func() { s.runTracker(ctx, u) })
}

// dropExtrasLocked ends the sessions with the trackers beyond Config.TrackerURLs that e announced to and no
// torrent still does, once e is gone from s.torrents: a helper joins the tracker of each site it helps, and
// would otherwise keep a socket (and, once that tracker is gone, a reconnection every minute) to each for
// the life of the process. Closing the socket takes the seeder out of that tracker's swarms.
func (s *Seeder) dropExtrasLocked(e *entry) {
	used := func(u string) bool {
		for _, o := range s.torrents {
			if slices.Contains(o.extra, u) {
				return true
			}
		}
		return false
	}
	for _, u := range e.extra {
		if used(u) {
			continue
		}
		if cancel := s.extra[u]; cancel != nil {
			cancel()
		}
		delete(s.extra, u)
	}
}

// Stats are the seeder's counters.
type Stats struct {
	Torrents        int   // torrents being seeded
	Trackers        int   // tracker sockets open
	ActivePeers     int   // browsers with an open data channel
	ConnectingPeers int   // answered peer connections whose data channel has not opened yet
	OffersAnswered  int64 // offers answered since New
	OffersRefused   int64 // offers not answered: malformed, over MaxPeers, failed, or for a torrent not seeded
	UploadedBytes   int64 // bytes written to browsers' data channels (peer-wire messages, headers included)
}

// Stats returns the current counters.
func (s *Seeder) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Trackers:       len(s.sessions),
		OffersAnswered: s.offersAnswered.Load(),
		OffersRefused:  s.offersRefused.Load(),
		UploadedBytes:  s.uploaded.Load(),
	}
	for _, e := range s.torrents {
		if e.ready {
			st.Torrents++
		}
	}
	for p := range s.peers {
		if p.isOpen() {
			st.ActivePeers++
		} else {
			st.ConnectingPeers++
		}
	}
	return st
}

// Close stops Run, disconnects every peer and closes the engine. It waits for the seeder's goroutines to
// end. Calling it again does nothing.
func (s *Seeder) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.runs.Wait()
	s.adding.Wait()
	s.mu.Lock()
	peers := make([]*peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close("seeder closing")
	}
	s.wg.Wait()
	errs := s.cl.Close() // before the listener: the engine retries Accept errors until it is closed
	_ = s.ln.Close()
	for _, c := range s.sockets {
		_ = c.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seeder: close: %w", err)
	}
	return nil
}

// Seeding reports whether a torrent has been added (and not removed), whether or not its check is done.
func (s *Seeder) Seeding(ih metainfo.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.torrents[ih]
	return ok
}
