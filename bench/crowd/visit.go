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

	"github.com/chromedp/cdproto/page"
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
	// already running) until the page and every image on it are loaded and decoded (a browser), or every file
	// is fetched and verified (a plain client).
	Seconds float64 `json:"seconds"`
	Failed  bool    `json:"failed,omitempty"`
	Error   string  `json:"error,omitempty"`
	// Server is the address a plain client fetched from.
	Server string `json:"server,omitempty"`
	// Bytes are what a browser's engine got by source (peers, seeder, webseed) and over plain HTTP (http).
	Bytes map[string]int64 `json:"bytes,omitempty"`
	// ViaSwarm counts a browser's images that came through swarmgate's engine (the rest loaded over HTTP);
	// EngineAt is when the engine's script had arrived, in seconds from navigation start (0: never).
	ViaSwarm int     `json:"viaSwarm,omitempty"`
	EngineAt float64 `json:"engineAt,omitempty"`
	// Uploaded is what a browser sent to other browsers.
	Uploaded int64 `json:"uploaded,omitempty"`
}

// completeJS runs in every document a visitor opens, before the page's own scripts: it marks the moment the
// page is complete, the same way with and without swarmgate. Every <img> must be loaded and decoded, none
// may still wait for the swarm (data-swarm-src), and the document must be parsed. It checks when something
// that could complete the page happens (an element loads, the document is parsed, the DOM or an image's
// source changes) rather than on a timer: twenty pages polling would take CPU from the visitors it measures.
// A check each second backs the events up.
const completeJS = `if (location.protocol.startsWith('http')) (() => {
	let resolve;
	window.__benchDone = new Promise(r => (resolve = r));
	const complete = () => document.readyState !== 'loading' &&
		!document.querySelector('[data-swarm-src],[data-swarm-srcset]') &&
		document.images.length > 0 &&
		Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);
	const observer = new MutationObserver(() => check());
	const backup = setInterval(() => check(), 1000);
	const check = () => {
		if (window.__benchComplete !== undefined || !complete()) return;
		window.__benchComplete = performance.now();
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

// resultJS waits (at most %d ms) for the page to be complete and reports it.
const resultJS = `(async () => {
	if (window.__benchDone) await Promise.race([window.__benchDone, new Promise(r => setTimeout(r, %d))]);
	const st = window.swarmgate && window.swarmgate.stats();
	let http = 0, engineMs = 0;
	for (const e of performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))) {
		http += e.encodedBodySize || 0;
		if (/\/\.swarm\/engine-/.test(e.name)) engineMs = e.responseEnd;
	}
	return {
		complete: window.__benchComplete !== undefined, ms: window.__benchComplete || 0, http, engineMs,
		viaSwarm: document.querySelectorAll('img[data-swarm="p2p"]').length,
		peers: st ? st.peerBytes : 0, seeder: st ? st.seederBytes : 0, webseed: st ? st.webseedBytes : 0,
	};
})()`

type pageReport struct {
	Complete bool    `json:"complete"`
	Ms       float64 `json:"ms"`
	HTTP     int64   `json:"http"`
	EngineMs float64 `json:"engineMs"`
	ViaSwarm int     `json:"viaSwarm"`
	Peers    int64   `json:"peers"`
	Seeder   int64   `json:"seeder"`
	Webseed  int64   `json:"webseed"`
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
	v.Bytes = map[string]int64{"http": rep.HTTP, "peers": rep.Peers, "seeder": rep.Seeder, "webseed": rep.Webseed}
	v.ViaSwarm, v.EngineAt = rep.ViaSwarm, rep.EngineMs/1000
	if !rep.Complete {
		closePage()
		return fail(fmt.Errorf("page not complete after %v", timeout))
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
