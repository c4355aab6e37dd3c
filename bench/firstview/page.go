package firstview

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// measureJS runs in every document a visitor's browser opens, before the page's own scripts, and marks in
// window.__firstview (milliseconds from navigation start, the same clock in every mode):
//   - hero: the hero image is on screen: it loaded with its final URL (not while the gateway still holds it in
//     data-swarm-src), img.decode() resolved, and the next animation frame has been produced (rAF, then a
//     task after it, which runs once that frame is painted);
//   - heroPaint: the browser's own element timing for it (elementtiming="hero"), when it reports one;
//   - metadata: the video's loadedmetadata event (its first bytes are parsed: the first frame follows once the
//     decoder has started);
//   - frame: the video presented its first frame (the first requestVideoFrameCallback call);
//   - loadedData: the video's loadeddata event, for comparison;
//   - load: the window's load event;
//   - complete: the page is complete: load has fired, the hero is on screen, the video has shown a frame and
//     can play through (readyState HAVE_ENOUGH_DATA), and no element waits for the swarm any more.
//
// It checks on the events that can change the answer (an element's load, which never reaches window: listen
// on document in the capture phase; the video's events; DOM changes), with a check every 250 ms behind them.
const measureJS = `if (location.protocol.startsWith('http')) (() => {
	const m = { hero: 0, heroPaint: 0, metadata: 0, frame: 0, loadedData: 0, load: 0, complete: 0 };
	window.__firstview = m;
	let resolve;
	window.__firstviewDone = new Promise(r => (resolve = r));
	const now = () => performance.now();
	const waiting = () => document.querySelector('[data-swarm-src],[data-swarm-srcset]');
	const afterPaint = f => requestAnimationFrame(() => {
		const ch = new MessageChannel();
		ch.port1.onmessage = f;
		ch.port2.postMessage(0);
	});
	const check = () => {
		if (m.complete) return;
		const img = document.getElementById('hero'), v = document.getElementById('clip');
		if (img && img.complete) heroLoaded(img);
		if (v) watch(v);
		if (!m.hero || !m.frame || !m.load || !v || v.readyState < 4 || waiting()) return;
		m.complete = now();
		clearInterval(backup);
		observer.disconnect();
		resolve();
	};
	let heroSrc = '';
	const heroLoaded = img => {
		if (m.hero || img.hasAttribute('data-swarm-src') || img.hasAttribute('data-swarm-srcset') ||
			!img.currentSrc || !img.naturalWidth || img.currentSrc === heroSrc) return;
		const src = heroSrc = img.currentSrc;
		img.decode().catch(() => {}).then(() => afterPaint(() => {
			if (!m.hero && img.currentSrc === src) { m.hero = now(); check(); }
		}));
	};
	const watch = v => {
		if (v.__firstview) return;
		v.__firstview = true;
		if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => { if (!m.frame) { m.frame = now(); check(); } });
		v.addEventListener('loadeddata', () => { if (!m.loadedData) m.loadedData = now(); check(); });
		for (const e of ['canplaythrough', 'progress', 'playing']) v.addEventListener(e, check);
	};
	try {
		new PerformanceObserver(list => {
			for (const e of list.getEntries()) if (e.identifier === 'hero' && e.url && !m.heroPaint) m.heroPaint = e.renderTime || e.loadTime;
		}).observe({ type: 'element', buffered: true });
	} catch (e) {}
	document.addEventListener('load', ev => { if (ev.target && ev.target.id === 'hero') heroLoaded(ev.target); }, true);
	document.addEventListener('loadedmetadata', ev => { if (ev.target && ev.target.id === 'clip' && !m.metadata) m.metadata = now(); }, true);
	window.addEventListener('load', () => { m.load = now(); check(); });
	const observer = new MutationObserver(check);
	observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['src', 'data-swarm-src'] });
	const backup = setInterval(check, 250);
})();`

// resultJS waits (at most %d ms) for the page to be complete and reports its marks, its HTTP body bytes by
// Resource Timing, and swarmgate's engine's byte counts when the engine ran.
const resultJS = `(async () => {
	if (window.__firstviewDone) await Promise.race([window.__firstviewDone, new Promise(r => setTimeout(r, %d))]);
	const m = window.__firstview || {};
	const st = window.swarmgate && window.swarmgate.stats && window.swarmgate.stats();
	// Responses swarmgate's service worker built from the engine's bytes show in Resource Timing at their full
	// size, as if they came over HTTP: the engine's counts below have them.
	let http = 0;
	const swarmed = new Set(Array.from(document.querySelectorAll('[data-swarm]'), el => el.currentSrc || el.src));
	for (const e of performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))) {
		if (!(e.workerStart > 0 && swarmed.has(e.name))) http += e.encodedBodySize || 0;
	}
	const img = document.getElementById('hero'), v = document.getElementById('clip');
	return {
		hero: m.hero || 0, heroPaint: m.heroPaint || 0, metadata: m.metadata || 0, frame: m.frame || 0, loadedData: m.loadedData || 0,
		load: m.load || 0, complete: m.complete || 0, http,
		engine: !!st, peers: st ? st.peerBytes || 0 : 0, seeder: st ? st.seederBytes || 0 : 0, webseed: st ? st.webseedBytes || 0 : 0,
		heroVia: img ? img.dataset.swarm || 'http' : '', videoVia: v ? v.dataset.swarm || 'http' : '',
		videoState: v ? v.readyState : -1,
	};
})()`

// wholeJS waits (at most %d ms) until the page's engine has received at least %d bytes (the hero and the
// whole video: the engine takes the rest of a streamed file after the page is complete) or its counts stop
// moving for 3 s, and returns its byte counts by source.
const wholeJS = `(async () => {
	const st = () => window.swarmgate && window.swarmgate.stats && window.swarmgate.stats();
	const sum = s => s ? s.peerBytes + s.seederBytes + s.webseedBytes : 0;
	const until = performance.now() + %d;
	let last = -1, still = 0;
	for (;;) {
		const n = sum(st());
		if (n >= %d || performance.now() >= until) break;
		still = n === last ? still + 250 : 0;
		if (still >= 3000) break;
		last = n;
		await new Promise(r => setTimeout(r, 250));
	}
	const s = st();
	return { peers: s ? s.peerBytes : 0, seeder: s ? s.seederBytes : 0, webseed: s ? s.webseedBytes : 0 };
})()`

// wholeReport is what wholeJS returns.
type wholeReport struct {
	Peers   int64 `json:"peers"`
	Seeder  int64 `json:"seeder"`
	Webseed int64 `json:"webseed"`
}

// engineWhole reads, once the page's engine has the whole page (or after timeout), where its bytes came from.
func engineWhole(ctx context.Context, want int64, timeout time.Duration) (wholeReport, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	return chromedp.Run(rctx, chromedp.Evaluate[wholeReport](fmt.Sprintf(wholeJS, timeout.Milliseconds(), want), chromedp.EvalAwaitPromise))
}

// pageReport is what resultJS returns.
type pageReport struct {
	Hero       float64 `json:"hero"`
	HeroPaint  float64 `json:"heroPaint"`
	Metadata   float64 `json:"metadata"`
	Frame      float64 `json:"frame"`
	LoadedData float64 `json:"loadedData"`
	Load       float64 `json:"load"`
	Complete   float64 `json:"complete"`
	HTTP       int64   `json:"http"`
	Engine     bool    `json:"engine"`
	Peers      int64   `json:"peers"`
	Seeder     int64   `json:"seeder"`
	Webseed    int64   `json:"webseed"`
	HeroVia    string  `json:"heroVia"`
	VideoVia   string  `json:"videoVia"`
	VideoState int     `json:"videoState"`
}

// urlPatterns are the requests a Network's conditions apply to unless it throttles WebRTC: every HTTP request
// and WebSocket. A rule with an empty pattern would match WebRTC's connections too.
var urlPatterns = []string{"http://*:*/*", "https://*:*/*", "ws://*:*/*", "wss://*:*/*"}

// openPage prepares a browser's first tab: the network it emulates, and measureJS in every document. The
// tab's conditions cover the requests of its documents, not those of its service workers: see emulateWorkers.
func openPage(ctx context.Context, n Network) error {
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: measureJS}); err != nil {
		return fmt.Errorf("adding the measuring script: %w", err)
	}
	if !n.Emulated() {
		return nil
	}
	return emulate(ctx, rules(n))
}

// loadPage navigates the tab to url and waits until the page is complete or timeout has passed, then reads
// its report. A page that never completes still reports the marks it reached.
func loadPage(ctx context.Context, url string, timeout time.Duration) (pageReport, error) {
	deadline := time.Now().Add(timeout)
	// Navigate returns at the load event; the page's own marks say what happened when.
	nctx, cancel := context.WithDeadline(ctx, deadline)
	err := chromedp.Do(nctx, chromedp.Navigate(url))
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return pageReport{}, fmt.Errorf("navigate: %w", err)
	}
	wait := max(time.Until(deadline), 0)
	rctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	rep, err := chromedp.Run(rctx, chromedp.Evaluate[pageReport](fmt.Sprintf(resultJS, wait.Milliseconds()), chromedp.EvalAwaitPromise))
	if err != nil {
		return pageReport{}, fmt.Errorf("reading the page: %w", err)
	}
	return rep, nil
}
