/// <reference lib="webworker" />
// The service worker (scope /). It answers same-origin GETs for files of the current site version with
// responses streamed from the engine of the page that asked (WebRTC does not exist in service workers): a 200,
// or a 206 for a Range, whose body is the file's verified bytes in order, as the swarm delivers them. A page
// therefore keeps its original URLs: a video plays from its first pieces and seeks by Range, an image renders
// as it arrives. The page must answer within ACCEPT_MS, else the request goes to the network untouched; if
// its engine fails part way (no progress from peers or webseeds, the visitor opted out, the page went away),
// the response goes on with the rest of the range over HTTP, so a response once started always completes.
//
// Messages, over a MessageChannel per response (the page's side is the loader's serveWorker):
//   page → worker  {swarmgate: 'hello', manifest}                 (on the worker itself) this page runs the loader
//   page → worker  {swarmgate: 'gone'}                            (on the worker itself) its engine's worker died:
//                                                                 its streams go to the network at once
//   worker → page  {swarmgate: 'open', path, start, end, image}   (on the page's own message port)
//   page → worker  {accepted: true} | {error}                     the page will stream it, or not
//   worker → page  {next: true}                                   one per chunk the response wants
//   page → worker  {chunk: Uint8Array} | {done: true} | {error}
//   worker → page  {close: true}                                  the response was cancelled
import type { Manifest } from './manifest'
import { byteRange } from './range'

declare const self: ServiceWorkerGlobalScope

// How long a page has to say it will stream a file before the request goes to the network: a page whose
// loader said hello (it runs an engine, and hands its elements to this worker) gets ENGINE_ACCEPT_MS, since a
// page busy in a crowd may take seconds to answer and the network is then the slow way; any other, ACCEPT_MS.
const ACCEPT_MS = 1000
const ENGINE_ACCEPT_MS = 15000
// How long the page may stay silent while a chunk is awaited: a backstop for a page that stopped answering (its
// engine gives up on its own long before, see engine.ts). A page still working on a chunk says so (relay.ts's
// {alive}, every 10 s), and the wait starts again.
const CHUNK_MS = 60000
const MANIFEST_TTL_MS = 30000

let manifest: Promise<Manifest | null> | undefined
let manifestAt = 0
let known: Manifest | null | undefined // the last manifest fetched, once it has arrived (null: none)

function getManifest(): Promise<Manifest | null> {
  if (!manifest || Date.now() - manifestAt > MANIFEST_TTL_MS) {
    manifestAt = Date.now()
    manifest = fetch('/.swarm/manifest.json', { cache: 'no-cache' })
      .then((r) => (r.status === 200 ? (r.json() as Promise<Manifest>) : null)) // 204: no site version yet
      .catch(() => null)
      .then((m) => (known = m))
  }
  return manifest
}

// The pages whose loader said hello, by client ID (forgotten when the worker is stopped: they then get
// ACCEPT_MS, and their requests go to the network if they are slow to answer).
const engines = new Set<string>()

// The streams each page answers, by client ID: a page whose engine's worker died (its streams' ports went
// with it) says 'gone', and they take the rest from the network rather than wait CHUNK_MS for answers.
const live = new Map<string, Set<() => void>>()

self.addEventListener('message', (ev: ExtendableMessageEvent) => {
  const src = ev.source
  const d = ev.data as { swarmgate?: string; manifest?: Manifest } | null
  if (d?.swarmgate === 'gone' && src && 'id' in src) return live.get(src.id)?.forEach((kill) => kill())
  if (d?.swarmgate !== 'hello' || !src || !('id' in src)) return
  engines.add(src.id)
  // The page's manifest, just fetched, stands for the worker's own (same origin, same URL).
  if (d.manifest && typeof d.manifest.files === 'object' && d.manifest.files !== null) {
    known = d.manifest
    manifest = Promise.resolve(known)
    manifestAt = Date.now()
  }
})

self.addEventListener('install', () => void self.skipWaiting())
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()))

self.addEventListener('fetch', (ev: FetchEvent) => {
  const req = ev.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || req.mode === 'navigate' || url.origin !== location.origin) return
  const path = url.pathname + url.search
  if (url.pathname.startsWith('/.swarm/')) return
  // A request for a file the current manifest does not list (a page, a script, a small image) is left to the
  // browser, exactly as without a service worker; only while no manifest has arrived yet does it wait for one.
  if (known !== undefined && Date.now() - manifestAt <= MANIFEST_TTL_MS && !known?.files[path]) return
  ev.respondWith(serve(ev, path))
})

async function serve(ev: FetchEvent, path: string): Promise<Response> {
  const m = await getManifest()
  const file = m?.files[path]
  const client = file && ev.clientId ? await self.clients.get(ev.clientId) : undefined
  if (ev.clientId && !client) engines.delete(ev.clientId)
  // Only a page streams from its engine: the engine's own worker (thread.ts), reading the HTTP cache for what
  // it seeds, gets the network's answer.
  if (!file || !client || client.type !== 'window') return fetch(ev.request)
  const rangeHeader = ev.request.headers.get('range')
  if (rangeHeader && !/^bytes=\d*-\d*$/.test(rangeHeader.trim())) return fetch(ev.request) // several ranges
  const r = byteRange(rangeHeader, file.size)
  if (r === 'unsatisfiable') {
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${file.size}` } })
  }
  const [start, end] = r ?? [0, file.size]
  const image = ev.request.destination === 'image'
  const port = await open(client, path, start, end, image)
  if (!port) return fetch(ev.request)
  const headers: Record<string, string> = {
    'Content-Type': file.type,
    'Content-Length': String(end - start),
    'Accept-Ranges': 'bytes',
    'X-Swarmgate': 'p2p',
  }
  if (r) headers['Content-Range'] = `bytes ${start}-${end - 1}/${file.size}`
  let ended = () => {}
  // The worker must live while the body streams: an idle worker is stopped (Chromium: after 30 s), and a
  // response's body does not count as activity once respondWith has its Response.
  ev.waitUntil(new Promise<void>((r) => (ended = r)))
  return new Response(body(port, path, start, end, image, client.id, () => ended()), { status: r ? 206 : 200, headers })
}

// open asks the page to stream [start, end) of path and resolves to the channel's port once it accepts, or
// to null when it refuses or does not answer within ACCEPT_MS.
function open(client: Client, path: string, start: number, end: number, image: boolean): Promise<MessagePort | null> {
  return new Promise((resolve) => {
    const ch = new MessageChannel()
    const timer = setTimeout(() => done(null), engines.has(client.id) ? ENGINE_ACCEPT_MS : ACCEPT_MS)
    const done = (p: MessagePort | null) => {
      clearTimeout(timer)
      ch.port1.onmessage = null
      if (!p) ch.port1.close()
      resolve(p)
    }
    ch.port1.onmessage = (ev: MessageEvent) => done(ev.data?.accepted ? ch.port1 : null)
    client.postMessage({ swarmgate: 'open', path, start, end, image }, [ch.port2])
  })
}

type Answer = { chunk?: Uint8Array; done?: boolean; error?: string; alive?: boolean }

// body is the response's stream: chunks from the page, one asked for each time the response wants more (an
// image's, as soon as the last is in); on an error or silence, the rest of the range from the network.
function body(port: MessagePort, path: string, start: number, end: number, image: boolean, client: string, done: () => void): ReadableStream<Uint8Array> {
  let pos = start
  let waiting: ((a: Answer) => void) | undefined
  let gone = false
  let cancelled = false
  const stopped: Answer = { error: "the page's engine stopped" }
  const kill = () => {
    gone = true
    waiting?.(stopped)
  }
  const streams = live.get(client) ?? new Set()
  live.set(client, streams.add(kill))
  const ended = () => {
    streams.delete(kill)
    if (!streams.size) live.delete(client)
    done()
  }
  port.onmessage = (ev: MessageEvent) => waiting?.(ev.data as Answer)
  const ask = () =>
    new Promise<Answer>((resolve) => {
      if (gone) return resolve(stopped)
      const silent = () => setTimeout(() => resolve({ error: 'the page stopped answering' }), CHUNK_MS)
      let timer = silent()
      waiting = (a) => {
        clearTimeout(timer)
        if (a.alive) return void (timer = silent())
        waiting = undefined
        resolve(a)
      }
      port.postMessage({ next: true })
    })
  let rest: ReadableStreamDefaultReader<Uint8Array> | undefined
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        try {
          await more(ctl)
        } catch (err) {
          ended()
          throw err
        }
      },
      cancel() {
        cancelled = true
        ended()
        if (rest) return rest.cancel()
        waiting?.(stopped) // a chunk still awaited: more() sees the cancel, and asks the network for nothing
        port.postMessage({ close: true })
        port.close()
      },
    },
    // An image's next chunk is asked for as soon as one is in: each takes a round trip through the page, and
    // the bytes' way on to the renderer took as long again on a busy machine (asked for only once the renderer
    // had taken the last, a crowd visitor's image came at 2 to 3 s a chunk), and an image is read whole anyway.
    // Media's is asked for only when the response wants one: a player that stops reading (its buffer is full,
    // it is paused) leaves the engine with no reader waiting (streams.ts), so no deadline and no fallback.
    { highWaterMark: image ? end - start : 0, size: (c: Uint8Array) => c.byteLength },
  )

  async function more(ctl: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    if (!rest) {
      const a = await ask()
      if (cancelled) return
      if (a.chunk && a.chunk.length > 0 && pos + a.chunk.length <= end) {
        pos += a.chunk.length
        return ctl.enqueue(a.chunk)
      }
      if (a.done && pos === end) {
        port.close()
        ended()
        return ctl.close()
      }
      port.postMessage({ close: true })
      port.close()
      rest = await network(path, pos, end) // throws: the response fails, as a broken connection would
      if (cancelled) return void rest.cancel()
    }
    const { value, done } = await rest.read()
    if (done) {
      if (pos !== end) throw new Error(`swarmgate: ${path}: the network sent ${pos - start} of ${end - start} bytes`)
      ended()
      return ctl.close()
    }
    const chunk = value.subarray(0, end - pos)
    pos += chunk.length
    ctl.enqueue(chunk)
  }
}

// network reads bytes [pos, end) of path over HTTP: a 206 for exactly that range, or a 200 whose first pos
// bytes are skipped.
async function network(path: string, pos: number, end: number): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const res = await fetch(path, { headers: { Range: `bytes=${pos}-${end - 1}` } })
  const reader = res.body?.getReader()
  if (!reader || (res.status !== 206 && res.status !== 200)) throw new Error(`swarmgate: ${path}: HTTP ${res.status}`)
  if (res.status === 206 && !(res.headers.get('content-range') ?? '').startsWith(`bytes ${pos}-`)) {
    void reader.cancel()
    throw new Error(`swarmgate: ${path}: the network sent another range`)
  }
  if (res.status === 206 || pos === 0) return reader
  let skip = pos
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return ctl.close()
        if (skip >= value.length) {
          skip -= value.length
          continue
        }
        ctl.enqueue(value.subarray(skip))
        skip = 0
        return
      }
    },
    cancel: () => reader.cancel(),
  }).getReader()
}
