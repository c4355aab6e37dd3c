package tracker

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Config configures a Tracker. Zero fields take the defaults in limits.go.
type Config struct {
	// Interval is the announce interval sent to clients.
	Interval time.Duration
	// OfferTTL is how long an offer relayed to a peer may be answered.
	OfferTTL time.Duration
	// PingInterval is how often idle sockets are pinged; PongWait how long a silent socket lives.
	PingInterval time.Duration
	PongWait     time.Duration
	// WriteTimeout bounds one write to a socket.
	WriteTimeout time.Duration
	// MessageRate (per second) and MessageBurst bound the messages one socket may send.
	MessageRate  float64
	MessageBurst float64
	// Client returns the address of a request's client (behind the operator's proxies, the one they name);
	// nil takes the TCP peer. The caps below are kept per client: an IPv4 address, or an IPv6 /64.
	Client func(r *http.Request) netip.Addr
	// MaxSocketsPerClient bounds the sockets one client holds open (DefaultMaxSocketsPerClient);
	// MaxSwarmsPerClient the swarms it has started that still exist (DefaultMaxSwarmsPerClient). Negative:
	// no bound (benchmarks that open thousands of sockets from one address).
	MaxSocketsPerClient int
	MaxSwarmsPerClient  int
	// CheckOrigin decides whether a browser page from the request's Origin may connect. Nil allows every
	// origin: a tracker serves peers of any site that names it, as public WebTorrent trackers do.
	CheckOrigin func(r *http.Request) bool
	// Logger receives the tracker's logs; nil discards them.
	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.OfferTTL <= 0 {
		c.OfferTTL = DefaultOfferTTL
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MessageRate <= 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.Client == nil {
		c.Client = peerAddr
	}
	if c.MaxSocketsPerClient == 0 {
		c.MaxSocketsPerClient = DefaultMaxSocketsPerClient
	}
	if c.MaxSwarmsPerClient == 0 {
		c.MaxSwarmsPerClient = DefaultMaxSwarmsPerClient
	}
	if c.CheckOrigin == nil {
		c.CheckOrigin = func(*http.Request) bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Tracker is a WebTorrent tracker. It is an http.Handler that upgrades requests to WebSockets.
type Tracker struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	stats    counters

	mu     sync.Mutex
	swarms map[ID]*swarm
	conns  map[*conn]struct{}
	// clients holds what each client has open, for the caps per client; entries go when they come to zero.
	clients map[netip.Prefix]*holdings
	poll    *poller // started with the first socket
	closed  bool
}

var _ http.Handler = (*Tracker)(nil)

// New returns a tracker with the given configuration.
func New(cfg Config) *Tracker {
	cfg.fillDefaults()
	return &Tracker{
		cfg: cfg,
		log: cfg.Logger,
		upgrader: websocket.Upgrader{
			// Zero buffer sizes reuse the hijacked connection's reader (whose buffer the tracker lends only
			// while reading, see hijackWriter); the pool lends write buffers only while a write is under way, so
			// an idle socket holds none.
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     cfg.CheckOrigin,
		},
		swarms:  make(map[ID]*swarm),
		conns:   make(map[*conn]struct{}),
		clients: make(map[netip.Prefix]*holdings),
	}
}

// holdings is what one client has open. Guarded by Tracker.mu.
type holdings struct{ sockets, swarms int }

// hold changes a client's holdings by the deltas, dropping the entry when it empties. Called with mu held.
func (t *Tracker) hold(k netip.Prefix, sockets, swarms int) {
	h := t.clients[k]
	if h == nil {
		h = &holdings{}
		t.clients[k] = h
	}
	h.sockets += sockets
	h.swarms += swarms
	if h.sockets <= 0 && h.swarms <= 0 {
		delete(t.clients, k)
	}
}

// clientKey is the unit the caps per client are kept for: an IPv4 address, or an IPv6 /64 (one host
// usually has a whole /64). The zero Addr gives the zero Prefix: clients of unknown address share it.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// peerAddr is Config.Client's default: the TCP peer's address.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// ServeHTTP upgrades the request to a WebSocket and returns; the socket is served until it closes (by the
// poller's goroutines, see poll_linux.go).
func (t *Tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "tracker: this is a WebSocket tracker; connect with a WebSocket client", http.StatusUpgradeRequired)
		return
	}
	client := clientKey(t.cfg.Client(r))
	t.mu.Lock()
	if h := t.clients[client]; h != nil && t.cfg.MaxSocketsPerClient > 0 && h.sockets >= t.cfg.MaxSocketsPerClient {
		t.mu.Unlock()
		t.stats.refused.Add(1)
		t.log.Debug("tracker: too many sockets from one client", slog.String("client", client.String()))
		http.Error(w, "tracker: too many connections from your address", http.StatusTooManyRequests)
		return
	}
	t.hold(client, 1, 0) // released by drop, or below if the socket never opens
	t.mu.Unlock()
	opened := false
	defer func() {
		if !opened {
			t.mu.Lock()
			t.hold(client, -1, 0)
			t.mu.Unlock()
		}
	}()
	s := getScratch()
	var hw *hijackWriter
	if _, ok := w.(http.Hijacker); ok {
		hw = &hijackWriter{ResponseWriter: w, s: s}
		w = hw
	}
	ws, err := t.upgrader.Upgrade(w, r, nil)
	if hw != nil && hw.br != nil {
		// The handshake is done; the reader holds no bytes (gorilla refuses data sent before it ends).
		s.rd = *hw.br
		s.rd.Reset(nil)
		*hw.br = bufio.Reader{}
	}
	putScratch(s)
	if err != nil {
		t.log.Debug("tracker: upgrade failed", slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		return
	}
	now := time.Now().UnixNano()
	c := &conn{t: t, ws: ws, client: client, tokens: t.cfg.MessageBurst, lastRefill: now, lastPing: now}
	if hw != nil && hw.br != nil {
		c.br = hw.br
	}
	c.lastRead.Store(now)
	c.state.Store(stBusy)
	ws.SetReadLimit(MaxMessageSize)
	// Pings and pongs between messages are served by readControl; gorilla's default handlers serve those that
	// arrive between the frames of a fragmented message.
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.close(websocket.CloseGoingAway, "tracker shutting down")
		return
	}
	if t.poll == nil {
		if t.poll, err = newPoller(t); err != nil {
			t.mu.Unlock()
			t.log.Error("tracker: cannot serve sockets", slog.Any("err", err))
			c.close(websocket.CloseInternalServerErr, "tracker failure")
			return
		}
	}
	p := t.poll
	t.conns[c] = struct{}{}
	opened = true // drop releases the socket's hold from now on
	t.mu.Unlock()
	t.stats.connsTotal.Add(1)
	if c.br == nil || !p.add(c) {
		go c.serveBlocking()
	}
}

// arm returns an idle socket to the poller.
func (t *Tracker) arm(c *conn) error {
	t.mu.Lock()
	p := t.poll
	t.mu.Unlock()
	return p.arm(c)
}

// handle serves one message.
func (t *Tracker) handle(c *conn, s *scratch, data []byte) {
	req, err := parseRequest(data, true)
	if err != nil {
		t.refuse(c, s, req, err)
		return
	}
	switch {
	case req.Action == ActionScrape:
		t.stats.scrapes.Add(1)
		c.sendJSON(s, t.scrape(req))
	case req.IsAnswer():
		t.stats.answers.Add(1)
		if err := t.answer(c, req); err != nil {
			t.refuse(c, s, req, err)
		}
	default:
		t.stats.announces.Add(1)
		if err := t.announce(c, s, req); err != nil {
			t.refuse(c, s, req, err)
		}
	}
}

func (t *Tracker) refuse(c *conn, s *scratch, req *Request, err error) {
	t.stats.refused.Add(1)
	c.logRefused(req, err)
	c.sendFailure(s, req, err)
}

func failure(req *Request, err error) *FailureReply {
	f := &FailureReply{Action: ActionAnnounce, FailureReason: err.Error()}
	if req != nil {
		f.Action = req.Action
		if len(req.InfoHashes) == 1 {
			f.InfoHash = &req.InfoHashes[0]
		}
	}
	return f
}

// sendJSON sends one of the tracker's replies to the socket whose reads the caller serves.
func (c *conn) sendJSON(s *scratch, v any) {
	msg, err := json.Marshal(v)
	if err != nil { // only our own reply types are marshalled; they always encode
		c.logger().Error("tracker: encoding reply", slog.Any("err", err))
		return
	}
	c.send(msg, true)
}

// announce registers or updates the socket's peer in a swarm and relays its offers.
func (t *Tracker) announce(c *conn, s *scratch, req *Request) error {
	ih := req.InfoHashes[0]
	type delivery struct {
		to    *conn
		offer int
	}
	var buf [MaxOffersPerAnnounce]delivery
	out := buf[:0]
	var complete, incomplete int
	var stale *conn // a socket found closed, to drop
	defer func() {
		if stale != nil {
			stale.reap()
		}
	}()

	t.mu.Lock()
	if c.gone {
		t.mu.Unlock()
		return nil // closed under us: nobody to answer
	}
	sw := t.swarms[ih]
	k := peerKey{ih, req.PeerID}
	p := c.peer(k)
	if req.Event == EventStopped {
		if p != nil {
			t.leave(c, k, p)
		}
		if sw = t.swarms[ih]; sw != nil {
			complete, incomplete = sw.counts()
		}
		t.mu.Unlock()
		c.sendAnnounceReply(s, ih, complete, incomplete)
		return nil
	}
	if p == nil {
		if c.numPeers() >= MaxTorrentsPerConn {
			t.mu.Unlock()
			return ErrTooManyTorrents
		}
		if q := sw.lookup(req.PeerID); q != nil {
			if q.conn.open() {
				t.mu.Unlock()
				return ErrPeerIDInUse
			}
			// Its socket was closed under the tracker (the sweeper would find out within a tick): the client
			// is back on a new socket, as when it lost the old one.
			t.leave(q.conn, q.key(), q)
			stale = q.conn
			sw = t.swarms[ih]
		}
		if sw == nil {
			if h := t.clients[c.client]; h != nil && t.cfg.MaxSwarmsPerClient > 0 && h.swarms >= t.cfg.MaxSwarmsPerClient {
				t.mu.Unlock()
				return ErrTooManySwarms
			}
			sw = newSwarm()
			sw.creator = c.client
			t.hold(c.client, 0, 1)
			t.swarms[ih] = sw
		}
		p = &peer{ih: ih, id: req.PeerID, conn: c}
		sw.add(p)
		c.addPeer(p)
	}
	switch {
	case req.Event == EventCompleted:
		if !p.seeder {
			sw.downloaded++
		}
		sw.setSeeder(p, true)
	case req.Left == 0:
		sw.setSeeder(p, true)
	case req.Left > 0:
		sw.setSeeder(p, false)
	}
	p.paused = req.Event == EventPaused
	if len(req.Offers) > 0 {
		now := time.Now()
		var picked [MaxOffersPerAnnounce]*peer
		for i, target := range sw.pick(p, len(req.Offers), picked[:0]) {
			o := req.Offers[i]
			if !target.conn.expectAnswer(pendingKey{ih, o.ID, p.id}, pendingOffer{from: c, expires: now.Add(t.cfg.OfferTTL)}, now) {
				continue
			}
			out = append(out, delivery{target.conn, i})
		}
	}
	complete, incomplete = sw.counts()
	t.mu.Unlock()

	c.sendAnnounceReply(s, ih, complete, incomplete)
	for _, d := range out {
		o := req.Offers[d.offer]
		msg := appendOfferMessage(make([]byte, 0, len(o.SDP)+offerMessageOverhead), o.SDP, o.ID, p.id, ih)
		d.to.send(msg, false)
	}
	t.stats.offersRelayed.Add(int64(len(out)))
	return nil
}

func (c *conn) sendAnnounceReply(s *scratch, ih ID, complete, incomplete int) {
	s.out = appendAnnounceReply(s.out[:0], int(c.t.cfg.Interval/time.Second), ih, complete, incomplete)
	c.send(s.out, true)
}

// expectAnswer records an offer relayed to c. It reports false when c has too many offers unanswered. Called
// with Tracker.mu held.
// Expired offers are cleared once it is half full, at most once a second: a socket whose peers answer nothing
// (a seeder at its peer limit in a crowd, or a client that offers to itself) keeps it full, and each offer
// relayed to it walked the whole map under Tracker.mu before it was refused.
func (c *conn) expectAnswer(k pendingKey, po pendingOffer, now time.Time) bool {
	if len(c.pending) >= MaxPendingOffersPerConn/2 && now.Sub(c.purged) >= time.Second {
		c.purged = now
		for k, v := range c.pending {
			if now.After(v.expires) {
				delete(c.pending, k)
			}
		}
	}
	if len(c.pending) >= MaxPendingOffersPerConn {
		return false
	}
	if c.pending == nil {
		c.pending = make(map[pendingKey]pendingOffer)
	}
	c.pending[k] = po
	return true
}

// leave removes the socket's peer from a swarm, and the swarm when it empties. Called with Tracker.mu held.
func (t *Tracker) leave(c *conn, k peerKey, p *peer) {
	s := t.swarms[k.infoHash]
	s.remove(p)
	c.removePeer(p)
	if len(s.list) == 0 {
		delete(t.swarms, k.infoHash)
		t.hold(s.creator, 0, -1)
	}
}

// answer routes an answer back to the socket whose offer it answers.
func (t *Tracker) answer(c *conn, req *Request) error {
	ih := req.InfoHashes[0]
	t.mu.Lock()
	if c.peer(peerKey{ih, req.PeerID}) == nil {
		t.mu.Unlock()
		return ErrNotInSwarm
	}
	k := pendingKey{ih, req.OfferID, req.ToPeerID}
	po, ok := c.pending[k]
	delete(c.pending, k)
	var offerer *peer
	if s := t.swarms[ih]; s != nil {
		offerer = s.peers[req.ToPeerID]
	}
	t.mu.Unlock()
	if !ok || time.Now().After(po.expires) || offerer == nil || offerer.conn != po.from {
		return ErrNoSuchOffer
	}
	po.from.send(appendAnswerMessage(make([]byte, 0, len(req.Answer)+offerMessageOverhead), req.Answer,
		req.OfferID, req.PeerID, ih), false)
	t.stats.answersRelayed.Add(1)
	return nil
}

func (t *Tracker) scrape(req *Request) *ScrapeReply {
	r := &ScrapeReply{Action: ActionScrape, Files: make(map[string]ScrapeFile)}
	file := func(s *swarm) ScrapeFile {
		complete, incomplete := s.counts()
		return ScrapeFile{Complete: complete, Incomplete: incomplete, Downloaded: s.downloaded}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(req.InfoHashes) == 0 {
		for ih, s := range t.swarms {
			if len(r.Files) == MaxScrapeAll {
				break
			}
			r.Files[binaryString(ih[:])] = file(s)
		}
		return r
	}
	for _, ih := range req.InfoHashes {
		f := ScrapeFile{}
		if s := t.swarms[ih]; s != nil {
			f = file(s)
		}
		r.Files[binaryString(ih[:])] = f
	}
	return r
}

// drop forgets a socket that closed: its peers leave their swarms and its pending offers are discarded. Only
// the goroutine that owns the socket's reads drops it, once they are over.
func (t *Tracker) drop(c *conn) {
	c.close(websocket.CloseAbnormalClosure, "")
	t.mu.Lock()
	if p := c.peer1; p != nil {
		t.leave(c, p.key(), p)
	}
	for k, p := range c.peers {
		t.leave(c, k, p)
	}
	c.pending = nil
	c.gone = true
	if _, ok := t.conns[c]; ok {
		t.hold(c.client, -1, 0)
	}
	delete(t.conns, c)
	p := t.poll
	t.mu.Unlock()
	if p != nil {
		p.remove(c)
	}
}

// Close closes every socket and stops the tracker's goroutines. Requests served after Close are refused.
func (t *Tracker) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	p := t.poll
	t.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "tracker shutting down")
		c.reap()
	}
	if p != nil {
		p.stop()
	}
	return nil
}
