// Where the engine's work runs. Browsers deliver a data channel's messages on the thread that owns the
// channel, and on the page's main thread that delivery, the copies into pieces and the hashing took most of
// what a download cost there (js/src/p2p/README.md, CPU benchmark). So the engine's core (engine.ts's run:
// the torrent, its store, the files and streams the page asked for) runs in a dedicated worker started from
// the engine's own script, and the page keeps only what needs it: its peer connections (browsers have no
// RTCPeerConnection in workers; each data channel is made on the page and transferred to the worker at once,
// p2p/rtc.ts), the object URLs, the reports, and the policy, whose mode the page sends as it changes.
//
// A browser that cannot transfer a data channel, or a page whose Content-Security-Policy keeps the worker
// from starting, runs the core on the page as before (engine.ts's start).
//
// Messages, page → worker, on the worker itself:
//   {op: 'start', m, seed, mode, links, head}   links: the MessagePort the worker's peer connections are made
//                                          through; head: the pieces of the page's head, if it has one
//   {op: 'head', chunk} | {op: 'head', end}   the head's response body as the page reads it: each chunk
//                                          transferred at once, then end: true, or false if it failed
//   {op: 'mode', mode}                    the policy's mode changed
//   {op: 'file', id, path, priority}      → {id, blob} | {id, error}
//   {op: 'serve', id, port, path, start, end, priority}   a service worker's stream: its port, transferred,
//                                          which the worker answers itself (relay.ts); → {id, via} as it goes
// worker → page:
//   {ready: true}                          the worker's script has loaded
//   {stats, report}                        the core's counts (at most every STATS_MS while bytes move, and at
//                                          once with report: true when the core reports: a file completed)
import type { EngineStats, Head, Manifest, Mode, Policy, Via } from './manifest'
import { linkVia, serveLinks, type Connect } from './p2p'
import { relay } from './relay'

// How often a worker's core sends its counts while bytes move: the page's stats() and its last report when it
// goes away are at most this old.
export const STATS_MS = 100
// How long the worker may take to load its script before the page runs the core itself.
const READY_MS = 5000

// CoreStats is what the core counts, with the policy's and the caps' state.
export interface CoreStats extends EngineStats {
  mode: Mode['mode']
  reason: string
  capReason: string
}

// Core is the engine's work, wherever it runs.
export interface Core {
  file(path: string, priority: number): Promise<Blob> // the whole verified file
  serve(port: MessagePort, path: string, start: number, end: number, priority: number, via: (v: Via) => void): void // Engine.serve
  stats(): CoreStats
}

// Hooks are what the core tells the page: bytes moved (the page's reports follow them), or report now.
export interface Hooks {
  moved(): void
  report(): void
}

// RunCore starts the core in this realm; connect makes its peer connections (default: here); head is the page's
// head (p2p/head.ts), if it has one.
export type RunCore = (m: Manifest, policy: Policy, seed: string[] | undefined, hooks: Hooks, connect?: Connect, head?: Head) => Core

type ToWorker =
  | { op: 'start'; m: Manifest; seed?: string[]; mode: Mode; links: MessagePort; head?: number[] }
  | { op: 'head'; chunk?: Uint8Array; end?: boolean }
  | { op: 'mode'; mode: Mode }
  | { op: 'hello' }
  | { op: 'file'; id: number; path: string; priority: number }
  | { op: 'serve'; id: number; port: MessagePort; path: string; start: number; end: number; priority: number }
interface FromWorker {
  ready?: boolean
  stats?: CoreStats
  report?: boolean
  id?: number
  blob?: Blob
  via?: Via
  error?: string
}

// canTransfer says whether this browser can run the core in a worker: it has workers and can transfer a data
// channel (Chromium and Firefox can; a channel must go in the task that made it, before any use). The probe's
// connection gathers nothing; it gets the page's ICE configuration all the same, as every connection does.
export function canTransfer(config: RTCConfiguration): boolean {
  if (typeof Worker !== 'function' || typeof RTCPeerConnection !== 'function') return false
  let pc: RTCPeerConnection | undefined
  const ch = new MessageChannel()
  try {
    pc = new RTCPeerConnection(config)
    const dc = pc.createDataChannel('probe')
    ch.port1.postMessage(dc, [dc])
    return true
  } catch {
    return false
  } finally {
    pc?.close()
    ch.port1.close()
    ch.port2.close()
  }
}

// inWorker starts the core in a dedicated worker running the module at url (the engine's own script), or in
// early, that worker already started by the loader, and resolves once the worker runs it; it rejects if the
// worker cannot start (a CSP's worker-src, a failed load), so that the caller runs the core itself. An early
// worker may have said it is ready before anyone listened: it is asked again (hello).
export function inWorker(url: string, m: Manifest, policy: Policy, seed: string[] | undefined, hooks: Hooks, early?: Worker, head?: Head): Promise<Core> {
  return new Promise((resolve, reject) => {
    let w: Worker
    try {
      w = early ?? new Worker(url, { type: 'module', name: 'swarmgate' })
    } catch (e) {
      return reject(e instanceof Error ? e : new Error(String(e)))
    }
    let last: CoreStats | undefined
    let next = 0
    const pending = new Map<number, (r: FromWorker) => void>()
    const served = new Map<number, (v: Via) => void>() // streams the worker answers, by id
    const post = (msg: ToWorker, transfer: Transferable[] = []) => w.postMessage(msg, transfer)
    let dead: Error | undefined
    const ask = (msg: ToWorker & { id: number }): Promise<FromWorker> =>
      new Promise((res, rej) => {
        if (dead) return rej(dead)
        pending.set(msg.id, (r) => (r.error !== undefined ? rej(new Error(r.error)) : res(r)))
        post(msg)
      })
    const timer = setTimeout(() => fail(new Error('swarmgate: the engine worker did not start')), READY_MS)
    let started = false
    const fail = (e: Error) => {
      clearTimeout(timer)
      w.terminate()
      if (!started) return reject(e)
      dead = e
      // The worker died after it started (it ran out of memory, say): every wait ends, and the page's
      // elements and its service worker take the rest over HTTP. The service worker's streams had their
      // ports in the worker: it is told, so that they do not wait for answers that will not come.
      for (const p of pending.values()) p({ error: e.message })
      pending.clear()
      if (served.size) navigator.serviceWorker?.controller?.postMessage({ swarmgate: 'gone' })
      for (const via of served.values()) via('http')
      served.clear()
    }
    w.onerror = (e) => {
      e.preventDefault()
      fail(new Error(`swarmgate: engine worker: ${e.message || 'failed to load'}`))
    }
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      const r = e.data
      if (r.ready) {
        if (started) return
        started = true
        clearTimeout(timer)
        const ch = new MessageChannel()
        serveLinks(ch.port1)
        post({ op: 'start', m, seed, mode: policy.mode(), links: ch.port2, head: head?.pieces }, [ch.port2])
        // The head's body goes over to the worker chunk by chunk as it comes (a transferred stream would hand
        // over one chunk at a time, each asked for across the threads: its last pieces came hundreds of
        // milliseconds late in bench firstview).
        void head?.body.then(async (body) => {
          const r = body?.getReader()
          try {
            for (let c = await r?.read(); c && !c.done; c = await r?.read()) post({ op: 'head', chunk: c.value }, [c.value.buffer])
            post({ op: 'head', end: !!r })
          } catch {
            post({ op: 'head', end: false })
          }
        })
        policy.watch(() => post({ op: 'mode', mode: policy.mode() }))
        return resolve(core)
      }
      if (r.stats) {
        last = r.stats
        if (r.report) hooks.report()
        else hooks.moved()
        return
      }
      if (r.id === undefined) return
      if (r.via) {
        served.get(r.id)?.(r.via)
        if (r.via === 'end') served.delete(r.id)
        return
      }
      const p = pending.get(r.id)
      pending.delete(r.id)
      p?.(r)
    }
    if (early) post({ op: 'hello' })
    const core: Core = {
      async file(path, priority) {
        const r = await ask({ op: 'file', id: next++, path, priority })
        if (!r.blob) throw new Error('swarmgate: engine worker: no file')
        return r.blob
      },
      serve(port, path, start, end, priority, via) {
        const id = next++
        served.set(id, via)
        post({ op: 'serve', id, port, path, start, end, priority }, [port])
      },
      stats: () => last ?? { ...noCounts(), ...policy.mode(), capReason: '' },
    }
  })
}

// noCounts is a core's counts before anything moved.
export const noCounts = (): EngineStats => ({
  peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0, peers: 0, droppedPeers: 0, files: 0, storedBytes: 0,
})

// inDedicatedWorker says whether this script runs as a dedicated worker (the engine's script started by
// inWorker) rather than on a page.
export function inDedicatedWorker(): boolean {
  const g = globalThis as { DedicatedWorkerGlobalScope?: abstract new () => object }
  return typeof g.DedicatedWorkerGlobalScope === 'function' && globalThis instanceof g.DedicatedWorkerGlobalScope
}

// serveCore is the worker's side: it runs the core with run once the page says start, and answers the page.
export function serveCore(run: RunCore): void {
  const scope = globalThis as unknown as {
    postMessage(m: FromWorker, transfer?: Transferable[]): void
    onmessage: ((e: MessageEvent<ToWorker>) => void) | null
  }
  let core: Core | undefined
  let mode: Mode = { mode: 'p2p', reason: '' }
  let head: ReadableStreamDefaultController<Uint8Array> | undefined
  const watchers: (() => void)[] = []
  const policy: Policy = { mode: () => mode, watch: (f) => void watchers.push(f) }
  let queued = false
  const send = (report: boolean) => {
    queued = false
    if (core) scope.postMessage({ stats: core.stats(), report })
  }
  const hooks: Hooks = {
    moved() {
      if (queued) return
      queued = true
      setTimeout(() => send(false), STATS_MS)
    },
    report: () => send(true),
  }
  const reply = (id: number, p: Promise<FromWorker>) =>
    p.then(
      (r) => scope.postMessage({ ...r, id }),
      (e: unknown) => scope.postMessage({ id, error: e instanceof Error ? e.message : String(e) }),
    )
  scope.onmessage = (e) => {
    const d = e.data
    switch (d.op) {
      case 'hello':
        return scope.postMessage({ ready: true })
      case 'start':
        if (core) return
        mode = d.mode
        core = run(d.m, policy, d.seed, hooks, linkVia(d.links), d.head && {
          pieces: d.head,
          body: Promise.resolve(new ReadableStream<Uint8Array>({ start: (c) => void (head = c) })),
        })
        return
      case 'head':
        // The core may have read all it wanted of it, and cancelled it: the rest has nowhere to go.
        try {
          if (d.chunk) head?.enqueue(d.chunk)
          else if (d.end) head?.close()
          else head?.error(new Error("head: the page could not read the head's response"))
        } catch {}
        return
      case 'mode':
        mode = d.mode
        for (const f of watchers) f()
        return
      case 'file':
        return void reply(d.id, core ? core.file(d.path, d.priority).then((blob) => ({ blob })) : Promise.reject(new Error('not started')))
      case 'serve': {
        const { id, port } = d
        const via = (v: Via) => scope.postMessage({ id, via: v })
        if (core) return core.serve(port, d.path, d.start, d.end, d.priority, via)
        return relay(port, Promise.reject(new Error('not started')), via)
      }
    }
  }
  scope.postMessage({ ready: true })
}
