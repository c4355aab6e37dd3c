package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/swarmapi"
)

// Engines report the bytes of a page view by source to swarmapi.PathStats. The gateway cannot see what browsers send
// each other, so those reports are the only source of its peer byte count; they are the visitors' word, and
// they feed that count (the dashboard's offload ratio, /.swarm/metrics) and nothing else. A report is
// credited only when it carries the report token of the manifest its page view was given: the token names
// the client it was issued to and bounds what its page view can be credited with in all (what one page view
// can receive or upload), so a client inflates the count by at most maxReportViewsPerClient page views'
// worth a minute, not without bound.

// Limits of engine reports.
const (
	// maxStatsBody bounds an engine's stats report: a few numbers and a token.
	maxStatsBody = 1 << 10
	// reportTokenTTL is how long a page view's reports are credited: uploads to later visitors go on while
	// the page is open, and two hours covers nearly every page view; later bytes are simply not counted.
	reportTokenTTL = 2 * time.Hour
	// maxReportViews bounds the page views whose credited totals the gateway remembers (about 64 bytes each);
	// when it is full of live ones, new page views' reports are not credited until some expire.
	maxReportViews = 200_000
	// maxReportViewsPerClient bounds the page views of one client address credited a minute: a visitor
	// opens a page every few seconds at most, and many visitors behind one NAT merely go uncounted beyond it
	// (which costs the dashboard a little accuracy and nothing else).
	maxReportViewsPerClient = 60
	// reportPeerFactor bounds what one page view is credited from peers, as a multiple of the version's
	// bytes: an engine in endgame asks several peers for the same blocks, so it may receive more than the
	// version holds.
	reportPeerFactor = 2
)

// Errors of report tokens.
var (
	errReportToken    = errors.New("gateway: stats report: bad or expired report token")
	errReportClient   = errors.New("gateway: stats report: too many page views reported from this client")
	errReportsFull    = errors.New("gateway: stats report: too many page views to track")
	errReportNegative = errors.New("gateway: stats report: negative byte count")
)

// reportToken is what a manifest's ReportToken carries, signed with the gateway's report key together with
// the client address it was issued to.
type reportToken struct {
	nonce    [8]byte
	issued   int64 // Unix seconds
	peerMax  int64 // what the page view may be credited from peers, in all
	upMax    int64 // what it may be credited as uploaded, in all
	clientIP netip.Addr
}

const reportTokenPayload = 8 + 8 + 8 + 8
const reportTokenMAC = 16 // a truncated HMAC-SHA256: forging one takes 2^128 tries

// reports mints report tokens and credits engines' reports against them.
type reports struct {
	key [32]byte
	now func() time.Time

	mu      sync.Mutex
	views   map[[8]byte]*reportView // by token nonce
	window  int64                   // the minute clients' counts are for
	clients map[netip.Addr]int      // page views credited this minute, by client
}

// reportView is what a page view has been credited so far.
type reportView struct {
	peers, uploaded int64
	expires         time.Time
}

func newReports() *reports {
	r := &reports{now: time.Now, views: make(map[[8]byte]*reportView), clients: make(map[netip.Addr]int)}
	if _, err := rand.Read(r.key[:]); err != nil {
		panic("gateway: no randomness for the report key: " + err.Error()) // crypto/rand never fails on Linux
	}
	return r
}

func (r *reports) mac(payload []byte, client netip.Addr) []byte {
	h := hmac.New(sha256.New, r.key[:])
	h.Write(payload)
	ip := client.Unmap().As16()
	h.Write(ip[:])
	return h.Sum(nil)[:reportTokenMAC]
}

// mint returns a token for a page view of client that may be credited peerMax bytes from peers and upMax
// uploaded bytes.
func (r *reports) mint(client netip.Addr, peerMax, upMax int64) string {
	b := make([]byte, reportTokenPayload, reportTokenPayload+reportTokenMAC)
	_, _ = rand.Read(b[:8])
	binary.BigEndian.PutUint64(b[8:], uint64(r.now().Unix()))
	binary.BigEndian.PutUint64(b[16:], uint64(peerMax))
	binary.BigEndian.PutUint64(b[24:], uint64(upMax))
	return base64.RawURLEncoding.EncodeToString(append(b, r.mac(b, client)...))
}

// parse checks a token's signature for client and its age.
func (r *reports) parse(s string, client netip.Addr) (reportToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != reportTokenPayload+reportTokenMAC {
		return reportToken{}, errReportToken
	}
	if !hmac.Equal(b[reportTokenPayload:], r.mac(b[:reportTokenPayload], client)) {
		return reportToken{}, errReportToken
	}
	t := reportToken{issued: int64(binary.BigEndian.Uint64(b[8:])), peerMax: int64(binary.BigEndian.Uint64(b[16:])),
		upMax: int64(binary.BigEndian.Uint64(b[24:])), clientIP: client}
	copy(t.nonce[:], b[:8])
	if age := r.now().Sub(time.Unix(t.issued, 0)); age < -time.Minute || age > reportTokenTTL {
		return reportToken{}, errReportToken
	}
	return t, nil
}

// credit checks rep against its token and returns what may be added to the counts: the report's bytes, cut
// to what the page view has left of its bounds.
func (r *reports) credit(rep swarmapi.StatsReport, client netip.Addr) (peers, uploaded int64, err error) {
	if rep.PeerBytes < 0 || rep.UploadedBytes < 0 || rep.SeederBytes < 0 || rep.WebseedBytes < 0 {
		return 0, 0, errReportNegative
	}
	t, err := r.parse(rep.Token, client)
	if err != nil {
		return 0, 0, err
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.views[t.nonce]
	if !ok {
		if minute := now.Unix() / 60; minute != r.window {
			r.window, r.clients = minute, make(map[netip.Addr]int)
		}
		if r.clients[client] >= maxReportViewsPerClient {
			return 0, 0, errReportClient
		}
		if len(r.views) >= maxReportViews {
			for n, v := range r.views {
				if now.After(v.expires) {
					delete(r.views, n)
				}
			}
			if len(r.views) >= maxReportViews {
				return 0, 0, errReportsFull
			}
		}
		r.clients[client]++
		v = &reportView{expires: time.Unix(t.issued, 0).Add(reportTokenTTL)}
		r.views[t.nonce] = v
	}
	peers = min(rep.PeerBytes, t.peerMax-v.peers)
	uploaded = min(rep.UploadedBytes, t.upMax-v.uploaded)
	v.peers += peers
	v.uploaded += uploaded
	return peers, uploaded, nil
}

// reportToken mints the report token of a manifest served for v to the client of r.
func (s *Server) reportToken(r *http.Request, size int64) string {
	return s.reports.mint(s.clientIP(r), reportPeerFactor*size, s.cfg.Visitors.UploadCeiling)
}

// serveStats takes an engine's report (see reports).
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	var rep swarmapi.StatsReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxStatsBody)).Decode(&rep); err != nil {
		http.Error(w, "swarmgate: bad stats report: "+err.Error(), http.StatusBadRequest)
		return
	}
	peers, uploaded, err := s.reports.credit(rep, s.clientIP(r))
	switch {
	case errors.Is(err, errReportToken):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case errors.Is(err, errReportClient), errors.Is(err, errReportsFull):
		s.log.Debug("gateway: stats report not credited", slog.Any("err", err))
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.counters.peers.Add(peers)
	s.counters.uploaded.Add(uploaded)
	w.WriteHeader(http.StatusNoContent)
}
