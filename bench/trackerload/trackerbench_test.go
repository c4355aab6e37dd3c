package trackerload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts an in-process tracker on loopback for one test and returns its ws:// URL.
func serve(t testing.TB) string {
	t.Helper()
	tr := tracker.New(tracker.Config{})
	srv := httptest.NewServer(tr)
	t.Cleanup(func() {
		_ = tr.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestRun runs a tiny benchmark so that the load generator cannot rot: every socket joins, announces are
// answered and measured, offers are relayed, and nothing fails.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var progress bytes.Buffer
	res, err := Run(ctx, Config{
		Name: "swarmgate", URL: serve(t), PID: os.Getpid(),
		Conns: 20, Swarms: 2, Concurrency: 4, OfferFraction: 0.5,
		Warmup: 100 * time.Millisecond, Duration: time.Second, Settle: 50 * time.Millisecond,
		ProgressInterval: 200 * time.Millisecond,
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.String())
	if res.Connected != 20 || res.Joined != 20 {
		t.Errorf("connected %d, joined %d, want 20 each", res.Connected, res.Joined)
	}
	if res.Announces == 0 || res.AnnouncesPerSec <= 0 || res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("announces %d (%.0f/s), p50 %v, p99 %v: want replies counted", res.Announces,
			res.AnnouncesPerSec, res.P50, res.P99)
	}
	if res.OffersSent == 0 || res.OffersReceived == 0 {
		t.Errorf("offers sent %d, relayed %d: want both", res.OffersSent, res.OffersReceived)
	}
	if res.Failures != 0 || res.Timeouts != 0 || res.SocketErrors != 0 || res.Unexpected != 0 {
		t.Errorf("failures %d, timeouts %d, socket errors %d, unexpected %d: want none (%v)", res.Failures,
			res.Timeouts, res.SocketErrors, res.Unexpected, res.Errors)
	}
	if res.RSSIdle == 0 {
		t.Error("resident memory not read")
	}
	if !strings.Contains(progress.String(), "swarmgate: ") {
		t.Error("no progress line")
	}

	// 20 sockets at MaxRatePerConn cannot exceed 20×40 announces/s: the pacing keeps the tracker's flood
	// protection out of the figures.
	if limit := 20 * res.MaxRatePerConn * 1.1; res.AnnouncesPerSec > limit {
		t.Errorf("%.0f announces/s over the pacing limit %.0f", res.AnnouncesPerSec, limit)
	}

	var table bytes.Buffer
	cmp := Compare(&res, &res)
	if err := cmp.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "announces/s") || cmp.AnnounceRatio != 1 {
		t.Errorf("table:\n%s", table.String())
	}
	if _, err := json.Marshal(cmp); err != nil {
		t.Error(err)
	}
}

func TestRunNoTracker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Run(ctx, Config{URL: "ws://127.0.0.1:1/", Conns: 3, ProgressInterval: time.Hour}, nil)
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want func(Config) bool
		err  bool
	}{
		{"defaults", Config{URL: "ws://x"}, func(c Config) bool {
			return c.Conns == 1000 && c.Swarms == 10 && c.Concurrency == 128 && c.MaxRatePerConn == 40 &&
				c.OfferFraction == 0.1
		}, false},
		{"concurrency capped by sockets", Config{URL: "ws://x", Conns: 20}, func(c Config) bool {
			return c.Concurrency == 20 && c.Swarms == 1
		}, false},
		{"no offers", Config{URL: "ws://x", OfferFraction: -1}, func(c Config) bool {
			return c.OfferFraction == 0
		}, false},
		{"no URL", Config{}, nil, true},
		{"too many sockets", Config{URL: "ws://x", Conns: MaxConns + 1}, nil, true},
		{"swarm larger than bittorrent-tracker keeps", Config{URL: "ws://x", Conns: 2000, Swarms: 1}, nil, true},
		{"more swarms than sockets", Config{URL: "ws://x", Conns: 10, Swarms: 11}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Defaults(tc.cfg)
			err := cfg.Validate()
			if (err != nil) != tc.err {
				t.Fatalf("Validate() = %v, want error %v", err, tc.err)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			if tc.want != nil && !tc.want(cfg) {
				t.Errorf("Defaults(%+v) = %+v", tc.cfg, cfg)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	id := [20]byte{0, 1, '"', '\\', 'a', 0x7f, 0x80, 0xff}
	a := newAnnouncer(id, id, false)
	for _, offer := range []bool{false, true} {
		msg := a.appendAnnounce(nil, "started", offer)
		req, err := tracker.ParseRequest(msg)
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		if req.InfoHashes[0] != tracker.ID(id) || req.PeerID != tracker.ID(id) || req.Event != "started" ||
			req.Left <= 0 || (len(req.Offers) == 1) != offer {
			t.Errorf("%s parsed as %+v", msg, req)
		}
		var v map[string]any
		if err := json.Unmarshal(msg, &v); err != nil {
			t.Fatal(err)
		}
		if s := v["info_hash"].(string); len([]rune(s)) != 20 {
			t.Errorf("info_hash %q is not 20 characters", s)
		}
	}
	for msg, want := range map[string]kind{
		`{"action":"announce","interval":120,"info_hash":"\"offer\":","complete":1,"incomplete":2}`: kindAnnounceReply,
		`{"action":"announce","failure reason":"x","info_hash":"aaaaaaaaaaaaaaaaaaaa"}`:             kindFailure,
		`{"action":"announce","offer":{"type":"offer","sdp":"v=0"},"offer_id":"x"}`:                 kindOffer,
		`{"action":"announce","answer":{"type":"answer","sdp":"v=0"},"offer_id":"x"}`:               kindAnswer,
		`{"action":"scrape","files":{}}`: kindOther,
	} {
		if got := classify([]byte(msg)); got != want {
			t.Errorf("classify(%s) = %d, want %d", msg, got, want)
		}
	}
}

// BenchmarkTracker measures an in-process tracker: b.N announces over 1,000 sockets. The tracker and the
// load generator share the process, so only throughput and latency are reported; `swarmgate bench tracker`
// runs the tracker in its own process and also measures its memory.
func BenchmarkTracker(b *testing.B) {
	url := serve(b)
	b.ResetTimer()
	res, err := Run(context.Background(), Config{
		URL: url, Conns: 1000, Concurrency: 64, MaxAnnounces: b.N,
		Warmup: 100 * time.Millisecond, Duration: time.Minute, Settle: 10 * time.Millisecond,
		ProgressInterval: time.Hour,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(1e9/res.AnnouncesPerSec, "ns/op") // per announce, not per run
	b.ReportMetric(res.AnnouncesPerSec, "announces/s")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
}
