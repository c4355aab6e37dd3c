package firstview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
)

// Visit is one measured first view: a cold browser loading the page once.
type Visit struct {
	// HeroMs, FrameMs and CompleteMs are from navigation start: the hero image on screen, the video's first
	// frame, the page complete (see measureJS). 0: it never happened.
	HeroMs     float64 `json:"heroMs"`
	FrameMs    float64 `json:"frameMs"`
	CompleteMs float64 `json:"completeMs"`
	// MetadataMs is the video's loadedmetadata event: its first bytes parsed. The first frame follows once the
	// decoder has started, a few hundred milliseconds of CPU on this machine, so FrameMs - MetadataMs is that
	// start and MetadataMs what the delivery decided.
	MetadataMs float64 `json:"metadataMs,omitempty"`
	// HeroPaintMs is Chromium's element timing of the hero (0 when it reported none); LoadedDataMs the
	// video's loadeddata event (0 when the page saw none: through the gateway, whose loader swaps in a blob:
	// URL, it saw none in the runs so far, though the first frame came); LoadMs the window's load event.
	// They are kept for comparison only.
	HeroPaintMs  float64 `json:"heroPaintMs,omitempty"`
	LoadedDataMs float64 `json:"loadedDataMs,omitempty"`
	LoadMs       float64 `json:"loadMs,omitempty"`
	// Bytes, by source, while the page loaded (from navigation until the page was complete): "origin" is
	// what the origin server sent (the page, and with a gateway whatever it proxied); "gateway" what the
	// gateway sent from its own store (its seeder over WebRTC and its HTTP webseed); "peers" what the page's
	// engine got from other browsers. "seeder" and "webseed" are what the engine got from the gateway's
	// seeder over WebRTC and from webseeds over HTTP; "http" is the page's HTTP body bytes by Resource Timing
	// (what swarmgate's service worker answered from the engine is not in it).
	Bytes map[string]int64 `json:"bytes"`
	// Whole is where the page's engine got its bytes by the time it had the whole page (the hero and all of the
	// video, which the engine takes on after the page is complete; at most wholeWait later): "peers", "seeder"
	// and "webseed" as in Bytes. Absent without the engine.
	Whole map[string]int64 `json:"whole,omitempty"`
	// HeroVia and VideoVia say how the elements got their bytes: "p2p" through swarmgate's engine, else
	// "http".
	HeroVia  string `json:"heroVia"`
	VideoVia string `json:"videoVia"`
	// EmulatedWorkers is how many service worker targets of the visitor's browser got the network's
	// conditions (see emulateWorkers); WorkerLagMs the longest time from a worker target's discovery to its
	// conditions being set: what the worker sent in that window was not emulated. Both 0 without emulation.
	EmulatedWorkers int     `json:"emulatedWorkers"`
	WorkerLagMs     float64 `json:"workerLagMs,omitempty"`
	// WorkerEarly lists what those workers fetched before their conditions were set, by their Resource Timing:
	// requests that escaped the emulation.
	WorkerEarly []string `json:"workerEarly,omitempty"`
	// WorkerError lists the service worker targets the visit failed to emulate (one that went away before its
	// session could set anything counts too); such a worker's requests were not emulated.
	WorkerError string `json:"workerError,omitempty"`
	// EngineEmulated counts the requests of swarmgate's engine (webseed, webseed polls, the tracker's
	// WebSocket) that got the network's conditions at the server (see engineNet); 0 without emulation.
	EngineEmulated int `json:"engineEmulated,omitempty"`
	// SettleMs is how long the visitor's browser took to settle after its launch, before the navigation
	// (see settle; 0 with Config.AtLaunch).
	SettleMs float64 `json:"settleMs,omitempty"`
	// CPU is what the visit cost the machine's processors (nil where /proc cannot tell).
	CPU   *CPU   `json:"cpu,omitempty"`
	Error string `json:"error,omitempty"`
}

// Byte sources in Visit.Bytes.
const (
	BytesOrigin  = "origin"
	BytesGateway = "gateway"
	BytesPeers   = "peers"
	BytesHTTP    = "http"
	BytesSeeder  = "seeder"
	BytesWebseed = "webseed"
)

func (v Visit) summary() string {
	s := fmt.Sprintf("hero %.0f ms, first frame %.0f ms, complete %.0f ms; MB from origin %.2f, gateway %.2f, peers %.2f",
		v.HeroMs, v.FrameMs, v.CompleteMs, mb(v.Bytes[BytesOrigin]), mb(v.Bytes[BytesGateway]), mb(v.Bytes[BytesPeers]))
	if v.Error != "" {
		s += " (" + v.Error + ")"
	}
	return s
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// visit loads the page once in mode on network n, each server and browser fresh, in dir.
func visit(ctx context.Context, cfg Config, s *site, o *origin, mode Mode, n Network, dir string) Visit {
	v, err := visitOnce(ctx, cfg, s, o, mode, n, dir)
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

func visitOnce(ctx context.Context, cfg Config, s *site, o *origin, mode Mode, n Network, dir string) (Visit, error) {
	v := Visit{Bytes: map[string]int64{}}
	front := o.url
	peerFront := front
	engineEmulated := func() int64 { return 0 }
	gatewaySent := func() int64 { return 0 }
	if mode != Direct {
		g, stop, err := startGateway(ctx, cfg, s, o, filepath.Join(dir, "gateway"))
		if err != nil {
			return v, err
		}
		defer stop()
		front = "http://" + g.Addr().String()
		peerFront = front
		if n.Emulated() {
			// The visitor reaches the gateway through engineNet, which applies the network's conditions to
			// what the page's engine sends from its worker (Chromium's emulation does not); the peer, whose
			// network is not what is measured, does not.
			addr, requests, stopFront, err := serveEngineNet(g.Handler(), n)
			if err != nil {
				return v, err
			}
			defer stopFront()
			engineEmulated = requests
			front = "http://" + addr
		}
		gatewaySent = func() int64 {
			b := g.Bytes()
			return b[gateway.SourceSeeder] + b[gateway.SourceGatewayHTTP]
		}
	}
	pageURL := front + PagePath
	var peer context.Context // the peer's browser, in the Peer mode
	if mode == Peer {
		// The peer is a browser of its own that already has the page open: it loads it without emulation (its
		// network is not what is measured) and stays on it while the visitor loads.
		pctx, stopPeer, err := browsertest.Launch(filepath.Join(dir, "peer"))
		if err != nil {
			return v, err
		}
		defer stopPeer()
		if err := openPage(pctx, Loopback); err != nil {
			return v, fmt.Errorf("peer: %w", err)
		}
		rep, err := loadPage(pctx, peerFront+PagePath, cfg.PageTimeout)
		if err != nil {
			return v, fmt.Errorf("peer: %w", err)
		}
		if rep.Complete == 0 {
			return v, fmt.Errorf("peer: page not complete after %v", cfg.PageTimeout)
		}
		peer = pctx
	}

	bctx, stopBrowser, err := browsertest.Launch(filepath.Join(dir, "visitor"))
	if err != nil {
		return v, err
	}
	defer stopBrowser()
	if err := openPage(bctx, n); err != nil {
		return v, err
	}
	stopWorkers := func() {}
	if n.Emulated() {
		we, err := emulateWorkers(bctx, rules(n), cfg.Logger)
		if err != nil {
			return v, err
		}
		stopWorkers = func() {
			r := we.stop()
			v.EmulatedWorkers, v.WorkerLagMs, v.WorkerEarly = r.applied, float64(r.lag.Microseconds())/1e3, r.early
			if r.err != nil {
				v.WorkerError = r.err.Error()
				cfg.Logger.Warn("firstview: a service worker escaped the network emulation", slog.Any("err", r.err))
			}
		}
		defer func() { stopWorkers() }()
	}
	if !cfg.AtLaunch {
		waited, err := settle(bctx)
		v.SettleMs = float64(waited.Milliseconds())
		if err != nil {
			return v, err
		}
	}
	origin0, gateway0 := o.sent.Load(), gatewaySent()
	cpu := startCPU(bctx, peer)
	rep, err := loadPage(bctx, pageURL, cfg.PageTimeout)
	v.CPU = cpu.end()
	v.EngineEmulated = int(engineEmulated())
	v.Bytes[BytesOrigin] = o.sent.Load() - origin0
	v.Bytes[BytesGateway] = gatewaySent() - gateway0
	stopWorkers()
	stopWorkers = func() {}
	if err != nil {
		return v, err
	}
	v.Bytes[BytesPeers] = rep.Peers
	v.Bytes[BytesHTTP] = rep.HTTP
	v.Bytes[BytesSeeder], v.Bytes[BytesWebseed] = rep.Seeder, rep.Webseed
	v.HeroMs, v.FrameMs, v.CompleteMs = rep.Hero, rep.Frame, rep.Complete
	v.HeroPaintMs, v.LoadedDataMs, v.LoadMs, v.MetadataMs = rep.HeroPaint, rep.LoadedData, rep.Load, rep.Metadata
	v.HeroVia, v.VideoVia = rep.HeroVia, rep.VideoVia
	if rep.Complete == 0 {
		return v, fmt.Errorf("page not complete after %v (hero %.0f ms, first frame %.0f ms, load %.0f ms, video readyState %d)",
			cfg.PageTimeout, rep.Hero, rep.Frame, rep.Load, rep.VideoState)
	}
	if rep.Engine {
		w, err := engineWhole(bctx, s.heroBytes+s.videoBytes, wholeWait)
		if err != nil {
			return v, fmt.Errorf("reading the engine's counts once it had the page: %w", err)
		}
		v.Whole = map[string]int64{BytesPeers: w.Peers, BytesSeeder: w.Seeder, BytesWebseed: w.Webseed}
	}
	return v, nil
}

// wholeWait bounds the wait, after a visit's page is complete, for its engine to have the whole page.
const wholeWait = 20 * time.Second

// startGateway starts a fresh gateway in front of the origin, its data in dir, with the site's files
// stored and swarmed from the start (Root) and its loader injected into the page (Inject); stop ends it.
func startGateway(ctx context.Context, cfg Config, s *site, o *origin, dir string) (*gateway.Server, func(), error) {
	ou, err := url.Parse(o.url)
	if err != nil {
		return nil, nil, fmt.Errorf("firstview: %w", err)
	}
	gc := gateway.Config{Net: gateway.NetConfig{Listen: "127.0.0.1:0"}, Site: gateway.SiteConfig{Origin: ou, Root: s.dir, Inject: true},
		DataDir: dir, Logger: cfg.Logger}
	if cfg.ConfigureGateway != nil {
		cfg.ConfigureGateway(&gc)
	}
	g, err := gateway.New(gc)
	if err != nil {
		return nil, nil, err
	}
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
			cfg.Logger.Error("firstview: gateway", slog.Any("err", err))
		}
	}()
	stop := func() { cancel(); <-done }
	if err := waitReady(gctx, "http://"+g.Addr().String()); err != nil {
		stop()
		return nil, nil, err
	}
	return g, stop, nil
}

// waitReady waits until the gateway answers for the page. Its site version is built already: New stores the
// files under Root and builds the first version before it returns, and Run starts seeding it at once.
func waitReady(ctx context.Context, front string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, front+PagePath, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("firstview: gateway at %s not ready: %w", front, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
