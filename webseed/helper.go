package webseed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/swarmgate/swarmgate/certs"
	"github.com/swarmgate/swarmgate/federation"
	"github.com/swarmgate/swarmgate/seeder"
)

// Phase is where a job stands.
type Phase string

// The phases of a job: it is fetched, then ready (served and seeded) until released; a fetch that fails
// leaves the job failed, holding no data, until it is released or accepted again. A job is served from the
// moment its fetch has begun: what is asked of it goes ahead of the rest of the fetch (see Helper.content).
const (
	PhaseFetching Phase = "fetching"
	PhaseReady    Phase = "ready"
	PhaseFailed   Phase = "failed"
)

// State is a job's progress.
type State struct {
	Phase Phase
	// Done and Total are the bytes verified so far and the bytes in the version (padding included).
	Done, Total int64
	// Err says why the job failed.
	Err error
	// Accepted is when Accept took the job; ReadyAt when it became ready (zero until then).
	Accepted, ReadyAt time.Time
}

// JobInfo describes a job for a dashboard.
type JobInfo struct {
	Site     string
	Version  string
	InfoHash metainfo.Hash
	State
	// Served is what this job has served so far.
	Served Served
}

// errReleased is the cause of a fetch cancelled by Release or Close.
var errReleased = errors.New("released")

// job is one accepted Assignment.
type job struct {
	Assignment
	v        *version
	dir      string
	accepted time.Time
	cancel   context.CancelCauseFunc
	done     chan struct{}          // closed when the fetch goroutine has ended
	serving  chan struct{}          // closed once it is served (servingAt)
	rp       *httputil.ReverseProxy // to the job's origin
	verified atomic.Int64           // bytes verified, from the seeder's progress reports
	served   counters

	// Guarded by Helper.mu.
	phase     Phase
	err       error
	servingAt time.Time // when its fetch began and it was first served (zero until then)
	readyAt   time.Time
	until     time.Time   // Assignment.Until, moved on by RenewBy; zero: no end
	expiry    *time.Timer // ends the job at until; nil when until is zero
}

// liveLocked reports whether the job's time (Assignment.Until) has not run out at now.
func (j *job) liveLocked(now time.Time) bool { return j.until.IsZero() || now.Before(j.until) }

func (j *job) stateLocked() State {
	s := State{Phase: j.phase, Done: j.verified.Load(), Total: j.v.size, Err: j.err, Accepted: j.accepted, ReadyAt: j.readyAt}
	if s.Phase == PhaseReady {
		s.Done = s.Total
	}
	return s
}

// Helper is a server's helping role: it accepts jobs, fetches their versions through the shared seeder,
// and serves them over HTTP (it is an http.Handler). It is safe for concurrent use.
type Helper struct {
	cfg       Config
	log       *slog.Logger
	transport http.RoundTripper
	closeIdle func() // the transport's CloseIdleConnections when New made it
	cache     *cache
	stats     counters
	origin    atomic.Int64 // bytes read from origins

	ctx    context.Context // parent of every fetch; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines

	flightMu sync.Mutex
	flights  map[string]*flight // cache fills under way, by cache key

	mu     sync.Mutex
	closed bool
	jobs   map[metainfo.Hash]*job

	// The federation side (member.go), with Config.Federation.
	members *http.Client // job fetches from members: no redirects, only addresses the member may use
	// memberCtx is the context of the federation side's messages (Ready, Decline, Challenge): Close cancels
	// it first, so that no message to a member holds up the release of the jobs.
	memberCtx  context.Context
	stopMember context.CancelFunc
	certs      *certs.Manager // certificates for helped HTTPS sites; nil without Config.ACME
}

var _ http.Handler = (*Helper)(nil)

// New makes a Helper. It deletes job directories an earlier run left in Config.DataDir.
func New(cfg Config) (*Helper, error) {
	if err := cfg.fillDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("webseed: data dir: %w", err)
	}
	if err := removeStaleJobs(cfg.DataDir); err != nil {
		return nil, err
	}
	h := &Helper{
		cfg: cfg, log: cfg.Logger, transport: cfg.Transport,
		cache:   newCache(cfg.CacheBytes),
		flights: make(map[string]*flight),
		jobs:    make(map[metainfo.Hash]*job),
	}
	if h.transport == nil {
		t := federation.GuardedTransport()
		t.ResponseHeaderTimeout = cfg.OriginTimeout
		h.transport, h.closeIdle = t, t.CloseIdleConnections
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.memberCtx, h.stopMember = context.WithCancel(h.ctx)
	if err := h.startMember(); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// removeStaleJobs deletes the directories in dir named like a job's (an infohash in hex).
func removeStaleJobs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("webseed: data dir: %w", err)
	}
	for _, e := range ents {
		if b, err := hex.DecodeString(e.Name()); err == nil && len(b) == len(metainfo.Hash{}) && e.IsDir() {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("webseed: removing stale job: %w", err)
			}
		}
	}
	return nil
}

// Accept takes on a job and starts fetching its version in the background; State and Wait follow it. It
// refuses a malformed job (ErrBadJob, which includes an Until already past), one whose info dictionary does
// not hash to its infohash (ErrInfoHashMismatch), any job while this server's own site is in a crowd
// (ErrInCrowd), a job for a site or version held for another Requester (ErrTaken), and a job that does not
// fit (ErrNoCapacity). Accepting a job already held for the same requester only moves its Until later,
// unless it failed: then it is fetched again. The job ends at its Until unless renewed.
func (h *Helper) Accept(j Assignment) error {
	ih := j.InfoHash
	dir := filepath.Join(h.cfg.DataDir, ih.HexString())
	v, err := checkJob(&j, dir)
	if err != nil {
		return err
	}
	if h.cfg.InCrowd != nil && h.cfg.InCrowd() {
		return fmt.Errorf("webseed: job %s: %w", ih.HexString(), ErrInCrowd)
	}
	load := h.load()

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("webseed: job %s: %w", ih.HexString(), ErrClosed)
	}
	for _, o := range h.jobs {
		if o.Requester != j.Requester && (o.InfoHash == ih || o.Site == j.Site) {
			return fmt.Errorf("webseed: job %s for %s: held for %q: %w", ih.HexString(), j.Site, o.Requester, ErrTaken)
		}
	}
	if old, ok := h.jobs[ih]; ok {
		if old.phase != PhaseFailed {
			old.renewLocked(j.Until)
			return nil
		}
		<-old.done // its data is already gone; the goroutine is only returning
		old.stopExpiry()
		delete(h.jobs, ih)
	}
	n, held := h.usageLocked()
	if n >= h.cfg.MaxJobs || held+v.size > h.cfg.MaxBytes || load >= 1 {
		return fmt.Errorf("webseed: job %s: %d jobs, %d+%d bytes, load %.2f: %w", ih.HexString(), n, held, v.size, load,
			ErrNoCapacity)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("webseed: job %s: %w", ih.HexString(), err)
	}
	ctx, cancel := context.WithCancelCause(h.ctx)
	jb := &job{Assignment: j, v: v, dir: dir, accepted: time.Now(), cancel: cancel, done: make(chan struct{}), serving: make(chan struct{}),
		rp: h.reverseProxy(j.Origin), phase: PhaseFetching, until: j.Until}
	if !jb.until.IsZero() {
		jb.expiry = time.AfterFunc(time.Until(jb.until), func() { h.expire(jb) })
	}
	h.jobs[ih] = jb
	h.wg.Add(1)
	go h.fetch(ctx, jb)
	h.log.Info("webseed: accepted", slog.String("site", j.Site), slog.String("version", j.Version),
		slog.String("infohash", ih.HexString()), slog.Int64("bytes", v.size), slog.Int("peers", len(j.Peers)), slog.Int("fellows", len(j.Fellows)),
		slog.Int("webseeds", len(j.Webseeds)))
	return nil
}

// usageLocked returns the jobs holding (or fetching) data and their total size.
func (h *Helper) usageLocked() (n int, bytes int64) {
	for _, j := range h.jobs {
		if j.phase != PhaseFailed {
			n++
			bytes += j.v.size
		}
	}
	return n, bytes
}

func (h *Helper) load() float64 {
	if h.cfg.Load == nil {
		return 0
	}
	return h.cfg.Load()
}

// fetch fetches a job's version, checks its files, and records the outcome.
func (h *Helper) fetch(ctx context.Context, jb *job) {
	defer h.wg.Done()
	defer close(jb.done)
	ih := jb.InfoHash
	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.FetchTimeout,
		fmt.Errorf("not complete after %v", h.cfg.FetchTimeout))
	defer cancel()
	mi := &metainfo.MetaInfo{InfoBytes: jb.InfoBytes}
	src := seeder.Sources{Peers: jb.Peers, Webseeds: jb.Webseeds, PreferredPeers: jb.Fellows, PreferredWebseeds: jb.FellowWebseeds,
		Trackers: jb.Trackers, First: jb.v.first}
	// The first progress report comes once the seeder has the torrent: from then on it can be served.
	err := h.cfg.Seeder.Fetch(ctx, mi, jb.dir, src, func(done, _ int64) {
		jb.verified.Store(done)
		h.mu.Lock()
		if jb.servingAt.IsZero() {
			jb.servingAt = time.Now()
			close(jb.serving)
		}
		h.mu.Unlock()
	})
	if err == nil {
		if err = checkFiles(ctx, jb.v); err != nil {
			_ = h.cfg.Seeder.RemoveTorrent(ih)
		}
	}
	if err != nil {
		if rerr := os.RemoveAll(jb.dir); rerr != nil {
			h.log.Warn("webseed: removing job data", slog.String("infohash", ih.HexString()), slog.Any("err", rerr))
		}
	}
	h.mu.Lock()
	if err != nil {
		jb.phase, jb.err = PhaseFailed, fmt.Errorf("webseed: fetching %s: %w", ih.HexString(), err)
	} else {
		jb.phase, jb.readyAt = PhaseReady, time.Now()
	}
	took := time.Since(jb.accepted)
	h.mu.Unlock()
	switch {
	case errors.Is(context.Cause(ctx), errReleased):
		h.log.Debug("webseed: fetch stopped", slog.String("infohash", ih.HexString()))
	case err != nil:
		h.log.Warn("webseed: fetch failed", slog.String("site", jb.Site), slog.String("infohash", ih.HexString()),
			slog.Any("err", err))
	default:
		h.log.Info("webseed: ready", slog.String("site", jb.Site), slog.String("version", jb.Version),
			slog.String("infohash", ih.HexString()), slog.Duration("took", took))
	}
}

// checkFiles confirms that every file of a fetched version is on disk at its size, hashes it for its ETag,
// and compares the hash with the one the job gave.
func checkFiles(ctx context.Context, v *version) error {
	buf := make([]byte, 256<<10)
	for _, f := range v.order {
		if err := ctx.Err(); err != nil {
			return err
		}
		fh, err := os.Open(f.disk)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, fh, buf)
		fh.Close()
		if err != nil {
			return err
		}
		if n != f.size {
			return fmt.Errorf("%s: %d bytes on disk, want %d", f.urlPath, n, f.size)
		}
		var sum [32]byte
		h.Sum(sum[:0])
		if f.want == ([32]byte{}) {
			f.etag = etagOf(sum) // served, with it, only once the job is ready
		} else if sum != f.want {
			return fmt.Errorf("%s: %w", f.urlPath, ErrVerify)
		}
	}
	return nil
}

// etagOf is the quoted ETag of a file whose sha256 is sum.
func etagOf(sum [32]byte) string { return `"` + hex.EncodeToString(sum[:16]) + `"` }

// State returns a job's state, and false when no job has that infohash.
func (h *Helper) State(ih metainfo.Hash) (State, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[ih]
	if !ok {
		return State{}, false
	}
	return j.stateLocked(), true
}

// Ready reports whether a job is ready: its version is complete, verified, served and seeded.
func (h *Helper) Ready(ih metainfo.Hash) bool {
	s, ok := h.State(ih)
	return ok && s.Phase == PhaseReady
}

// held returns the job with infohash ih, or ErrUnknownJob.
func (h *Helper) held(ih metainfo.Hash) (*job, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if j, ok := h.jobs[ih]; ok {
		return j, nil
	}
	return nil, fmt.Errorf("webseed: job %s: %w", ih.HexString(), ErrUnknownJob)
}

// stateOf returns j's state.
func (h *Helper) stateOf(j *job) State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return j.stateLocked()
}

// Wait waits until a job is ready or has failed, and returns its state; it returns an error when ctx ends
// first or no such job is held.
func (h *Helper) Wait(ctx context.Context, ih metainfo.Hash) (State, error) {
	j, err := h.held(ih)
	if err != nil {
		return State{}, err
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return State{}, fmt.Errorf("webseed: waiting for %s: %w", ih.HexString(), context.Cause(ctx))
	}
	return h.stateOf(j), nil
}

// WaitServed waits until a job is served (its fetch has begun: see Helper.content) and piece i of its
// version is verified on disk, that piece going ahead of the rest of the fetch, and returns the job's state:
// Failed when its fetch failed first. It returns an error when ctx ends first or no such job is held.
func (h *Helper) WaitServed(ctx context.Context, ih metainfo.Hash, i int) (State, error) {
	j, err := h.held(ih)
	if err != nil {
		return State{}, err
	}
	select {
	case <-j.serving:
		if err := h.cfg.Seeder.WaitPiece(ctx, ih, i); err != nil {
			select {
			case <-j.done: // the fetch failed, and the seeder dropped the torrent: the state says so
			default:
				return State{}, fmt.Errorf("webseed: waiting for %s: %w", ih.HexString(), err)
			}
		}
	case <-j.done:
	case <-ctx.Done():
		return State{}, fmt.Errorf("webseed: waiting for %s: %w", ih.HexString(), context.Cause(ctx))
	}
	return h.stateOf(j), nil
}

// renewLocked moves the job's end to until when that is later. A job without an end keeps none.
func (j *job) renewLocked(until time.Time) {
	if j.until.IsZero() || !until.After(j.until) {
		return
	}
	j.until = until
	j.expiry.Reset(time.Until(until))
}

// stopExpiry stops the job's timer, if it has one.
func (j *job) stopExpiry() {
	if j.expiry != nil {
		j.expiry.Stop()
	}
}

// RenewBy moves a held job's Until later, for its requester: a gateway whose crowd goes on renews its
// helpers' leases. It fails with ErrUnknownJob when no such job is held (or it failed) and with
// ErrNotRequester when another requested it.
func (h *Helper) RenewBy(requester string, ih metainfo.Hash, until time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[ih]
	switch {
	case !ok || j.phase == PhaseFailed || !j.liveLocked(time.Now()):
		return fmt.Errorf("webseed: job %s: %w", ih.HexString(), ErrUnknownJob)
	case j.Requester != requester:
		return fmt.Errorf("webseed: job %s: renewal by %q: %w", ih.HexString(), requester, ErrNotRequester)
	}
	j.renewLocked(until)
	return nil
}

// Release ends a job: it stops serving and seeding the version (cancelling its fetch if under way) and
// deletes its data. Requests for the site are refused once no ready version of it remains.
func (h *Helper) Release(ih metainfo.Hash) error {
	return h.release(ih, func(*job) error { return nil }, "released")
}

// ReleaseBy is Release on behalf of requester: it fails with ErrNotRequester, ending nothing, when the job
// was requested by someone else.
func (h *Helper) ReleaseBy(requester string, ih metainfo.Hash) error {
	return h.release(ih, func(j *job) error {
		if j.Requester != requester {
			return fmt.Errorf("webseed: job %s: release by %q: %w", ih.HexString(), requester, ErrNotRequester)
		}
		return nil
	}, "released")
}

// expire ends a job whose Until has passed, unless it was renewed or ended meanwhile.
func (h *Helper) expire(jb *job) {
	_ = h.release(jb.InfoHash, func(j *job) error {
		if j != jb || j.liveLocked(time.Now()) {
			return ErrUnknownJob // renewed, or another job: nothing to do
		}
		return nil
	}, "expired")
}

// release ends the job ih if check, called with mu held, allows it.
func (h *Helper) release(ih metainfo.Hash, check func(*job) error, how string) error {
	h.mu.Lock()
	j, ok := h.jobs[ih]
	if !ok {
		h.mu.Unlock()
		return fmt.Errorf("webseed: job %s: %w", ih.HexString(), ErrUnknownJob)
	}
	if err := check(j); err != nil {
		h.mu.Unlock()
		return err
	}
	delete(h.jobs, ih)
	siteLeft := false
	for _, o := range h.jobs {
		siteLeft = siteLeft || o.Site == j.Site
	}
	h.mu.Unlock()
	h.end(j)
	if !siteLeft {
		h.cache.purgeSite(j.Site)
	}
	h.log.Info("webseed: "+how, slog.String("site", j.Site), slog.String("infohash", ih.HexString()),
		slog.String("requester", j.Requester))
	return nil
}

// end stops a job removed from h.jobs and deletes its data.
func (h *Helper) end(j *job) {
	j.stopExpiry()
	j.cancel(errReleased)
	<-j.done
	if err := h.cfg.Seeder.RemoveTorrent(j.InfoHash); err != nil && !errors.Is(err, seeder.ErrUnknownTorrent) {
		h.log.Warn("webseed: unseeding", slog.String("infohash", j.InfoHash.HexString()), slog.Any("err", err))
	}
	if err := os.RemoveAll(j.dir); err != nil {
		h.log.Warn("webseed: removing job data", slog.String("infohash", j.InfoHash.HexString()), slog.Any("err", err))
	}
}

// Spare is the share of the helper's capacity still free, from 0 to 1: what is left of MaxJobs, of
// MaxBytes and of the server's own Load, whichever is least, and 0 while its own site is in a crowd. DNS
// weights helpers by it.
func (h *Helper) Spare() float64 {
	if h.cfg.InCrowd != nil && h.cfg.InCrowd() {
		return 0
	}
	load := h.load()
	h.mu.Lock()
	n, held := h.usageLocked()
	h.mu.Unlock()
	used := max(float64(n)/float64(h.cfg.MaxJobs), float64(held)/float64(h.cfg.MaxBytes), load)
	return min(max(1-used, 0), 1)
}

// Jobs returns the jobs held, oldest first.
func (h *Helper) Jobs() []JobInfo {
	h.mu.Lock()
	out := make([]JobInfo, 0, len(h.jobs))
	for _, j := range h.jobs {
		out = append(out, JobInfo{Site: j.Site, Version: j.Version, InfoHash: j.InfoHash, State: j.stateLocked(),
			Served: j.served.snapshot()})
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b JobInfo) int { return a.Accepted.Compare(b.Accepted) })
	return out
}

// Serves reports whether the helper serves a version of the site named by host (a Host header: the port,
// if any, is ignored), so a server that is also a gateway can send such requests to the Helper.
func (h *Helper) Serves(host string) bool { return len(h.servedFor(normalizeHost(host))) > 0 }

// servedLocked reports whether j is served at now: ready, or fetching and served meanwhile, and its time not
// run out.
func (j *job) servedLocked(now time.Time) bool {
	return (j.phase == PhaseReady || j.phase == PhaseFetching && !j.servingAt.IsZero()) && j.liveLocked(now)
}

// served reports whether the job with infohash ih is served.
func (h *Helper) served(ih metainfo.Hash) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[ih]
	return ok && j.servedLocked(time.Now())
}

// servedFor returns the served jobs of a site, the most recently served first.
func (h *Helper) servedFor(site string) []*job {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*job
	for _, j := range h.jobs {
		if j.Site == site && j.servedLocked(now) {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b *job) int { return b.servingAt.Compare(a.servingAt) })
	return out
}

// servedVersion returns the served job whose version has the given name.
func (h *Helper) servedVersion(name string) *job {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.jobs {
		if j.Version == name && j.servedLocked(now) {
			return j
		}
	}
	return nil
}

// content opens file f of served job j, and gives its ETag (empty: none known yet). Once the job is ready
// it reads the file from disk; before, from the seeder, whose reads wait for verified pieces and put the
// pieces under them ahead of the rest of the fetch: a helper in DNS serves its first visitors while it
// fetches, and what they ask for comes first.
func (h *Helper) content(ctx context.Context, j *job, f *file) (io.ReadSeekCloser, string, error) {
	h.mu.Lock()
	ready := j.phase == PhaseReady
	h.mu.Unlock()
	if ready {
		fh, err := os.Open(f.disk)
		return fh, f.etag, err
	}
	var etag string
	if f.want != ([32]byte{}) {
		etag = f.etag // set when the job was accepted; checkFiles leaves it
	}
	r, err := h.cfg.Seeder.Open(ctx, j.InfoHash, f.torrentPath)
	return r, etag, err
}

// Close releases every job (deleting its data) and waits for the helper's goroutines. Calling it again
// does nothing. The seeder stays open.
func (h *Helper) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.stopMember()
	jobs := h.jobs
	h.jobs = make(map[metainfo.Hash]*job)
	h.mu.Unlock()
	for _, j := range jobs {
		j.stopExpiry()
		j.cancel(errReleased) // all at once; end then waits for each
	}
	for _, j := range jobs {
		h.end(j)
	}
	h.cancel()
	h.wg.Wait()
	if h.closeIdle != nil {
		h.closeIdle()
	}
	if h.certs != nil {
		h.certs.Close()
	}
	return nil
}
