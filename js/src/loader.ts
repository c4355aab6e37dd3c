// The one script tag a site adds: <script src="/.swarm/loader.js" async></script>.
//
// The gateway rewrites heavy assets in the HTML it serves (src -> data-swarm-src, srcset -> data-swarm-srcset,
// with a <noscript> copy for browsers without JavaScript). This loader gives each such element its bytes:
// from the swarm through the lazily loaded engine when the browser can do WebRTC, else, or on any failure,
// from HTTP exactly as the page would have loaded without swarmgate. It never blocks rendering.
// A page served unchanged (normal times) loads over HTTP; once loaded, at idle, the loader may start the
// engine as a seed of what the page holds in the browser's HTTP cache (idleSeed).
//
// It owns the page's policy (policy.ts) and the visitor's switches, window.swarmgate (docs/privacy.md):
//   swarmgate.mode()         -> { mode: "p2p" | "download-only" | "off", reason }
//   swarmgate.optOut()       no engine from the next page view on (plain HTTP); this one stops sharing now
//   swarmgate.downloadOnly() take from peers, serve no one (now, and on later page views)
//   swarmgate.optIn()        forget the visitor's choice
//   swarmgate.stats()        the engine's byte counts once it runs, else null
// The choice is stored in this site's localStorage; each switch returns the mode it leads to.
import type { Engine, Head, Manifest, Mode, Policy } from './manifest'
import { CHOICE_KEY, pagePolicy } from './policy'

const SRC = 'data-swarm-src'
const SRCSET = 'data-swarm-srcset'
// Last resort: if the manifest and engine are not up within this time, every element loads over HTTP. Once the
// engine runs it owns the timing (it falls back to webseeds, and gives up on a file that stops progressing).
const START_TIMEOUT_MS = 10000
// In a crowd (the manifest says so) the site's link is full: the engine may take longer to arrive, and an HTTP
// fallback would compete for the same link, so the loader waits this long instead.
const CROWD_START_TIMEOUT_MS = 30000

// A page in normal times (not rewritten) may seed what it loaded: once it has loaded, at idle, or after this
// long at the latest.
const IDLE_TIMEOUT_MS = 5000

// The engine waits at most this long for the browser's battery state before it may serve anyone.
const BATTERY_WAIT_MS = 1000

const policy = pagePolicy(document.currentScript as HTMLScriptElement | null)
const disabled = () => policy.mode().mode === 'off'
let running: Engine | undefined

const choose = (choice: string | null): Mode => {
  try {
    if (choice) localStorage.setItem(CHOICE_KEY, choice)
    else localStorage.removeItem(CHOICE_KEY)
  } catch {
    // storage blocked: the choice holds for this page only
  }
  policy.changed()
  return policy.mode()
}

;(window as Window & { swarmgate?: object }).swarmgate = {
  mode: policy.mode,
  optOut: () => choose('off'),
  downloadOnly: () => choose('download-only'),
  optIn: () => choose(null),
  stats: () => running?.stats() ?? null,
}

// Puts back the URL the page had, so the browser loads it over HTTP.
function restore(el: Element): void {
  const src = el.getAttribute(SRC)
  const srcset = el.getAttribute(SRCSET)
  el.removeAttribute(SRC)
  el.removeAttribute(SRCSET)
  if (srcset !== null) el.setAttribute('srcset', srcset)
  if (src !== null) el.setAttribute('src', src)
  reload(el)
}

function reload(el: Element): void {
  const media = el instanceof HTMLSourceElement ? el.parentElement : el
  if (media instanceof HTMLMediaElement) media.load()
}

// The order the page needs its files in: images in the first viewport (2), then other images (1), then media.
// Streamed media in the first viewport goes beside its images (2): only its read-ahead window, its first
// seconds, comes first, a piece for each of theirs; a file loaded whole would hold the images back.
function priority(el: Element, streamed: boolean): number {
  const shown = el.closest('picture')?.querySelector('img') ?? (el instanceof HTMLSourceElement ? el.parentElement : el) ?? el
  const r = shown.getBoundingClientRect()
  const onScreen = r.bottom > 0 && r.top < innerHeight
  if (shown instanceof HTMLImageElement) return onScreen ? 2 : 1
  return streamed && onScreen && shown instanceof HTMLMediaElement ? 2 : 0
}

// The URL the browser would pick: src, or the srcset candidate best matching the screen.
function chosenURL(el: Element): string | null {
  const srcset = el.getAttribute(SRCSET)
  if (srcset) {
    const dpr = window.devicePixelRatio || 1
    const want = /\d+w\b/.test(srcset) ? innerWidth * dpr : dpr
    let best: [string, number] | null = null
    for (const part of srcset.split(',')) {
      const [url, d = '1x'] = part.trim().split(/\s+/)
      const n = parseFloat(d) || 1
      if (!best || (best[1] < want ? n > best[1] : n >= want && n < best[1])) best = [url, n]
    }
    if (best) return best[0]
  }
  return el.getAttribute(SRC)
}

let manifest: Promise<Manifest> | undefined
let engine: Promise<Engine> | undefined

function getManifest(): Promise<Manifest> {
  // The default cache mode, so that the page's preload of it (the gateway writes one into a page it rewrites)
  // is used; the gateway marks it no-cache, so a cached copy is never used unvalidated.
  return (manifest ??= fetch('/.swarm/manifest.json').then(res => {
    if (res.status === 204) throw new Error('manifest: no site version yet') // nothing to swarm; not logged
    if (!res.ok) throw new Error(`manifest: HTTP ${res.status}`)
    return res.json().then((m: Manifest) => (policy.setManifest(m), m))
  }))
}

// The engine starts at most once per page, for the elements or for the service worker, whichever asks first;
// seed (paths the page loaded over HTTP) starts it in seed-only mode.
function getEngine(m: Manifest, seed?: string[]): Promise<Engine> {
  // The engine's worker (thread.ts) starts loading while this page imports the same script: a first view's
  // video metadata came 13 to 135 ms sooner here. One that fails to load (a CSP's worker-src) is dropped
  // before the engine sees it, which then tries its own and runs on the page.
  let w: Worker | undefined
  if (!engine && !seed && typeof Worker === 'function') {
    try {
      w = new Worker(m.engine, { type: 'module', name: 'swarmgate' })
      w.addEventListener('error', () => {
        w?.terminate()
        w = undefined
      }, { once: true })
    } catch {}
  }
  // The page's head (gateway/head.go): its preload, taken here (a fetch the preload answers) and read at once
  // into memory, so that its bytes do not wait for the engine's start-up.
  let head: Head | undefined
  const link = seed ? null : document.querySelector<HTMLLinkElement>('link[rel=preload][href^="/.swarm/head/"]')
  const [, , , v, list] = link ? new URL(link.href).pathname.split('/') : []
  if (!engine && link && v === m.version && list) {
    const eager = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: Infinity })
    head = { pieces: list.split(',').map(Number), body: fetch(link.href).then((r) => (r.ok ? r.body?.pipeThrough(eager) ?? null : null), () => null) }
  }
  return (engine ??= Promise.all([
    import(/* @vite-ignore */ m.engine),
    Promise.race([policy.ready, new Promise(r => setTimeout(r, BATTERY_WAIT_MS))]),
  ]).then(([mod]) => {
    if (disabled() || (seed && policy.mode().mode !== 'p2p')) { w?.terminate(); throw new Error('swarmgate: off') }
    return (running = (mod as { start(m: Manifest, p: Policy, s?: string[], w?: Worker, h?: Head): Engine }).start(m, policy, seed, w, head))
  }))
}

// How long a first view waits for swarmgate's service worker to take the page (installed, activated, claimed)
// before its elements wait for the engine's whole-file object URLs instead; those still waiting go over to the
// worker when it takes the page later (in a crowd its script comes over the site's full link).
const CONTROL_MS = 2000

// Resolves true once swarmgate's service worker controls this page (its elements then keep their URLs, and
// the worker streams their bytes from this page's engine: serveWorker), false when it never will.
let worker: Promise<boolean> = Promise.resolve(false)
// What the page said about the paths it handed to the worker: their priority, and their elements (marked
// data-swarm="p2p" once bytes come from the engine, "http" if the worker had to finish over HTTP).
const priorities = new Map<string, number>()
const streamed = new Map<string, Element[]>()

function mark(path: string, via: 'p2p' | 'http'): void {
  for (const el of streamed.get(path) ?? []) if (via === 'http' || !el.hasAttribute('data-swarm')) el.setAttribute('data-swarm', via)
}

// The service worker answers the page's requests for files of the site version (the elements' own, a script's
// fetch, a CSS image, a repeat view) with responses streamed from this page's engine, since WebRTC does not
// exist inside service workers (sw.ts has the messages).
function serveWorker(): void {
  const sw = navigator.serviceWorker
  if (!sw || !isSecureContext) return
  sw.addEventListener('message', (ev: MessageEvent) => {
    const port = ev.ports[0]
    const d = ev.data as { swarmgate?: string; path?: unknown; start?: unknown; end?: unknown; image?: unknown } | null
    if (d?.swarmgate !== 'open' || !port) return
    // A page served unchanged (normal times) loads over HTTP, as without swarmgate: the engine only seeds.
    if (disabled() || unchanged || typeof d.path !== 'string' || typeof d.start !== 'number' || typeof d.end !== 'number') {
      return port.postMessage({ error: 'off' })
    }
    const path = d.path
    port.postMessage({ accepted: true })
    // The engine answers the port itself (in its worker where it runs there: the bytes skip this thread). The
    // port is left unstarted until then: its messages wait, and go with it.
    getManifest()
      .then((m) => getEngine(m))
      .then((e) => e.serve(port, path, Number(d.start), Number(d.end), priorities.get(path) ?? (d.image ? 1 : 0),
        (v) => v !== 'end' && mark(path, v)))
      .catch((err: unknown) => {
        port.onmessage = (m: MessageEvent) => {
          if (!m.data?.next) return
          mark(path, 'http')
          port.postMessage({ error: String(err) })
        }
      })
  })
  sw.startMessages()
  const ours = (w?: ServiceWorker | null) => !!w && new URL(w.scriptURL).pathname === '/.swarm/sw.js'
  worker = getManifest()
    .then(async (m) => {
      if (!m.serviceWorker || disabled()) return false
      const reg = await sw.getRegistration('/')
      const w = reg?.active ?? reg?.waiting ?? reg?.installing
      if (w && !ours(w)) return false // never displace a site's own service worker
      const taken = new Promise<boolean>((resolve) => {
        sw.addEventListener('controllerchange', () => resolve(ours(sw.controller)), { once: true })
      })
      await sw.register('/.swarm/sw.js', { scope: '/' })
      return ours(sw.controller) || taken
    })
    .catch(() => false)
}

// A page served unchanged (normal times) loaded its heavy elements over HTTP. Once it has loaded, at idle, the
// engine seeds those the manifest lists, reading them from the HTTP cache only (engine.ts), if this page
// view may upload at all.
function idleSeed(): void {
  const may = () => policy.mode().mode === 'p2p'
  const go = () =>
    may() &&
    getManifest().then(m => {
      const paths = new Set<string>()
      for (const el of document.querySelectorAll('img,video,audio,source')) {
        for (const u of [(el as HTMLImageElement).currentSrc, el.getAttribute('src')]) {
          const url = u ? new URL(u, location.href) : null
          const p = url && url.origin === location.origin ? url.pathname + url.search : ''
          if (m.files[p]) paths.add(p)
        }
      }
      if (paths.size && may()) return getEngine(m, [...paths])
    }).catch(() => {})
  const idle = () =>
    'requestIdleCallback' in window ? requestIdleCallback(go, { timeout: IDLE_TIMEOUT_MS }) : setTimeout(go, IDLE_TIMEOUT_MS)
  if (document.readyState === 'complete') idle()
  else addEventListener('load', idle)
}

let unchanged = false

async function main(): Promise<void> {
  const els = Array.from(document.querySelectorAll(`[${SRC}],[${SRCSET}]`))
  unchanged = els.length === 0
  serveWorker()
  if (unchanged) return idleSeed()
  if (disabled()) return els.forEach(restore)
  const pending = new Set(els)
  const fallback = (el: Element) => {
    if (pending.delete(el)) restore(el)
  }
  let started = false
  const giveUp = () => started || pending.forEach(fallback)
  let timer = setTimeout(giveUp, START_TIMEOUT_MS)
  const t0 = Date.now()
  try {
    const m = await getManifest()
    if (m.mode && m.mode !== 'normal') {
      clearTimeout(timer)
      timer = setTimeout(giveUp, Math.max(0, CROWD_START_TIMEOUT_MS - (Date.now() - t0)))
    }
    const want = els.map(el => {
      const u = chosenURL(el)
      const url = u === null ? null : new URL(u, location.href)
      return url && url.origin === location.origin && m.files[url.pathname + url.search] ? url.pathname + url.search : null
    })
    want.forEach((p, i) => p === null && fallback(els[i]))
    if (want.every(p => p === null)) return
    const starting = getEngine(m)
    starting.catch(() => {}) // the worker's streams, or the elements below, see its failure
    // The worker streams each element's bytes from the engine under its original URL (and takes the rest over
    // HTTP if the engine fails): the page loads as it would without swarmgate, only the bytes come from peers.
    const stream = () => {
      // This page answers the worker, with the manifest it goes by (the worker then need not fetch its own
      // before it can answer the elements' requests).
      navigator.serviceWorker.controller?.postMessage({ swarmgate: 'hello', manifest: m })
      els.forEach((el, i) => {
        const p = want[i]
        if (p === null || !pending.delete(el)) return
        priorities.set(p, Math.max(priorities.get(p) ?? 0, priority(el, true)))
        streamed.set(p, [...(streamed.get(p) ?? []), el])
        restore(el)
      })
    }
    if (await Promise.race([worker, new Promise<boolean>((r) => setTimeout(() => r(false), CONTROL_MS))])) {
      clearTimeout(timer)
      return stream()
    }
    void worker.then((ok) => ok && stream()) // later: the elements still waiting go over to the worker
    const engine = await starting
    started = true
    await Promise.all(els.map(async (el, i) => {
      const p = want[i]
      if (p === null) return
      try {
        const blobURL = await engine.url(p, priority(el, false))
        if (!pending.delete(el)) return
        el.removeAttribute(SRC)
        el.removeAttribute(SRCSET)
        el.setAttribute('src', blobURL)
        el.setAttribute('data-swarm', 'p2p')
        reload(el)
      } catch {
        fallback(el)
      }
    }))
  } catch {
    pending.forEach(fallback)
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => void main())
else void main()
