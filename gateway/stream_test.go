package gateway_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/gateway"
	"github.com/swarmgate/swarmgate/internal/browsertest"
	"github.com/swarmgate/swarmgate/internal/examplesite"
	"github.com/swarmgate/swarmgate/uplink"
)

// streamState is what streamJS reports at each moment it looks.
type streamState struct {
	Controlled bool    `json:"controlled"` // swarmgate's service worker controls the page
	Src        string  `json:"src"`        // the audio element's URL: the original, not a blob: URL
	Received   float64 `json:"received"`   // bytes the engine had received from any source
	Via        string  `json:"via"`
	Error      string  `json:"error"`
}

// streamingPage opens the example page in a fresh browser through a gateway whose site link sends 1 MB/s
// and whose tracker nobody answers at: the page's engine finds no peer and takes the heavy files from the
// gateway's webseed, slowly enough for a test to act while they stream. before runs on the page before it
// loads.
func streamingPage(t *testing.T, before ...func(*browsertest.Page)) (*site, *browsertest.Page) {
	t.Helper()
	dir := t.TempDir()
	s := newSite(t, dir)
	origin, _ := url.Parse(s.URL)
	link, err := uplink.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gateway.Config{
		Net:  gateway.NetConfig{Uplink: link},
		Site: gateway.SiteConfig{Origin: origin, Root: dir},
		Visitors: gateway.VisitorConfig{
			TrackerURL: deadTracker(t),
			Fallback:   200 * time.Millisecond,
		},
	})
	p := browsertest.Start(t).NewPage()
	for _, f := range before {
		f(p)
	}
	if err := p.Do(30*time.Second, chromedp.Navigate("http://"+g.Addr().String()+examplesite.PageHTML)); err != nil {
		t.Fatal(err)
	}
	return s, p
}

// TestMediaPlaysFromItsFirstPieces: on a first view, with swarmgate's service worker controlling the page,
// the audio element keeps its URL and can play, and seek to near its end, long before its 8 MB have arrived:
// the worker answers its requests (200, then 206 for the seek) with bytes streamed from the engine as pieces
// are verified. The site's link is capped at 1 MB/s and no peer is there (the tracker is unreachable), so the
// bytes trickle in from the gateway's webseed; a page that waited for the whole file could not play before
// about 10 s of it. The photo, the page's other heavy element, must not hold the audio back either.
func TestMediaPlaysFromItsFirstPieces(t *testing.T) {
	s, p := streamingPage(t)
	size := float64(len(s.files[examplesite.AudioWAV]))
	heavy := size + float64(len(s.files[examplesite.ImagePNG]))

	// Playable: enough of the file for the element to play on (HAVE_FUTURE_DATA).
	const received = `(window.swarmgate && window.swarmgate.stats() ? (s => s.peerBytes + s.seederBytes + s.webseedBytes)(window.swarmgate.stats()) : 0)`
	playable, err := browsertest.Eval[streamState](p, 60*time.Second, `(async () => {
		const a = document.getElementById('tone');
		const deadline = Date.now() + 50000;
		while (a.readyState < 3 || a.hasAttribute('data-swarm-src')) {
			if (Date.now() > deadline) return { error: 'not playable: readyState ' + a.readyState };
			await new Promise(r => setTimeout(r, 20));
		}
		const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
		return { controlled: !!sw && sw.scriptURL.endsWith('/.swarm/sw.js'), src: a.currentSrc, received: `+received+`,
			via: a.dataset.swarm || '' };
	})()`)
	if err != nil || playable.Error != "" {
		t.Fatalf("%v %s; console %v", err, playable.Error, p.Console())
	}
	t.Logf("playable after %.0f of %.0f heavy bytes: %+v", playable.Received, heavy, playable)
	if !playable.Controlled || playable.Via != "p2p" {
		t.Fatalf("the audio was not streamed by the service worker from the engine: %+v", playable)
	}
	if u, err := url.Parse(playable.Src); err != nil || u.Path != examplesite.AudioWAV {
		t.Errorf("the audio plays from %q, want its own URL %s", playable.Src, examplesite.AudioWAV)
	}
	if playable.Received > heavy-size/2 {
		t.Errorf("playable only after %.0f bytes of %.0f: the audio waited for (most of) its file", playable.Received, heavy)
	}

	// Seek to near the end: the element asks for a Range there, the worker answers 206 from the engine, and it
	// plays on before the bytes in between have arrived.
	seeked, err := browsertest.Eval[streamState](p, 60*time.Second, `(async () => {
		const a = document.getElementById('tone');
		const done = new Promise(r => a.addEventListener('seeked', r, { once: true }));
		a.currentTime = a.duration * 0.9;
		await done;
		const deadline = Date.now() + 50000;
		while (a.readyState < 3) {
			if (Date.now() > deadline) return { error: 'not playable after the seek: readyState ' + a.readyState };
			await new Promise(r => setTimeout(r, 20));
		}
		return { controlled: true, src: a.currentSrc, received: `+received+`, via: a.dataset.swarm || '' };
	})()`)
	if err != nil || seeked.Error != "" {
		t.Fatalf("%v %s; console %v", err, seeked.Error, p.Console())
	}
	t.Logf("playable at 90%% after %.0f of %.0f heavy bytes", seeked.Received, heavy)
	if seeked.Received > heavy-size/4 || seeked.Via != "p2p" {
		t.Errorf("after the seek: %+v; the bytes up to the playhead should not all have come first", seeked)
	}

	// The page still ends with the right bytes, read through the worker.
	res, err := browsertest.Eval[pageResult](p, 90*time.Second, loadedJS)
	if err != nil || !res.Ready {
		t.Fatalf("%v; console %v", err, p.Console())
	}
	checkHashes(t, s, "streamed page", res)
}

// TestStreamFinishesOverHTTP: a response the worker is streaming from the engine goes on over HTTP when the
// engine stops part way (here the visitor opts out mid-file): the script reading it gets every byte, right,
// in one response, and the rest of the file came from the site over HTTP.
func TestStreamFinishesOverHTTP(t *testing.T) {
	s, p := streamingPage(t)
	type result struct {
		Via, Sha, Error, Mode string
		Read, OptedOutAt      float64
		Engine                float64 // bytes the engine received, at the end
	}
	got, err := browsertest.Eval[result](p, 90*time.Second, `(async () => {
		const deadline = Date.now() + 30000;
		while (!(navigator.serviceWorker && navigator.serviceWorker.controller)) {
			if (Date.now() > deadline) return { Error: 'no service worker' };
			await new Promise(r => setTimeout(r, 20));
		}
		const res = await fetch('/media/tone.wav');
		const reader = res.body.getReader(), parts = [];
		let read = 0, optedOutAt = 0;
		for (;;) {
			const { value, done } = await reader.read();
			if (done) break;
			parts.push(value);
			read += value.length;
			if (!optedOutAt && read >= 1 << 20) {
				optedOutAt = read;
				window.swarmgate.optOut();
			}
		}
		const all = new Uint8Array(read);
		let at = 0;
		for (const p of parts) { all.set(p, at); at += p.length; }
		const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', all)), x => x.toString(16).padStart(2, '0')).join('');
		return { Via: res.headers.get('X-Swarmgate') || '', Sha: hex, Read: read, OptedOutAt: optedOutAt, Mode: swarmgate.mode().mode,
			Engine: (s => s.peerBytes + s.seederBytes + s.webseedBytes)(swarmgate.stats()) };
	})()`)
	if err != nil || got.Error != "" {
		t.Fatalf("%v %s; console %v", err, got.Error, p.Console())
	}
	t.Logf("read %.0f bytes, opted out after %.0f: %+v", got.Read, got.OptedOutAt, got)
	if got.Via != "p2p" || got.Mode != "off" || got.OptedOutAt == 0 {
		t.Fatalf("the response did not start from the engine, or the opt-out did not happen: %+v", got)
	}
	if want := sha(s.files[examplesite.AudioWAV]); got.Sha != want {
		t.Fatalf("the response's bytes have SHA-256 %s, want %s (%.0f bytes read)", got.Sha, want, got.Read)
	}
	// The engine stopped at the opt-out: the bytes it had by then cannot be the whole file, so the rest of the
	// response came over HTTP.
	if got.Engine >= float64(len(s.files[examplesite.AudioWAV])) {
		t.Errorf("the engine received %.0f bytes: it went on after the opt-out", got.Engine)
	}
}

// TestStreamOutlivesItsEngine: a response the service worker is streaming from the engine goes on over HTTP
// at once when the engine's worker dies part way (here an uncaught error in it, which makes the page end it).
// The stream's port was in that worker, so only the page's word ('gone') tells the service worker; without
// it the response would wait for the worker's 60 s backstop.
func TestStreamOutlivesItsEngine(t *testing.T) {
	s, p := streamingPage(t, func(p *browsertest.Page) {
		if err := p.ListenWorkers(func(any) {}); err != nil {
			t.Fatal(err)
		}
	})
	started, err := browsertest.Eval[bool](p, 40*time.Second, `(async () => {
		const deadline = Date.now() + 30000;
		while (!(navigator.serviceWorker && navigator.serviceWorker.controller)) {
			if (Date.now() > deadline) return false;
			await new Promise(r => setTimeout(r, 20));
		}
		window.__read = 0;
		window.__result = (async () => {
			const res = await fetch('/media/tone.wav');
			const reader = res.body.getReader(), parts = [];
			for (;;) {
				const { value, done } = await reader.read();
				if (done) break;
				parts.push(value);
				window.__read += value.length;
			}
			const all = new Uint8Array(window.__read);
			let at = 0;
			for (const p of parts) { all.set(p, at); at += p.length; }
			const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', all)), x => x.toString(16).padStart(2, '0')).join('');
			return { Via: res.headers.get('X-Swarmgate') || '', Sha: hex, Read: window.__read, Thread: swarmgate.stats().thread };
		})();
		return true;
	})()`)
	if err != nil || !started {
		t.Fatalf("no service worker took the page: %v; console %v", err, p.Console())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		read, err := browsertest.Eval[float64](p, 10*time.Second, `window.__read`)
		if err != nil {
			t.Fatal(err)
		}
		if read >= 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream read %.0f bytes in 60 s", read)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := p.EvalInWorkers(`setTimeout(() => { throw new Error('test: the engine worker fails') }); true`); n == 0 {
		t.Fatal("no engine worker to fail")
	}
	failed := time.Now()
	type result struct {
		Via, Sha, Thread string
		Read             float64
	}
	got, err := browsertest.Eval[result](p, 50*time.Second, `window.__result`)
	took := time.Since(failed)
	if err != nil {
		t.Fatalf("%v; console %v", err, p.Console())
	}
	t.Logf("the response ended %v after the engine's worker failed: %+v", took.Round(time.Millisecond), got)
	if got.Via != "p2p" || got.Thread != "worker" {
		t.Fatalf("the response did not start from an engine in a worker: %+v", got)
	}
	if want := sha(s.files[examplesite.AudioWAV]); got.Sha != want {
		t.Fatalf("the response's bytes have SHA-256 %s, want %s (%.0f bytes read)", got.Sha, want, got.Read)
	}
	// The rest of the file is over 6 MB at the site's 1 MB/s: about 7 s over HTTP, against 60 s of waiting.
	if took > 40*time.Second {
		t.Errorf("the response took %v after the engine's worker failed: it waited for the service worker's backstop", took)
	}
}
