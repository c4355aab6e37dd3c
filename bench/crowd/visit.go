package crowd

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
)

// Kinds of visitor.
const (
	KindBrowser = "browser" // headless Chromium running the page's scripts, swarmgate's loader among them
	KindPlain   = "plain"   // an HTTP client: no scripts, no P2P
)

// Visit is one visitor's experience.
type Visit struct {
	Kind string `json:"kind"`
	// Arrived is when the visit began, in seconds from the run's start.
	Arrived float64 `json:"arrived"`
	// Seconds is the page-complete time: from navigation start (the visitor's arrival: its browser is
	// already running) until the page and every image on it are loaded and decoded and the video has shown
	// its first frame (a browser), or every file is fetched and verified (a plain client).
	Seconds float64 `json:"seconds"`
	// FirstImage is when a browser had the page's first image on screen (loaded from its final URL, decoded,
	// and a frame painted since), and FirstFrame when its video presented its first frame, both in seconds
	// from navigation start; 0: never (and for plain clients).
	FirstImage float64 `json:"firstImage,omitempty"`
	FirstFrame float64 `json:"firstFrame,omitempty"`
	Failed     bool    `json:"failed,omitempty"`
	Error      string  `json:"error,omitempty"`
	// Server is the address a plain client fetched from.
	Server string `json:"server,omitempty"`
	// Bytes are what a browser's engine got by source (peers, seeder, webseed) and what the page fetched over
	// plain HTTP itself (http; responses swarmgate's service worker built from the engine's bytes, and the
	// engine's webseed fetches, are not in it).
	Bytes map[string]int64 `json:"bytes,omitempty"`
	// ViaSwarm counts a browser's images that came through swarmgate's engine (the rest loaded over HTTP);
	// EngineAt is when the engine's script had arrived, in seconds from navigation start (0: never).
	ViaSwarm int     `json:"viaSwarm,omitempty"`
	EngineAt float64 `json:"engineAt,omitempty"`
	// Files are when the page's requests for each resource (by URL path: the page itself, swarmgate's own
	// files, the site's) began and ended, in seconds from navigation start: the order a page got its files in.
	Files map[string][2]float64 `json:"files,omitempty"`
	// HTTPFiles splits Bytes["http"] by URL path: which of the page's own requests went to the network.
	HTTPFiles map[string]int64 `json:"httpFiles,omitempty"`
	// VideoViaSwarm says the video came through swarmgate's engine.
	VideoViaSwarm bool `json:"videoViaSwarm,omitempty"`
	// Uploaded is what a browser sent to other browsers.
	Uploaded int64 `json:"uploaded,omitempty"`
	// PeerConns counts the peer connections a browser's engine opened (the gateway's seeder's included), and
	// DroppedPeers those it dropped for bad data.
	PeerConns    int `json:"peerConns,omitempty"`
	DroppedPeers int `json:"droppedPeers,omitempty"`
	// Video is when a browser's video first fired each of its loading events (loadstart: it was given its
	// source; loadedmetadata, loadeddata, canplay, canplaythrough, playing; waiting and stalled: it ran
	// short), in seconds from navigation start: what the first frame waited for.
	Video map[string]float64 `json:"video,omitempty"`
	// FirstImageSteps is when the page's first image was first seen loaded from its final URL ("load": its
	// load event, or a check just after) and when its decode() resolved ("decoded"), in seconds from
	// navigation start: with FirstImage, and its response's end in Files, where the time between its last
	// byte and the screen goes.
	FirstImageSteps map[string]float64 `json:"firstImageSteps,omitempty"`
	// ServiceWorker is when a service worker was first active for the page's scope ("ready") and when one
	// took control of the page ("control"), in seconds from navigation start: until then swarmgate's loader
	// keeps the page's media waiting (and its images, after a while, on whole-file object URLs).
	ServiceWorker map[string]float64 `json:"serviceWorker,omitempty"`
}

// completeJS runs in every document a visitor opens, before the page's own scripts, and marks in
// window.__bench (milliseconds from navigation start, the same clock with and without swarmgate):
//   - image: the page's first <img> is on screen: it loaded from its final URL (not while the gateway still
//     holds it in data-swarm-src), img.decode() resolved, and the next animation frame has been produced
//     (rAF, then a task after it, which runs once that frame is painted);
//   - frame: the video presented its first frame (its first requestVideoFrameCallback call; its loadeddata
//     event where the browser has no such callback);
//   - video: when the page's first video first fired each of its loading events;
//   - sw: when a service worker was first active for the page's scope, and when one took control of it;
//   - steps: when the first image was first seen loaded from its final URL (its load event), and when its
//     decode() resolved;
//   - complete: the page is complete: the document is parsed, every <img> is loaded (complete, with a
//     size), the first image is on screen, every video has shown a frame, and nothing waits for the swarm
//     (data-swarm-src).
//
// It checks when something that could change the answer happens (an element loads, which never reaches
// window: listen on document in the capture phase; the document is parsed; the DOM or a source changes; a
// frame is shown) rather than on a timer: twenty pages polling would take CPU from the visitors it measures.
// A check each second backs the events up.
const completeJS = `if (location.protocol.startsWith('http')) (() => {
	const m = { image: 0, frame: 0, complete: 0, video: {}, steps: {}, sw: {} };
	window.__bench = m;
	let resolve;
	window.__benchDone = new Promise(r => (resolve = r));
	const now = () => performance.now();
	const sw = navigator.serviceWorker;
	if (sw) {
		sw.ready.then(() => { m.sw.ready = m.sw.ready || now(); });
		sw.addEventListener('controllerchange', () => { m.sw.control = m.sw.control || now(); });
	}
	const loaded = i => i.complete && i.naturalWidth > 0 &&
		!i.hasAttribute('data-swarm-src') && !i.hasAttribute('data-swarm-srcset');
	const afterPaint = f => requestAnimationFrame(() => {
		const ch = new MessageChannel();
		ch.port1.onmessage = f;
		ch.port2.postMessage(0);
	});
	let imageSrc = '';
	const firstImage = () => {
		const img = document.images[0];
		if (m.image || !img || !loaded(img) || img.currentSrc === imageSrc) return;
		const src = imageSrc = img.currentSrc;
		m.steps.load = m.steps.load || now();
		img.decode().catch(() => {}).then(() => (m.steps.decoded = m.steps.decoded || now(), afterPaint(() => {
			if (!m.image && img.currentSrc === src) { m.image = now(); check(); }
		})));
	};
	const watched = new WeakSet();
	const watch = v => {
		if (watched.has(v)) return;
		watched.add(v);
		if (v === document.querySelector('video')) for (const e of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay',
			'canplaythrough', 'playing', 'waiting', 'stalled']) v.addEventListener(e, () => { m.video[e] = m.video[e] || now(); });
		const shown = () => { if (!v.__benchFrame) { v.__benchFrame = now(); m.frame = m.frame || v.__benchFrame; check(); } };
		if (!v.requestVideoFrameCallback) return v.addEventListener('loadeddata', shown);
		// Asked again once the video has data, in case loading a new source dropped the first request.
		v.requestVideoFrameCallback(shown);
		v.addEventListener('loadeddata', () => v.requestVideoFrameCallback(shown));
	};
	const complete = videos => document.readyState !== 'loading' && m.image &&
		!document.querySelector('[data-swarm-src],[data-swarm-srcset]') &&
		Array.from(document.images).every(loaded) && videos.every(v => v.__benchFrame);
	const observer = new MutationObserver(() => check());
	const backup = setInterval(() => check(), 1000);
	const check = () => {
		if (m.complete) return;
		firstImage();
		const videos = Array.from(document.querySelectorAll('video'));
		videos.forEach(watch);
		if (!complete(videos)) return;
		m.complete = now();
		observer.disconnect();
		clearInterval(backup);
		resolve();
	};
	document.addEventListener('load', check, true);
	document.addEventListener('DOMContentLoaded', check);
	observer.observe(document, { subtree: true, childList: true, attributes: true,
		attributeFilter: ['src', 'srcset', 'data-swarm-src', 'data-swarm-srcset'] });
	check();
})();`

// resultJS waits (at most %d ms) for the page to be complete and reports its marks, its HTTP body bytes by
// Resource Timing, and swarmgate's engine's byte counts when the engine ran. A page that never completes
// still reports the marks it reached.
const resultJS = `(async () => {
	if (window.__benchDone) await Promise.race([window.__benchDone, new Promise(r => setTimeout(r, %d))]);
	const m = window.__bench || {};
	const st = window.swarmgate && window.swarmgate.stats();
	let http = 0, engineMs = 0;
	const files = {}, httpFiles = {};
	// What swarmgate's service worker answered from the engine shows in Resource Timing as if it came over
	// HTTP (encodedBodySize is the response's size): those bytes are counted by source below, not here. The
	// worker's own HTTP completions of a stream are not in the page's timeline: they show in the servers'
	// egress only.
	const swarmed = new Set(Array.from(document.querySelectorAll("[data-swarm]"), el => el.currentSrc || el.src));
	for (const e of performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))) {
		const path = new URL(e.name).pathname;
		{
			const prev = files[path];
			files[path] = [prev ? Math.min(prev[0], e.startTime) : e.startTime, Math.max(prev ? prev[1] : 0, e.responseEnd)];
		}
		if (e.workerStart > 0 && swarmed.has(e.name)) continue;
		// The engine's own fetches from the site's webseed (swarmapi.PathSeed) are its webseed bytes, below.
		// (Those from helpers, cross-origin, show no size in Resource Timing.)
		if (/\/\.swarm\/seed\//.test(e.name)) continue;
		http += e.encodedBodySize || 0;
		if (e.encodedBodySize) httpFiles[path] = (httpFiles[path] || 0) + e.encodedBodySize;
		if (/\/\.swarm\/engine-/.test(e.name)) engineMs = e.responseEnd;
	}
	const v = document.querySelector('video'), img = document.images[0];
	const waiting = [];
	if (!m.complete) {
		if (document.readyState === 'loading') waiting.push('the document');
		if (!m.image) waiting.push('the first image on screen' + (img ? ' (complete ' + img.complete + ', ' + img.naturalWidth +
			' px wide, from ' + (img.currentSrc || 'nowhere').slice(0, 5) + ')' : ''));
		const n = Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length;
		if (n) waiting.push(n + ' images to load');
		const held = document.querySelectorAll('[data-swarm-src],[data-swarm-srcset]').length;
		if (held) waiting.push(held + ' elements held for the swarm');
		for (const v of document.querySelectorAll('video')) if (!v.__benchFrame) waiting.push('a video frame (readyState ' +
			v.readyState + ', networkState ' + v.networkState + ', error ' + (v.error ? v.error.code : 'none') +
			', paused ' + v.paused + ', at ' + v.currentTime.toFixed(1) + ' s, from ' + (v.currentSrc || 'nowhere').slice(0, 5) + ')');
	}
	return {
		waiting: waiting.join('; '),
		complete: !!m.complete, ms: m.complete || 0, image: m.image || 0, frame: m.frame || 0, video: m.video || {}, steps: m.steps || {}, sw: m.sw || {}, http, engineMs,
		viaSwarm: document.querySelectorAll('img[data-swarm="p2p"]').length,
		videoViaSwarm: !!v && v.dataset.swarm === 'p2p',
		conns: st ? st.peers : 0, dropped: st ? st.droppedPeers : 0,
		peers: st ? st.peerBytes : 0, seeder: st ? st.seederBytes : 0, webseed: st ? st.webseedBytes : 0, files, httpFiles,
	};
})()`

// seconds converts a page's marks from milliseconds to seconds; none gives nil.
func seconds(ms map[string]float64) map[string]float64 {
	if len(ms) == 0 {
		return nil
	}
	s := make(map[string]float64, len(ms))
	for e, t := range ms {
		s[e] = t / 1000
	}
	return s
}

// pageReport is what resultJS returns.
type pageReport struct {
	Complete      bool               `json:"complete"`
	Waiting       string             `json:"waiting"` // what an incomplete page still waited for
	Ms            float64            `json:"ms"`
	Image         float64            `json:"image"`
	Frame         float64            `json:"frame"`
	Video         map[string]float64 `json:"video"`
	Steps         map[string]float64 `json:"steps"`
	SW            map[string]float64 `json:"sw"`
	HTTP          int64              `json:"http"`
	EngineMs      float64            `json:"engineMs"`
	ViaSwarm      int                `json:"viaSwarm"`
	VideoViaSwarm bool               `json:"videoViaSwarm"`
	Peers         int64              `json:"peers"`
	Conns         int                `json:"conns"`
	Dropped       int                `json:"dropped"`
	Seeder        int64              `json:"seeder"`
	Webseed       int64              `json:"webseed"`
	// Files are the page's resources by URL path: when the first request for one started and the last
	// ended, in ms from navigation start (Resource Timing).
	Files map[string][2]float64 `json:"files"`
	// HTTPFiles are the bytes in HTTP by URL path.
	HTTPFiles map[string]int64 `json:"httpFiles"`
}

// tab is a browser visitor's tab, kept open after its page completes so it goes on sharing.
type tab struct {
	ctx   context.Context
	close context.CancelFunc
}

// uploaded reads what the page's engine has sent to other browsers.
func (p *tab) uploaded() int64 {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`(window.swarmgate && window.swarmgate.stats() || {}).uploadedBytes || 0`))
	if err != nil {
		return 0
	}
	return int64(n)
}

// quiet turns off the DevTools domains chromedp turns on in every tab it attaches to and the benchmark does
// not use: Network (an event for each chunk of every response, and a copy of each body kept for
// Network.getResponseBody), DOM, CSS and Log, and the attaching to the page's workers. A visitor's browser
// would do none of that work, and twenty browsers on two cores all pay for it, with swarmgate or without.
// The benchmark reads its pages with Runtime.evaluate and navigates with Page, which stay on.
func quiet(ctx context.Context) error {
	for _, off := range []cdp.Command[cdp.Empty, cdp.Empty]{network.Disable, dom.Disable, css.Disable, log.Disable} {
		if _, err := chromedp.Call(ctx, off, cdp.Empty{}); err != nil {
			return fmt.Errorf("%s: %w", off.Method, err)
		}
	}
	if _, err := chromedp.Call(ctx, target.SetAutoAttach, target.SetAutoAttachParams{}); err != nil {
		return fmt.Errorf("%s: %w", target.SetAutoAttach.Method, err)
	}
	return nil
}

// visitBrowser opens url in a tab that open makes (a visitor of its own: no shared cache or cookies) and
// waits until the page is complete or timeout passes.
func visitBrowser(ctx context.Context, open func() (context.Context, func(), error), url string, timeout time.Duration) (Visit, *tab) {
	v := Visit{Kind: KindBrowser}
	fail := func(err error) (Visit, *tab) {
		v.Failed, v.Error = true, err.Error()
		return v, nil
	}
	pctx, closePage, err := open()
	if err != nil {
		return fail(err)
	}
	stop := context.AfterFunc(ctx, closePage)
	defer stop()
	p := &tab{ctx: pctx, close: closePage}
	deadline := time.Now().Add(timeout)
	if err := quiet(pctx); err != nil {
		closePage()
		return fail(fmt.Errorf("new page: %w", err))
	}
	if _, err := chromedp.Call(pctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: completeJS}); err != nil {
		closePage()
		return fail(fmt.Errorf("new page: %w", err))
	}
	// Navigate waits for the load event, which without swarmgate waits for every image; the page's own
	// mark says when it was complete either way.
	nctx, cancel := context.WithDeadline(pctx, deadline)
	err = chromedp.Do(nctx, chromedp.Navigate(url))
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		closePage()
		return fail(fmt.Errorf("navigate: %w", err))
	}
	wait := max(time.Until(deadline), 0)
	rctx, cancel := context.WithTimeout(pctx, wait+10*time.Second)
	rep, err := chromedp.Run(rctx, chromedp.Evaluate[pageReport](fmt.Sprintf(resultJS, wait.Milliseconds()), chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		closePage()
		return fail(fmt.Errorf("reading the page: %w", err))
	}
	v.PeerConns, v.DroppedPeers = rep.Conns, rep.Dropped
	v.Bytes = map[string]int64{"http": rep.HTTP, "peers": rep.Peers, "seeder": rep.Seeder, "webseed": rep.Webseed}
	v.ViaSwarm, v.EngineAt, v.VideoViaSwarm = rep.ViaSwarm, rep.EngineMs/1000, rep.VideoViaSwarm
	for path, f := range rep.Files {
		if v.Files == nil {
			v.Files = map[string][2]float64{}
		}
		v.Files[path] = [2]float64{f[0] / 1000, f[1] / 1000}
	}
	if len(rep.HTTPFiles) > 0 {
		v.HTTPFiles = rep.HTTPFiles
	}
	v.FirstImage, v.FirstFrame = rep.Image/1000, rep.Frame/1000
	v.Video, v.ServiceWorker, v.FirstImageSteps = seconds(rep.Video), seconds(rep.SW), seconds(rep.Steps)
	if !rep.Complete {
		closePage()
		return fail(fmt.Errorf("page not complete after %v; waiting for %s", timeout, rep.Waiting))
	}
	v.Seconds = rep.Ms / 1000
	return v, p
}

// visitPlain is a visitor without scripts: it resolves the site, then fetches the page and every asset
// (six at a time, as a browser would) from the address it got, sending the site's name in Host, and
// checks each asset's bytes.
func visitPlain(ctx context.Context, resolve func(context.Context) (netip.AddrPort, error), s *site, timeout time.Duration) Visit {
	v := Visit{Kind: KindPlain}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	fail := func(err error) Visit {
		v.Failed, v.Error = true, err.Error()
		return v
	}
	addr, err := resolve(ctx)
	if err != nil {
		return fail(fmt.Errorf("resolving %s: %w", Site, err))
	}
	v.Server = addr.String()
	tr := &http.Transport{MaxConnsPerHost: 6, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(p string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+p, nil)
		if err != nil {
			return nil, err
		}
		req.Host = Site
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", p, resp.StatusCode)
		}
		return b, nil
	}
	if _, err := get("/"); err != nil {
		return fail(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		n    int64
	)
	for _, p := range s.assets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := get(p)
			if err == nil && sha256.Sum256(b) != sha256.Sum256(s.files[p]) {
				err = fmt.Errorf("%s: %d bytes that differ from the site's", p, len(b))
			}
			mu.Lock()
			defer mu.Unlock()
			n += int64(len(b))
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	v.Bytes = map[string]int64{"http": n}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	v.Seconds = time.Since(start).Seconds()
	return v
}

// lookup asks the DNS server at server for name's A records and returns the first, as a stub resolver
// would use it.
func lookup(ctx context.Context, server netip.AddrPort, name string) (netip.Addr, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err != nil {
		return netip.Addr{}, err
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
				return addr, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no A record for %s (rcode %s)", name, dns.RcodeToString[r.Rcode])
}
