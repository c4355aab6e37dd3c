package tracker_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/testlog"
	"github.com/swarmgate/swarmgate/tracker"
)

// Interop tests: real WebTorrent peers (the bittorrent-tracker npm client in Node, the webtorrent browser
// client in headless Chromium) against our tracker on loopback. node_modules comes from `npm ci`
// (.ci/test runs it).

// testLogger sends the tracker's logs to the test while it runs.
func testLogger(t *testing.T) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

// startTracker serves a tracker on loopback and returns it with its ws:// URL.
func startTracker(t *testing.T, cfg tracker.Config) (*tracker.Tracker, string) {
	t.Helper()
	cfg.Logger = testLogger(t)
	tr := tracker.New(cfg)
	srv := httptest.NewServer(tr)
	t.Cleanup(func() {
		_ = tr.Close()
		srv.Close()
	})
	return tr, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// waitStats polls the tracker's stats until cond holds, failing the test after timeout. Counters are updated
// just after the messages they count are queued, so a peer may see a message a moment before its count moves.
func waitStats(t *testing.T, tr *tracker.Tracker, timeout time.Duration, what string, cond func(tracker.Stats) bool) tracker.Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := tr.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker stats: %s not reached within %v; stats: %+v", what, timeout, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nodeScript is a running `node` script that reports one JSON line per step and waits for "next" on stdin.
type nodeScript struct {
	t      *testing.T
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{} // closed when node has exited; err is then its status
	err    error
	stderr bytes.Buffer
}

func startNode(t *testing.T, timeout time.Duration, args ...string) *nodeScript {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (the interop tests need Node.js): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, node, args...)
	s := &nodeScript{t: t, lines: make(chan string, 16), exited: make(chan struct{})}
	cmd.Stderr = &s.stderr
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting node: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		s.err = cmd.Wait() // after stdout is drained, as Wait requires
		close(s.exited)
	}()
	t.Cleanup(func() {
		cancel() // kills node if it still runs
		for range s.lines {
		}
		<-s.exited
		if t.Failed() {
			t.Logf("node stderr:\n%s", s.stderr.String())
		}
	})
	return s
}

// step reads the next step's report and checks that it is the one expected.
func (s *nodeScript) step(name string, v *interopStep) {
	s.t.Helper()
	select {
	case line, ok := <-s.lines:
		if !ok {
			s.t.Fatalf("step %s: node exited early: %v", name, s.wait(10*time.Second))
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			s.t.Fatalf("step %s: bad report %q: %v", name, line, err)
		}
		if v.Error != "" {
			s.t.Fatalf("step %s: client script failed: %s", name, v.Error)
		}
		if v.Step != name {
			s.t.Fatalf("got report of step %q, want %q", v.Step, name)
		}
		if len(v.Warnings) > 0 {
			s.t.Errorf("step %s: client warnings (failure replies, bad responses or broken sockets): %q", name, v.Warnings)
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("step %s: no report from node within 30 s", name)
	}
}

// proceed lets the script go on to its next step.
func (s *nodeScript) proceed() {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, "next\n"); err != nil {
		s.t.Fatalf("writing to node: %v", err)
	}
}

// wait waits for the script to exit and reports its status.
func (s *nodeScript) wait(timeout time.Duration) error {
	select {
	case <-s.exited:
		return s.err
	case <-time.After(timeout):
		return errors.New("node did not exit")
	}
}

// interopStep is one report of testdata/interop/client.mjs.
type interopStep struct {
	Step     string
	Error    string
	IDs      map[string]string             // infoHash1, infoHash2, seeder, leecher: hex
	Updates  map[string]announceUpdate     // client name → the announce reply it emitted as 'update'
	Scrape   map[string]tracker.ScrapeFile // infohash hex → counts
	Peers    map[string][]string           // client name → peer IDs (hex) of the offers/answers it received
	SDP      struct{ Made, Received []sdpEntry }
	Warnings []string
}

type announceUpdate struct {
	InfoHash   string
	Complete   int
	Incomplete int
	Interval   int
	Announce   string
}

type sdpEntry struct{ Owner, Type, SDP string }

func hexSHA1(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestInteropBittorrentTrackerClient runs the bittorrent-tracker npm client (the tracker client inside every
// WebTorrent) against the tracker, with WebRTC faked so that offers and answers are real signalling that never
// connects. A seeder (two torrents multiplexed over one socket) and a leecher go through start, offer/answer
// relay, scrape, a regular update, completion and stop. After each step the counts the client saw, what it
// received, and the tracker's own Stats must all be exactly as expected.
func TestInteropBittorrentTrackerClient(t *testing.T) {
	browsertest.RepoFile(t, "node_modules/bittorrent-tracker/package.json")
	const interval = 90 * time.Second
	tr, wsURL := startTracker(t, tracker.Config{Interval: interval})
	start := time.Now()
	node := startNode(t, 60*time.Second, "testdata/interop/client.mjs", wsURL)

	ih1, ih2 := hexSHA1("interop torrent 1"), hexSHA1("interop torrent 2")
	seederID, leecherID := hexSHA1("interop seeder peer"), hexSHA1("interop leecher peer")
	seederURL, leecherURL := wsURL+"/?visitor=seeder", wsURL+"/?visitor=leecher"
	upd := func(ih string, complete, incomplete int, announce string) announceUpdate {
		return announceUpdate{ih, complete, incomplete, int(interval / time.Second), announce}
	}
	// Cumulative tracker counters after each step. MessagesIn and MessagesOut follow from the others: every
	// request gets one reply, every relayed offer or answer is one more message out.
	type counts struct {
		swarms, peers, seeders, conns, connsTotal int
		announces, answers, scrapes, offers       int64
	}
	steps := []struct {
		name    string
		updates map[string]announceUpdate
		scrape  map[string]tracker.ScrapeFile
		relayed bool // one offer went leecher → seeder and its answer came back
		want    counts
	}{
		{name: "seeders",
			updates: map[string]announceUpdate{"seeder": upd(ih1, 1, 0, seederURL), "seeder2": upd(ih2, 1, 0, seederURL)},
			want:    counts{swarms: 2, peers: 2, seeders: 2, conns: 1, connsTotal: 1, announces: 2}},
		{name: "leecher", relayed: true,
			updates: map[string]announceUpdate{"leecher": upd(ih1, 1, 1, leecherURL)},
			want:    counts{swarms: 2, peers: 3, seeders: 2, conns: 2, connsTotal: 2, announces: 3, answers: 1, offers: 1}},
		{name: "scrape",
			scrape: map[string]tracker.ScrapeFile{ih1: {Complete: 1, Incomplete: 1}, ih2: {Complete: 1}},
			want:   counts{swarms: 2, peers: 3, seeders: 2, conns: 2, connsTotal: 2, announces: 3, answers: 1, offers: 1, scrapes: 1}},
		{name: "update", relayed: true,
			updates: map[string]announceUpdate{"leecher": upd(ih1, 1, 1, leecherURL)},
			want:    counts{swarms: 2, peers: 3, seeders: 2, conns: 2, connsTotal: 2, announces: 4, answers: 2, offers: 2, scrapes: 1}},
		{name: "completed",
			updates: map[string]announceUpdate{"leecher": upd(ih1, 2, 0, leecherURL)},
			scrape:  map[string]tracker.ScrapeFile{ih1: {Complete: 2, Downloaded: 1}},
			want:    counts{swarms: 2, peers: 3, seeders: 3, conns: 2, connsTotal: 2, announces: 5, answers: 2, offers: 2, scrapes: 2}},
		{name: "leecher-stopped",
			updates: map[string]announceUpdate{"leecher": upd(ih1, 1, 0, leecherURL)},
			scrape:  map[string]tracker.ScrapeFile{ih1: {Complete: 1, Downloaded: 1}},
			want:    counts{swarms: 2, peers: 2, seeders: 2, conns: 1, connsTotal: 2, announces: 6, answers: 2, offers: 2, scrapes: 3}},
		{name: "seeders-stopped",
			updates: map[string]announceUpdate{"seeder": upd(ih1, 0, 0, seederURL), "seeder2": upd(ih2, 0, 0, seederURL)},
			// An empty swarm is forgotten, its count of completions with it.
			scrape: map[string]tracker.ScrapeFile{ih1: {}, ih2: {}},
			want:   counts{conns: 1, connsTotal: 2, announces: 8, answers: 2, offers: 2, scrapes: 4}},
		{name: "closed",
			want: counts{connsTotal: 2, announces: 8, answers: 2, offers: 2, scrapes: 4}},
	}

	for _, st := range steps {
		var got interopStep
		node.step(st.name, &got)
		if st.name == "seeders" {
			want := map[string]string{"infoHash1": ih1, "infoHash2": ih2, "seeder": seederID, "leecher": leecherID}
			if !mapsEqual(got.IDs, want) {
				t.Fatalf("script IDs %v, want %v", got.IDs, want)
			}
		}
		if st.updates == nil {
			st.updates = map[string]announceUpdate{}
		}
		if !mapsEqual(got.Updates, st.updates) {
			t.Errorf("step %s: announce replies seen by the clients:\n got %+v\nwant %+v", st.name, got.Updates, st.updates)
		}
		if st.scrape != nil && !mapsEqual(got.Scrape, st.scrape) {
			t.Errorf("step %s: scrape:\n got %+v\nwant %+v", st.name, got.Scrape, st.scrape)
		}
		checkRelay(t, st.name, &got, st.relayed, seederID, leecherID)

		w := st.want
		want := tracker.Stats{
			Swarms: w.swarms, Peers: w.peers, Seeders: w.seeders, Leechers: w.peers - w.seeders,
			Connections: w.conns, ConnectionsTotal: int64(w.connsTotal),
			Announces: w.announces, Answers: w.answers, Scrapes: w.scrapes,
			OffersRelayed: w.offers, AnswersRelayed: w.answers,
			MessagesIn:  w.announces + w.answers + w.scrapes,
			MessagesOut: w.announces + w.offers + w.answers + w.scrapes,
		}
		waitStats(t, tr, 5*time.Second, "step "+st.name+": stats "+formatStats(want), func(s tracker.Stats) bool { return s == want })
		node.proceed()
	}
	if err := node.wait(10 * time.Second); err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Logf("bittorrent-tracker client: %d steps in %v", len(steps), time.Since(start).Round(time.Millisecond))
}

// checkRelay checks the 'peer' events and session descriptions of one step. When relayed, the seeder must have
// received exactly one offer, from the leecher, holding one of the SDPs the leecher made, and the leecher
// exactly one answer, from the seeder, holding the SDP the seeder made; otherwise nothing at all.
func checkRelay(t *testing.T, step string, got *interopStep, relayed bool, seederID, leecherID string) {
	t.Helper()
	wantPeers := map[string][]string{"seeder": {}, "seeder2": {}, "leecher": {}}
	if relayed {
		wantPeers["seeder"] = []string{leecherID}
		wantPeers["leecher"] = []string{seederID}
	}
	for name, want := range wantPeers {
		if !slices.Equal(got.Peers[name], want) {
			t.Errorf("step %s: %s received signalling from peers %q, want %q", step, name, got.Peers[name], want)
		}
	}
	if !relayed {
		if len(got.SDP.Received) != 0 {
			t.Errorf("step %s: session descriptions received, want none: %+v", step, got.SDP.Received)
		}
		return
	}
	made := func(owner, typ string) []string {
		var out []string
		for _, e := range got.SDP.Made {
			if e.Owner == owner && e.Type == typ {
				out = append(out, e.SDP)
			}
		}
		return out
	}
	if len(got.SDP.Received) != 2 {
		t.Fatalf("step %s: %d session descriptions received, want 2 (one offer, one answer): %+v", step, len(got.SDP.Received), got.SDP.Received)
	}
	for _, r := range got.SDP.Received {
		switch {
		case r.Owner == "seeder" && r.Type == "offer":
			if !slices.Contains(made("leecher", "offer"), r.SDP) {
				t.Errorf("step %s: the seeder received an offer the leecher did not make: %q", step, r.SDP)
			}
		case r.Owner == "leecher" && r.Type == "answer":
			if answers := made("seeder", "answer"); len(answers) != 1 || answers[0] != r.SDP {
				t.Errorf("step %s: the leecher received answer %q; the seeder made %q", step, r.SDP, answers)
			}
		default:
			t.Errorf("step %s: unexpected session description: %+v", step, r)
		}
	}
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func formatStats(s tracker.Stats) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The browser test's file: a deterministic 3 MiB stream of xorshift32 words, little-endian, generated by
// seed.html in the page and here for the expected hash.
const (
	interopFileSize = 3 << 20
	interopPRNGSeed = 0x9E3779B9
)

func interopFileSHA256() string {
	buf := make([]byte, interopFileSize)
	x := uint32(interopPRNGSeed)
	for i := 0; i < len(buf); i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		binary.LittleEndian.PutUint32(buf[i:], x)
	}
	h := sha256.Sum256(buf)
	return hex.EncodeToString(h[:])
}

type seedResult struct {
	Error     string
	MagnetURI string
	InfoHash  string
	SHA256    string
	Length    int
	Announce  []string
	URLList   []string
}

type leechResult struct {
	Error       string
	SHA256      string
	Length      int
	Announce    []string
	URLList     []string
	Wires       []string // the type of each wire the download used
	FirstWireMS float64  // from add() to the first peer connection
	MS          float64  // from add() to the hash of the downloaded file
}

// TestInteropWebTorrentBrowsers has two default headless Chromium pages, each in a browser context of its own,
// share a 3 MiB file with the real webtorrent browser client, finding each other only through the tracker:
// no webseeds, no other trackers. The downloaded bytes must hash to what was seeded, the peers must have met
// over WebRTC, and the tracker must have relayed offers and answers without refusing anything.
func TestInteropWebTorrentBrowsers(t *testing.T) {
	start := time.Now()
	wtJS := browsertest.RepoFile(t, "node_modules/webtorrent/dist/webtorrent.min.js")
	tr, trackerURL := startTracker(t, tracker.Config{})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /webtorrent.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, wtJS) })
	mux.HandleFunc("GET /{page}", func(w http.ResponseWriter, r *http.Request) {
		switch page := r.PathValue("page"); page {
		case "seed.html", "leech.html":
			http.ServeFile(w, r, "testdata/interop/"+page)
		default:
			http.NotFound(w, r)
		}
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	wantHash := interopFileSHA256()

	b := browsertest.Start(t)
	seeder := b.NewPage()
	q := url.Values{"tracker": {trackerURL}}
	if err := seeder.Do(20*time.Second, chromedp.Navigate(site.URL+"/seed.html?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	seed, err := browsertest.Eval[seedResult](seeder, 30*time.Second, "window.result")
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
	if seed.Error != "" {
		t.Fatalf("seeding: %s", seed.Error)
	}
	if seed.SHA256 != wantHash || seed.Length != interopFileSize {
		t.Fatalf("seeded %d bytes with SHA-256 %s; want %d bytes, %s", seed.Length, seed.SHA256, interopFileSize, wantHash)
	}
	checkOnlyOurTracker(t, "seeder", seed.Announce, seed.URLList, trackerURL)
	m, err := url.Parse(seed.MagnetURI)
	if err != nil {
		t.Fatalf("magnet %q: %v", seed.MagnetURI, err)
	}
	mq := m.Query()
	if tr := mq["tr"]; !slices.Equal(tr, []string{trackerURL}) {
		t.Errorf("magnet trackers %q, want only %q", tr, trackerURL)
	}
	for _, k := range []string{"ws", "xs", "as"} {
		if v := mq[k]; len(v) > 0 {
			t.Errorf("magnet has %s=%q: the download must go through the tracker only", k, v)
		}
	}
	t.Logf("seeding %s after %v", seed.InfoHash, time.Since(start).Round(time.Millisecond))
	// The seeder's announce must be in before the leecher's, so that the leecher's offers have someone to go to.
	waitStats(t, tr, 20*time.Second, "the seeder in the swarm", func(s tracker.Stats) bool { return s.Seeders == 1 })

	leecher := b.NewPage()
	q.Set("magnet", seed.MagnetURI)
	if err := leecher.Do(20*time.Second, chromedp.Navigate(site.URL+"/leech.html?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	got, err := browsertest.Eval[leechResult](leecher, 30*time.Second, "window.result")
	if err != nil {
		t.Fatalf("downloading: %v", err)
	}
	if got.Error != "" {
		t.Fatalf("downloading: %s", got.Error)
	}
	if got.SHA256 != seed.SHA256 || got.Length != seed.Length {
		t.Fatalf("downloaded %d bytes with SHA-256 %s; seeded %d bytes, %s", got.Length, got.SHA256, seed.Length, seed.SHA256)
	}
	checkOnlyOurTracker(t, "leecher", got.Announce, got.URLList, trackerURL)
	if len(got.Wires) == 0 || slices.ContainsFunc(got.Wires, func(w string) bool { return w != "webrtc" }) {
		t.Errorf("download wires %q, want only WebRTC peers", got.Wires)
	}
	// The leecher announces completion once done: both are then seeders.
	s := waitStats(t, tr, 10*time.Second, "both peers seeding", func(s tracker.Stats) bool { return s.Seeders == 2 })
	if s.OffersRelayed == 0 || s.AnswersRelayed == 0 {
		t.Errorf("tracker relayed %d offers and %d answers; want both > 0", s.OffersRelayed, s.AnswersRelayed)
	}
	if s.Refused != 0 {
		t.Errorf("tracker refused %d requests from the webtorrent browser client", s.Refused)
	}
	if s.Swarms != 1 || s.Peers != 2 || s.Connections != 2 {
		t.Errorf("tracker stats %+v; want 1 swarm, 2 peers, 2 connections", s)
	}
	t.Logf("3 MiB downloaded in %.0f ms from add() to hash (first peer after %.0f ms); offers relayed %d, answers relayed %d; test took %v",
		got.MS, got.FirstWireMS, s.OffersRelayed, s.AnswersRelayed, time.Since(start).Round(time.Millisecond))
}

func checkOnlyOurTracker(t *testing.T, who string, announce, urlList []string, trackerURL string) {
	t.Helper()
	if !slices.Equal(announce, []string{trackerURL}) {
		t.Errorf("%s announces to %q, want only %q", who, announce, trackerURL)
	}
	if len(urlList) != 0 {
		t.Errorf("%s has webseeds %q, want none", who, urlList)
	}
}
