// The one script tag a site adds: <script src="/.swarm/loader.js" async></script>.
//
// The gateway rewrites heavy assets in the HTML it serves (src -> data-swarm-src, srcset -> data-swarm-srcset,
// with a <noscript> copy for browsers without JavaScript). This loader gives each such element its bytes:
// from the swarm through the lazily loaded engine when the browser can do WebRTC, else, or on any failure,
// from HTTP exactly as the page would have loaded without swarmgate. It never blocks rendering.
import type { Engine, Manifest } from './manifest'

const SRC = 'data-swarm-src'
const SRCSET = 'data-swarm-srcset'
// Last resort: if the manifest and engine are not up within this time, every element loads over HTTP. Once the
// engine runs it owns the timing (it falls back to webseeds, and gives up on a file that stops progressing).
const START_TIMEOUT_MS = 10000

const script = document.currentScript as HTMLScriptElement | null

function disabled(): boolean {
  try {
    if (script?.dataset.swarm === 'off' || localStorage.getItem('swarmgate') === 'off') return true
  } catch {
    // storage may be blocked; that is no reason to give up on the swarm
  }
  return typeof RTCPeerConnection !== 'function'
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
  return (manifest ??= fetch('/.swarm/manifest.json', { cache: 'no-cache' }).then(res => {
    if (!res.ok) throw new Error(`manifest: HTTP ${res.status}`)
    return res.json()
  }))
}

// The engine starts at most once per page, for the elements or for the service worker, whichever asks first.
function getEngine(m: Manifest): Promise<Engine> {
  return (engine ??= import(/* @vite-ignore */ m.engine).then(mod => {
    const e: Engine = mod.start(m)
    ;(window as any).swarmgate = e
    return e
  }))
}

// The service worker serves repeat views and requests the page's elements do not cover (a script's fetch, a
// CSS image) by asking the page's engine, since WebRTC does not exist inside service workers.
function serveWorker(): void {
  const sw = navigator.serviceWorker
  if (!sw || !isSecureContext) return
  sw.addEventListener('message', (ev: MessageEvent) => {
    const port = ev.ports[0]
    if (ev.data?.swarmgate !== 'get' || !port) return
    if (disabled()) return port.postMessage({ error: 'off' })
    port.postMessage({ accepted: true })
    getManifest()
      .then(getEngine)
      .then(e => e.url(ev.data.path))
      .then(u => fetch(u))
      .then(r => r.blob())
      .then(blob => port.postMessage({ blob }), err => port.postMessage({ error: String(err) }))
  })
  sw.startMessages()
  getManifest().then(async m => {
    if (!m.serviceWorker || disabled()) return
    const reg = await sw.getRegistration('/')
    const mine = (w?: ServiceWorker | null) => !w || w.scriptURL.endsWith('/.swarm/sw.js')
    // Never displace a site's own service worker.
    if (reg && !mine(reg.active ?? reg.waiting ?? reg.installing)) return
    await sw.register('/.swarm/sw.js', { scope: '/' })
  }).catch(() => {})
}

async function main(): Promise<void> {
  serveWorker()
  const els = Array.from(document.querySelectorAll(`[${SRC}],[${SRCSET}]`))
  if (els.length === 0) return
  if (disabled()) return els.forEach(restore)
  const pending = new Set(els)
  const fallback = (el: Element) => {
    if (pending.delete(el)) restore(el)
  }
  let started = false
  setTimeout(() => started || pending.forEach(fallback), START_TIMEOUT_MS)
  try {
    const m = await getManifest()
    const want = els.map(el => {
      const u = chosenURL(el)
      const url = u === null ? null : new URL(u, location.href)
      return url && url.origin === location.origin && m.files[url.pathname + url.search] ? url.pathname + url.search : null
    })
    want.forEach((p, i) => p === null && fallback(els[i]))
    if (want.every(p => p === null)) return
    const engine = await getEngine(m)
    started = true
    await Promise.all(els.map(async (el, i) => {
      const p = want[i]
      if (p === null) return
      try {
        const blobURL = await engine.url(p)
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
