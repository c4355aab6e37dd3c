package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/swarmgate/swarmgate/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves a tracker on loopback for one test and returns its ws:// URL.
func start(t *testing.T, cfg Config) (string, *Tracker) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	tr := New(cfg)
	srv := httptest.NewServer(tr)
	t.Cleanup(func() {
		_ = tr.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), tr
}

func dial(t *testing.T, url string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recv waits for the next message.
func recv(t *testing.T, c *Client) *Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("socket closed: %v", c.Err())
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

// quiet asserts that no message arrives for a short while.
func quiet(t *testing.T, c *Client) {
	t.Helper()
	select {
	case m := <-c.Messages():
		t.Fatalf("unexpected message %+v", m)
	case <-time.After(150 * time.Millisecond):
	}
}

func announce(t *testing.T, c *Client, a Announce) *Message {
	t.Helper()
	if err := c.Announce(a); err != nil {
		t.Fatal(err)
	}
	m := recv(t, c)
	if m.Action != ActionAnnounce || m.FailureReason != "" || m.InfoHash != a.InfoHash {
		t.Fatalf("announce reply = %+v", m)
	}
	return m
}

func wantFailure(t *testing.T, c *Client, action string, want error) *Message {
	t.Helper()
	m := recv(t, c)
	if m.Action != action || m.FailureReason != want.Error() {
		t.Fatalf("got %+v, want %s failure %q", m, action, want)
	}
	return m
}

func offer(id byte) Offer {
	return Offer{ID: idOf(id), SDP: json.RawMessage(`{"type":"offer","sdp":"sdp-` + string(rune('a'+id%26)) + `"}`)}
}

var answerSDP = json.RawMessage(`{"type":"answer","sdp":"answer-sdp"}`)

func TestAnnounceCountsSeedersAndLeechers(t *testing.T) {
	url, tr := start(t, Config{Interval: 90 * time.Second})
	ih := idOf(1)
	seed, leech := dial(t, url), dial(t, url)

	m := announce(t, seed, Announce{InfoHash: ih, PeerID: idOf(10), Event: EventStarted, Left: 0})
	if m.Interval != 90 || m.Complete != 1 || m.Incomplete != 0 {
		t.Fatalf("first reply %+v", m)
	}
	m = announce(t, leech, Announce{InfoHash: ih, PeerID: idOf(11), Event: EventStarted, Left: 100})
	if m.Complete != 1 || m.Incomplete != 1 {
		t.Fatalf("second reply %+v", m)
	}
	// anacrolix announces left -1 before it has metadata: a leecher, and it stays what it was on updates.
	announce(t, leech, Announce{InfoHash: ih, PeerID: idOf(11), Left: -1})
	m = announce(t, leech, Announce{InfoHash: ih, PeerID: idOf(11), Event: EventCompleted, Left: -1})
	if m.Complete != 2 || m.Incomplete != 0 {
		t.Fatalf("after completed %+v", m)
	}
	st := tr.Stats()
	if st.Swarms != 1 || st.Peers != 2 || st.Seeders != 2 || st.Leechers != 0 {
		t.Fatalf("stats %+v", st)
	}
	m = announce(t, leech, Announce{InfoHash: ih, PeerID: idOf(11), Event: EventStopped, Left: 0})
	if m.Complete != 1 || m.Incomplete != 0 {
		t.Fatalf("after stopped %+v", m)
	}
	if err := seed.Scrape(ih); err != nil {
		t.Fatal(err)
	}
	m = recv(t, seed)
	f := m.Files[key(ih)]
	if m.Action != ActionScrape || f.Complete != 1 || f.Incomplete != 0 || f.Downloaded != 1 {
		t.Fatalf("scrape %+v", m)
	}
}

func TestOffersGoToDistinctRandomPeersAndAnswersComeBack(t *testing.T) {
	url, tr := start(t, Config{})
	ih := idOf(1)
	peers := make([]*Client, 4)
	for i := range peers {
		peers[i] = dial(t, url)
		announce(t, peers[i], Announce{InfoHash: ih, PeerID: idOf(byte(20 + i)), Event: EventStarted, Left: 10})
	}
	offerer := dial(t, url)
	announce(t, offerer, Announce{InfoHash: ih, PeerID: idOf(30), Event: EventStarted, Left: 10,
		Offers: []Offer{offer(1), offer(2), offer(3)}})

	got := map[ID]int{} // offer id → receiving peer index
	for i, p := range peers {
		select {
		case m := <-p.Messages():
			if m.Offer == nil || m.PeerID != idOf(30) || m.InfoHash != ih {
				t.Fatalf("peer %d got %+v", i, m)
			}
			if _, dup := got[m.OfferID]; dup {
				t.Fatalf("offer %x relayed twice", m.OfferID)
			}
			got[m.OfferID] = i
		case <-time.After(300 * time.Millisecond):
		}
	}
	if len(got) != 3 {
		t.Fatalf("3 offers should reach 3 distinct peers, got %v", got)
	}
	quiet(t, offerer) // never to itself

	// The peer that got offer 2 answers it; the answer reaches the offerer from that peer.
	answerer := got[idOf(2)]
	if err := peers[answerer].SendAnswer(ih, idOf(byte(20+answerer)), idOf(30), idOf(2), answerSDP); err != nil {
		t.Fatal(err)
	}
	m := recv(t, offerer)
	if string(m.Answer) != string(answerSDP) || m.PeerID != idOf(byte(20+answerer)) || m.OfferID != idOf(2) || m.InfoHash != ih {
		t.Fatalf("answer relayed as %+v", m)
	}
	quiet(t, peers[answerer]) // an answer gets no announce reply, as in bittorrent-tracker

	// The same offer cannot be answered twice.
	_ = peers[answerer].SendAnswer(ih, idOf(byte(20+answerer)), idOf(30), idOf(2), answerSDP)
	wantFailure(t, peers[answerer], ActionAnnounce, ErrNoSuchOffer)
	// A peer that was not sent offer 1 cannot answer it.
	other := (got[idOf(1)] + 1) % len(peers)
	for other == got[idOf(1)] || other == got[idOf(2)] || other == got[idOf(3)] {
		other = (other + 1) % len(peers)
	}
	_ = peers[other].SendAnswer(ih, idOf(byte(20+other)), idOf(30), idOf(1), answerSDP)
	wantFailure(t, peers[other], ActionAnnounce, ErrNoSuchOffer)
	// Answering under another peer's ID is refused.
	_ = peers[other].SendAnswer(ih, idOf(byte(20+answerer)), idOf(30), idOf(1), answerSDP)
	wantFailure(t, peers[other], ActionAnnounce, ErrNotInSwarm)
	quiet(t, offerer)

	st := tr.Stats()
	if st.OffersRelayed != 3 || st.AnswersRelayed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSeederOffersGoOnlyToLeechers(t *testing.T) {
	url, _ := start(t, Config{})
	ih := idOf(1)
	seed2, leech := dial(t, url), dial(t, url)
	announce(t, seed2, Announce{InfoHash: ih, PeerID: idOf(2), Left: 0})
	announce(t, leech, Announce{InfoHash: ih, PeerID: idOf(3), Left: 5})
	seed := dial(t, url)
	announce(t, seed, Announce{InfoHash: ih, PeerID: idOf(1), Left: 0, Offers: []Offer{offer(1), offer(2)}})
	if m := recv(t, leech); m.OfferID != idOf(1) {
		t.Fatalf("leecher got %+v", m)
	}
	quiet(t, seed2)
}

func TestPausedPeersGetNoOffers(t *testing.T) {
	url, _ := start(t, Config{})
	ih := idOf(1)
	paused := dial(t, url)
	m := announce(t, paused, Announce{InfoHash: ih, PeerID: idOf(2), Event: EventPaused, Left: 5})
	if m.Incomplete != 1 {
		t.Fatalf("paused peer must still be counted: %+v", m)
	}
	o := dial(t, url)
	announce(t, o, Announce{InfoHash: ih, PeerID: idOf(3), Left: 5, Offers: []Offer{offer(1)}})
	quiet(t, paused)
}

func TestAnswerAfterOfferTTLIsRefused(t *testing.T) {
	url, _ := start(t, Config{OfferTTL: 50 * time.Millisecond})
	ih := idOf(1)
	a, b := dial(t, url), dial(t, url)
	announce(t, a, Announce{InfoHash: ih, PeerID: idOf(1), Left: 5})
	announce(t, b, Announce{InfoHash: ih, PeerID: idOf(2), Left: 5, Offers: []Offer{offer(7)}})
	if m := recv(t, a); m.OfferID != idOf(7) {
		t.Fatalf("got %+v", m)
	}
	time.Sleep(100 * time.Millisecond) // let the offer expire: the TTL is what is under test
	_ = a.SendAnswer(ih, idOf(1), idOf(2), idOf(7), answerSDP)
	wantFailure(t, a, ActionAnnounce, ErrNoSuchOffer)
	quiet(t, b)
}

func TestAnswerToPeerThatLeftIsRefused(t *testing.T) {
	url, _ := start(t, Config{})
	ih := idOf(1)
	a, b := dial(t, url), dial(t, url)
	announce(t, a, Announce{InfoHash: ih, PeerID: idOf(1), Left: 5})
	announce(t, b, Announce{InfoHash: ih, PeerID: idOf(2), Left: 5, Offers: []Offer{offer(7)}})
	recv(t, a)
	announce(t, b, Announce{InfoHash: ih, PeerID: idOf(2), Event: EventStopped})
	_ = a.SendAnswer(ih, idOf(1), idOf(2), idOf(7), answerSDP)
	wantFailure(t, a, ActionAnnounce, ErrNoSuchOffer)
	// And to a peer that never existed.
	_ = a.SendAnswer(ih, idOf(1), idOf(99), idOf(8), answerSDP)
	wantFailure(t, a, ActionAnnounce, ErrNoSuchOffer)
}

func TestManyTorrentsOverOneSocket(t *testing.T) {
	url, tr := start(t, Config{})
	c := dial(t, url)
	for i := range 5 {
		announce(t, c, Announce{InfoHash: idOf(byte(i)), PeerID: idOf(1), Left: int64(i)})
	}
	if st := tr.Stats(); st.Swarms != 5 || st.Peers != 5 || st.Seeders != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Scrape all, and several at once.
	_ = c.Scrape()
	if m := recv(t, c); len(m.Files) != 5 {
		t.Fatalf("scrape all %+v", m)
	}
	_ = c.Scrape(idOf(0), idOf(1), idOf(200))
	m := recv(t, c)
	if len(m.Files) != 3 || m.Files[key(idOf(0))].Complete != 1 || m.Files[key(idOf(200))] != (ScrapeFile{}) {
		t.Fatalf("scrape several %+v", m)
	}
}

func TestTooManyTorrentsPerSocket(t *testing.T) {
	url, _ := start(t, Config{MessageBurst: 2 * MaxTorrentsPerConn})
	c := dial(t, url)
	go func() { // send while the test reads, so replies never pile up unread
		var id ID
		for i := range MaxTorrentsPerConn + 1 {
			id[0], id[1] = byte(i), byte(i>>8)
			if c.Announce(Announce{InfoHash: id, PeerID: idOf(1), Left: 1}) != nil {
				return
			}
		}
	}()
	for i := range MaxTorrentsPerConn {
		if m := recv(t, c); m.FailureReason != "" {
			t.Fatalf("announce %d refused: %s", i, m.FailureReason)
		}
	}
	wantFailure(t, c, ActionAnnounce, ErrTooManyTorrents)
}

func TestPeerIDCannotBeHijacked(t *testing.T) {
	url, _ := start(t, Config{})
	ih := idOf(1)
	owner, thief := dial(t, url), dial(t, url)
	announce(t, owner, Announce{InfoHash: ih, PeerID: idOf(5), Left: 1})
	_ = thief.Announce(Announce{InfoHash: ih, PeerID: idOf(5), Left: 1, Event: EventStopped})
	if m := recv(t, thief); m.Complete+m.Incomplete != 1 {
		t.Fatalf("a stop for a peer the socket does not own must not remove it: %+v", m)
	}
	_ = thief.Announce(Announce{InfoHash: ih, PeerID: idOf(5), Left: 1})
	m := wantFailure(t, thief, ActionAnnounce, ErrPeerIDInUse)
	if m.InfoHash != ih {
		t.Fatalf("failure must name the torrent so the client can match it: %+v", m)
	}
	// Two clients may share one socket (bittorrent-tracker pools sockets per tracker URL within a page): a
	// second peer ID on the same socket is a second peer.
	if m := announce(t, owner, Announce{InfoHash: ih, PeerID: idOf(6), Left: 1}); m.Incomplete != 2 {
		t.Fatalf("second peer on one socket: %+v", m)
	}
}

func TestClosedSocketLeavesItsSwarms(t *testing.T) {
	url, tr := start(t, Config{})
	c := dial(t, url)
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(1), Left: 1})
	announce(t, c, Announce{InfoHash: idOf(2), PeerID: idOf(1), Left: 0})
	_ = c.Close()
	testutil.Eventually(t, 5*time.Second, "no swarm, peer or connection", func() bool { st := tr.Stats(); return st.Swarms == 0 && st.Peers == 0 && st.Connections == 0 })
	// The peer ID is free again for a new socket.
	c2 := dial(t, url)
	announce(t, c2, Announce{InfoHash: idOf(1), PeerID: idOf(1), Left: 1})
}

func TestSilentSocketExpires(t *testing.T) {
	url, tr := start(t, Config{PingInterval: 50 * time.Millisecond, PongWait: 200 * time.Millisecond})
	// A raw socket that never reads never answers pings: it must be dropped with its peers.
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	msg, _ := json.Marshal(map[string]any{"action": "announce", "info_hash": idOf(1), "peer_id": idOf(2), "left": 3})
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "one peer", func() bool { return tr.Stats().Peers == 1 })
	testutil.Eventually(t, 5*time.Second, "no peer and no connection", func() bool { st := tr.Stats(); return st.Peers == 0 && st.Connections == 0 })

	// A client that reads answers pings and stays, though it never announces again (as anacrolix does).
	c := dial(t, url)
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(3), Left: 1})
	time.Sleep(500 * time.Millisecond) // several PongWaits: the peer must survive them
	if st := tr.Stats(); st.Peers != 1 {
		t.Fatalf("live socket dropped: %+v", st)
	}
}

func key(id ID) string { return binaryString(id[:]) }

func TestBadInputIsRefusedWithAReason(t *testing.T) {
	url, tr := start(t, Config{})
	c := dial(t, url)
	cases := []struct {
		raw    string
		action string
		err    error
	}{
		{`not json`, ActionAnnounce, ErrInvalidJSON},
		{`"a string"`, ActionAnnounce, ErrNotObject},
		{`{"action":"connect"}`, ActionAnnounce, ErrUnknownAction},
		{`{"action":"scrape","info_hash":"short"}`, ActionScrape, ErrBadInfoHash},
		{`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":"x"}`, ActionAnnounce, ErrBadPeerID},
		{`{"action":"announce","info_hash":` + bin(1) + `,"peer_id":` + bin(2) + `,"offers":[` +
			strings.Repeat(`{"offer_id":`+bin(3)+`,"offer":`+offerSDP+`},`, MaxOffersPerAnnounce) +
			`{"offer_id":` + bin(3) + `,"offer":` + offerSDP + `}]}`, ActionAnnounce, ErrTooManyOffers},
	}
	for _, tc := range cases {
		if err := c.SendRaw([]byte(tc.raw)); err != nil {
			t.Fatal(err)
		}
		wantFailure(t, c, tc.action, tc.err)
	}
	// Bad input harmed nobody: the socket still works.
	announce(t, c, Announce{InfoHash: idOf(1), PeerID: idOf(2), Left: 1})
	if st := tr.Stats(); st.Refused != int64(len(cases)) {
		t.Fatalf("refused = %d, want %d", st.Refused, len(cases))
	}
}

// closeCode reads from a raw socket until it closes and returns the close code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("socket ended without a close frame: %v", err)
	}
}

func TestBinaryAndOversizeFramesCloseTheSocket(t *testing.T) {
	url, _ := start(t, Config{})
	bystander := dial(t, url)
	announce(t, bystander, Announce{InfoHash: idOf(1), PeerID: idOf(1), Left: 1})

	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	if code := closeCode(t, ws); code != websocket.CloseUnsupportedData {
		t.Fatalf("binary frame: close code %d", code)
	}

	ws2, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	_ = ws2.WriteMessage(websocket.TextMessage, []byte(`{"action":"announce","x":"`+strings.Repeat("a", MaxMessageSize)+`"}`))
	if code := closeCode(t, ws2); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversize frame: close code %d", code)
	}
	// The bystander is unharmed.
	announce(t, bystander, Announce{InfoHash: idOf(1), PeerID: idOf(1), Left: 1})
}

func TestFloodIsLimitedThenClosed(t *testing.T) {
	url, _ := start(t, Config{})
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	scrape := []byte(`{"action":"scrape"}`)
	limited := 0
	done := make(chan int)
	go func() {
		code := 0
		for {
			_, data, err := ws.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			if err != nil {
				done <- code
				return
			}
			if strings.Contains(string(data), ErrRateLimited.Error()) {
				limited++
			}
		}
	}()
	for range DefaultMessageBurst + MaxRateViolations + 50 {
		if ws.WriteMessage(websocket.TextMessage, scrape) != nil {
			break
		}
	}
	select {
	case code := <-done:
		if code != websocket.ClosePolicyViolation || limited == 0 {
			t.Fatalf("flood: close code %d after %d rate-limit replies", code, limited)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flooding socket not closed")
	}
}

func TestPlainHTTPGetsUpgradeRequired(t *testing.T) {
	tr := New(Config{})
	rec := httptest.NewRecorder()
	tr.ServeHTTP(rec, httptest.NewRequest("GET", "/.swarm/announce", nil))
	if rec.Code != 426 {
		t.Fatalf("status %d", rec.Code)
	}
}
