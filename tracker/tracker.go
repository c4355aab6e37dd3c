package tracker

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
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
	closed bool
}

var _ http.Handler = (*Tracker)(nil)

// New returns a tracker with the given configuration.
func New(cfg Config) *Tracker {
	cfg.fillDefaults()
	return &Tracker{
		cfg: cfg,
		log: cfg.Logger,
		upgrader: websocket.Upgrader{
			// Zero buffer sizes reuse the HTTP server's buffers for reading; the pool lends write buffers only
			// while a write is under way, so an idle socket holds none.
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     cfg.CheckOrigin,
		},
		swarms: make(map[ID]*swarm),
		conns:  make(map[*conn]struct{}),
	}
}

// ServeHTTP upgrades the request to a WebSocket and serves the tracker protocol on it until it closes.
func (t *Tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "tracker: this is a WebSocket tracker; connect with a WebSocket client", http.StatusUpgradeRequired)
		return
	}
	ws, err := t.upgrader.Upgrade(w, r, nil)
	if err != nil {
		t.log.Debug("tracker: upgrade failed", slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		return
	}
	c := &conn{
		t:          t,
		ws:         ws,
		log:        t.log.With(slog.String("remote", r.RemoteAddr)),
		peers:      make(map[peerKey]*peer),
		pending:    make(map[pendingKey]pendingOffer),
		tokens:     t.cfg.MessageBurst,
		lastRefill: time.Now(),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.close(websocket.CloseGoingAway, "tracker shutting down")
		return
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	t.stats.connsTotal.Add(1)
	defer t.drop(c)

	ws.SetReadLimit(MaxMessageSize)
	alive := func() { _ = ws.SetReadDeadline(time.Now().Add(t.cfg.PongWait)) }
	alive()
	ws.SetPongHandler(func(string) error { alive(); return nil })
	ws.SetPingHandler(func(data string) error {
		alive()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(t.cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.wmu.Lock()
	c.pingTimer = time.AfterFunc(t.cfg.PingInterval, c.ping)
	c.wmu.Unlock()

	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				t.stats.refused.Add(1)
				c.refuse(websocket.CloseMessageTooBig, "message larger than the tracker accepts")
			}
			return
		}
		alive()
		t.stats.messagesIn.Add(1)
		if typ != websocket.TextMessage {
			t.stats.refused.Add(1)
			c.refuse(websocket.CloseUnsupportedData, ErrBinaryFrame.Error())
			return
		}
		if !c.allow(time.Now()) {
			t.stats.refused.Add(1)
			if c.violations > MaxRateViolations {
				c.log.Warn("tracker: closing flooding socket")
				c.refuse(websocket.ClosePolicyViolation, "flooding")
				return
			}
			c.sendJSON(failure(nil, ErrRateLimited))
			continue
		}
		t.handle(c, data)
	}
}

// handle serves one message.
func (t *Tracker) handle(c *conn, data []byte) {
	req, err := ParseRequest(data)
	if err != nil {
		t.refuse(c, req, err)
		return
	}
	switch {
	case req.Action == ActionScrape:
		t.stats.scrapes.Add(1)
		c.sendJSON(t.scrape(req))
	case req.IsAnswer():
		t.stats.answers.Add(1)
		if err := t.answer(c, req); err != nil {
			t.refuse(c, req, err)
		}
	default:
		t.stats.announces.Add(1)
		if err := t.announce(c, req); err != nil {
			t.refuse(c, req, err)
		}
	}
}

func (t *Tracker) refuse(c *conn, req *Request, err error) {
	t.stats.refused.Add(1)
	c.log.Debug("tracker: refused", slog.String("action", req.Action), slog.Any("err", err))
	c.sendJSON(failure(req, err))
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

func (c *conn) sendJSON(v any) {
	msg, err := json.Marshal(v)
	if err != nil { // only our own reply types are marshalled; they always encode
		c.log.Error("tracker: encoding reply", slog.Any("err", err))
		return
	}
	c.send(msg)
}

// announce registers or updates the socket's peer in a swarm and relays its offers.
func (t *Tracker) announce(c *conn, req *Request) error {
	ih := req.InfoHashes[0]
	now := time.Now()
	type delivery struct {
		to  *conn
		msg *OfferMessage
	}
	var out []delivery

	t.mu.Lock()
	s := t.swarms[ih]
	k := peerKey{ih, req.PeerID}
	p := c.peers[k]
	if req.Event == EventStopped {
		if p != nil {
			t.leave(c, k, p)
		}
		reply := t.announceReply(ih, s)
		t.mu.Unlock()
		c.sendJSON(reply)
		return nil
	}
	if p == nil {
		if len(c.peers) >= MaxTorrentsPerConn {
			t.mu.Unlock()
			return ErrTooManyTorrents
		}
		if s != nil && s.peers[req.PeerID] != nil {
			t.mu.Unlock()
			return ErrPeerIDInUse
		}
		if s == nil {
			s = newSwarm()
			t.swarms[ih] = s
		}
		p = &peer{id: req.PeerID, conn: c}
		s.add(p)
		c.peers[k] = p
	}
	switch {
	case req.Event == EventCompleted:
		if !p.seeder {
			s.downloaded++
		}
		s.setSeeder(p, true)
	case req.Left == 0:
		s.setSeeder(p, true)
	case req.Left > 0:
		s.setSeeder(p, false)
	}
	p.paused = req.Event == EventPaused
	for i, target := range s.pick(p, len(req.Offers)) {
		o := req.Offers[i]
		if !target.conn.expectAnswer(pendingKey{ih, o.ID, p.id}, pendingOffer{from: c, expires: now.Add(t.cfg.OfferTTL)}, now) {
			continue
		}
		out = append(out, delivery{target.conn, &OfferMessage{
			Action: ActionAnnounce, Offer: o.SDP, OfferID: o.ID, PeerID: p.id, InfoHash: ih,
		}})
	}
	reply := t.announceReply(ih, s)
	t.mu.Unlock()

	c.sendJSON(reply)
	for _, d := range out {
		d.to.sendJSON(d.msg)
	}
	t.stats.offersRelayed.Add(int64(len(out)))
	return nil
}

// expectAnswer records an offer relayed to c. It reports false when c has too many offers unanswered. Called
// with Tracker.mu held.
func (c *conn) expectAnswer(k pendingKey, po pendingOffer, now time.Time) bool {
	if len(c.pending) >= MaxPendingOffersPerConn/2 {
		for k, v := range c.pending {
			if now.After(v.expires) {
				delete(c.pending, k)
			}
		}
		if len(c.pending) >= MaxPendingOffersPerConn {
			return false
		}
	}
	c.pending[k] = po
	return true
}

func (t *Tracker) announceReply(ih ID, s *swarm) *AnnounceReply {
	r := &AnnounceReply{Action: ActionAnnounce, Interval: int(t.cfg.Interval / time.Second), InfoHash: ih}
	if s != nil {
		r.Complete, r.Incomplete = s.counts()
	}
	return r
}

// leave removes the socket's peer from a swarm, and the swarm when it empties. Called with Tracker.mu held.
func (t *Tracker) leave(c *conn, k peerKey, p *peer) {
	s := t.swarms[k.infoHash]
	s.remove(p)
	delete(c.peers, k)
	if len(s.list) == 0 {
		delete(t.swarms, k.infoHash)
	}
}

// answer routes an answer back to the socket whose offer it answers.
func (t *Tracker) answer(c *conn, req *Request) error {
	ih := req.InfoHashes[0]
	t.mu.Lock()
	if c.peers[peerKey{ih, req.PeerID}] == nil {
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
	po.from.sendJSON(&AnswerMessage{
		Action: ActionAnnounce, Answer: req.Answer, OfferID: req.OfferID, PeerID: req.PeerID, InfoHash: ih,
	})
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

// drop forgets a socket that closed: its peers leave their swarms and its pending offers are discarded.
func (t *Tracker) drop(c *conn) {
	c.close(websocket.CloseAbnormalClosure, "")
	t.mu.Lock()
	for k, p := range c.peers {
		t.leave(c, k, p)
	}
	c.pending = nil
	delete(t.conns, c)
	t.mu.Unlock()
}

// Close closes every socket. Requests served after Close are refused.
func (t *Tracker) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "tracker shutting down")
	}
	return nil
}
