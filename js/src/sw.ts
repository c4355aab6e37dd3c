/// <reference lib="webworker" />
// The service worker (scope /): answers same-origin GETs for files of the current site version from the
// engine of the page that asked, since WebRTC is not available here, and from the network otherwise. It
// serves repeat views and requests the loader's elements do not cover (a script's fetch, a CSS image).
import type { Manifest } from './manifest'

declare const self: ServiceWorkerGlobalScope

// How long a page has to say it will serve a file before the request goes to the network.
const ACCEPT_MS = 1000
// How long an accepted file may take; the engine itself falls back to webseeds and gives up on stalls.
const SERVE_MS = 120000
const MANIFEST_TTL_MS = 30000

let manifest: Promise<Manifest | null> | undefined
let manifestAt = 0

function getManifest(): Promise<Manifest | null> {
  if (!manifest || Date.now() - manifestAt > MANIFEST_TTL_MS) {
    manifestAt = Date.now()
    manifest = fetch('/.swarm/manifest.json', { cache: 'no-cache' })
      .then(r => (r.status === 200 ? r.json() : null)) // 204: no site version yet
      .catch(() => null)
  }
  return manifest
}

self.addEventListener('install', () => void self.skipWaiting())
self.addEventListener('activate', ev => ev.waitUntil(self.clients.claim()))

self.addEventListener('fetch', (ev: FetchEvent) => {
  const req = ev.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || url.origin !== location.origin || url.pathname.startsWith('/.swarm/')) return
  ev.respondWith(serve(ev, url.pathname + url.search))
})

async function serve(ev: FetchEvent, path: string): Promise<Response> {
  const m = await getManifest()
  const file = m?.files[path]
  const client = file && ev.clientId ? await self.clients.get(ev.clientId) : undefined
  if (!file || !client) return fetch(ev.request)
  try {
    const blob = await ask(client, path)
    return respond(blob, file.type, ev.request.headers.get('range'))
  } catch {
    return fetch(ev.request)
  }
}

function ask(client: Client, path: string): Promise<Blob> {
  return new Promise((resolve, reject) => {
    const ch = new MessageChannel()
    let timer = setTimeout(() => reject(new Error('no page engine')), ACCEPT_MS)
    ch.port1.onmessage = (ev: MessageEvent) => {
      const d = ev.data
      if (d.accepted) {
        clearTimeout(timer)
        timer = setTimeout(() => reject(new Error('too slow')), SERVE_MS)
        return
      }
      clearTimeout(timer)
      if (d.blob) resolve(d.blob)
      else reject(new Error(d.error))
    }
    client.postMessage({ swarmgate: 'get', path }, [ch.port2])
  })
}

function respond(blob: Blob, type: string, range: string | null): Response {
  const headers: Record<string, string> = { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'X-Swarmgate': 'p2p' }
  const r = range && /^bytes=(\d*)-(\d*)$/.exec(range)
  if (!r || (r[1] === '' && r[2] === '')) {
    headers['Content-Length'] = String(blob.size)
    return new Response(blob, { status: 200, headers })
  }
  let start: number, end: number
  if (r[1] === '') {
    start = Math.max(0, blob.size - Number(r[2]))
    end = blob.size - 1
  } else {
    start = Number(r[1])
    end = r[2] === '' ? blob.size - 1 : Math.min(Number(r[2]), blob.size - 1)
  }
  if (start >= blob.size || start > end) {
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${blob.size}` } })
  }
  headers['Content-Range'] = `bytes ${start}-${end}/${blob.size}`
  headers['Content-Length'] = String(end - start + 1)
  return new Response(blob.slice(start, end + 1), { status: 206, headers })
}
