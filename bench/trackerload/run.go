package trackerload

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/swarmgate/swarmgate/internal/procstat"
)

// Phases of a run.
const (
	phaseConnect int32 = iota // sockets open and announce once
	phaseIdle                 // sockets sit idle while memory settles
	phaseWarmup               // announces flow, unmeasured
	phaseMeasure              // announces flow and are measured
	phaseDrain                // no new announces; outstanding ones finish
)

// Limits of the load generator's sockets.
const (
	// readBufferSize is the load generator's read buffer per socket; replies are ~150 bytes, relayed offers
	// ~1 KB, and longer messages are read through it.
	readBufferSize = 2 << 10
	// maxReadMessage bounds one message from the tracker under test.
	maxReadMessage = 1 << 20
	// handshakeTimeout bounds one WebSocket handshake.
	handshakeTimeout = 10 * time.Second
	// maxPrimingConns bounds the sockets opened before the memory baseline is read (a tenth of them, at most
	// this many): what a tracker allocates once, on first use, is then not counted per socket.
	maxPrimingConns = 100
	// maxErrorKinds bounds the distinct socket errors kept for the report.
	maxErrorKinds = 10
)

type runner struct {
	cfg      Config
	progress io.Writer
	start    time.Time
	gap      int64 // minimum nanoseconds between two announces of one socket

	conns  []*loadConn // every socket; ws is nil for those that did not connect
	phase  atomic.Int32
	errMu  sync.Mutex
	errs   map[string]int64 // socket errors by message, for the report
	timers sync.WaitGroup   // delayed announces
	reader sync.WaitGroup

	connected, joined atomic.Int64

	// measureStart is when measuring began (ns since start; zero before). An announce is measured when it was
	// sent after measureStart and answered while the phase is phaseMeasure.
	measureStart atomic.Int64
	lat          []uint32 // measured latencies in microseconds, in order of arrival
	nLat         atomic.Int64
	full         chan struct{} // closed when lat is full
	fullOnce     sync.Once

	replies, failures, measuredFailures    atomic.Int64
	timeouts, offersSent, offersReceived   atomic.Int64
	answersReceived, unexpected, socketErr atomic.Int64
	paced, lostTurns                       atomic.Int64
}

// Run runs one benchmark against the tracker at cfg.URL, printing a progress line every
// cfg.ProgressInterval to progress (which may be nil). Every phase is bounded in time; a run of 10,000
// sockets with the defaults takes under a minute when the tracker keeps up.
//
//  1. Connect: Conns sockets open (DialConcurrency at a time) and each announces once (event started, no
//     offer) and waits for its reply. Resident memory of cfg.PID is read once a tenth of the sockets (at most
//     maxPrimingConns) are open, and again after Settle once all are open and idle: the difference over the
//     sockets opened in between is the memory per idle socket.
//  2. Throughput: Concurrency announces are kept in flight; each reply starts the next announce, on the next
//     socket of the same share. After Warmup, replies are counted and latencies (send to reply) recorded for
//     Duration or MaxAnnounces replies.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	cfg = Defaults(cfg)
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	r := &runner{
		cfg:      cfg,
		progress: progress,
		start:    time.Now(),
		gap:      int64(float64(time.Second) / cfg.MaxRatePerConn),
		errs:     make(map[string]int64),
		full:     make(chan struct{}),
		lat:      make([]uint32, cfg.MaxAnnounces),
	}
	defer r.closeAll()
	return r.run(ctx)
}

func (r *runner) now() int64 { return max(1, int64(time.Since(r.start))) }

func (r *runner) running() bool {
	p := r.phase.Load()
	return p == phaseWarmup || p == phaseMeasure
}

func (r *runner) noteErr(err error) {
	msg := err.Error()
	r.errMu.Lock()
	if _, ok := r.errs[msg]; ok || len(r.errs) < maxErrorKinds {
		r.errs[msg]++
	}
	r.errMu.Unlock()
}

func (r *runner) run(ctx context.Context) (Result, error) {
	cfg := &r.cfg
	res := Result{Name: cfg.Name, URL: cfg.URL, Conns: cfg.Conns, Swarms: cfg.Swarms, Concurrency: cfg.Concurrency,
		OfferFraction: cfg.OfferFraction, MaxRatePerConn: cfg.MaxRatePerConn}
	stopProgress := r.startProgress()
	defer stopProgress()

	r.prepare()
	connectCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	t0 := time.Now()
	primed := min(cfg.Conns/10, maxPrimingConns)
	r.connect(connectCtx, 0, primed)
	baseline := r.connected.Load()
	var err error
	if cfg.PID > 0 {
		if res.RSSBefore, err = procstat.ResidentBytes(cfg.PID); err != nil {
			return res, err
		}
	}
	r.connect(connectCtx, primed, cfg.Conns)
	res.ConnectTime = time.Since(t0)
	res.Connected = int(r.connected.Load())
	res.Joined = int(r.joined.Load())
	if err := r.checkConnected(ctx); err != nil {
		return res, err
	}

	r.phase.Store(phaseIdle)
	if err := sleep(ctx, cfg.Settle); err != nil {
		return res, err
	}
	if cfg.PID > 0 {
		if res.RSSIdle, err = procstat.ResidentBytes(cfg.PID); err != nil {
			return res, err
		}
		if n := int64(res.Connected) - baseline; n > 0 {
			res.RSSPerConn = float64(res.RSSIdle-res.RSSBefore) / float64(n)
		}
	}

	if err := r.throughput(ctx, &res); err != nil {
		return res, err
	}
	if cfg.PID > 0 {
		if res.RSSLoaded, err = procstat.ResidentBytes(cfg.PID); err != nil {
			return res, err
		}
	}
	r.errMu.Lock()
	for msg, n := range r.errs {
		res.Errors = append(res.Errors, fmt.Sprintf("%s (×%d)", msg, n))
	}
	r.errMu.Unlock()
	slices.Sort(res.Errors)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("trackerload: %w", ctx.Err())
	}
}

// prepare creates the sockets' announcers, spreading the sockets over the swarms.
func (r *runner) prepare() {
	cfg := &r.cfg
	infoHashes := make([][20]byte, cfg.Swarms)
	for i := range infoHashes {
		infoHashes[i] = randomID()
	}
	r.conns = make([]*loadConn, cfg.Conns)
	for i := range r.conns {
		r.conns[i] = &loadConn{
			ann:    newAnnouncer(infoHashes[i%cfg.Swarms], randomID(), rand.Float64() < cfg.SeederFraction),
			joined: make(chan struct{}),
		}
	}
}

// connect opens the sockets conns[from:to] and announces each once.
func (r *runner) connect(ctx context.Context, from, to int) {
	cfg := &r.cfg
	dialer := &websocket.Dialer{
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferPool:  &sync.Pool{}, // an idle socket holds no write buffer
	}
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range min(cfg.DialConcurrency, to-from) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				r.open(ctx, dialer, r.conns[i])
			}
		})
	}
	wg.Wait()
}

// checkConnected warns when sockets failed to connect, and fails the run when none did.
func (r *runner) checkConnected(ctx context.Context) error {
	cfg := &r.cfg
	if n := r.connected.Load(); n < int64(cfg.Conns) {
		fmt.Fprintf(r.progress, "%s: WARNING: %d of %d sockets connected, %d joined a swarm\n", cfg.Name, n,
			cfg.Conns, r.joined.Load())
		if n == 0 {
			return fmt.Errorf("%w: no socket connected to %s (%s)", ErrConnect, cfg.URL, r.errSummary())
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("trackerload: %w", err)
	}
	return nil
}

func (r *runner) errSummary() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	for msg := range r.errs {
		return msg
	}
	return "no error recorded"
}

// open dials one socket, announces, and waits for the reply.
func (r *runner) open(ctx context.Context, dialer *websocket.Dialer, c *loadConn) {
	ws, _, err := dialer.DialContext(ctx, r.cfg.URL, nil)
	if err != nil {
		if ctx.Err() == nil {
			r.socketErr.Add(1)
			r.noteErr(err)
		}
		return
	}
	ws.SetReadLimit(maxReadMessage)
	c.ws = ws
	r.connected.Add(1)
	r.reader.Add(1)
	go r.readLoop(c)
	if !r.send(c, "started", false) {
		return
	}
	t := time.NewTimer(r.cfg.ReplyTimeout)
	defer t.Stop()
	select {
	case <-c.joined:
	case <-t.C:
		if c.sentAt.Swap(0) != 0 {
			r.timeouts.Add(1)
		}
	case <-ctx.Done():
	}
}

// closeAll closes every socket and waits for the load generator's goroutines.
func (r *runner) closeAll() {
	r.phase.Store(phaseDrain)
	for _, c := range r.conns {
		if c.ws != nil {
			c.closeNow() // without wmu: a write blocked on a tracker that stopped reading must fail
		}
	}
	r.reader.Wait()
	r.timers.Wait()
}
