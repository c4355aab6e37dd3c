// The page-side P2P engine, loaded by the loader only when the page has swarmable assets. It joins the site
// version's swarm through the gateway's tracker with the WebTorrent protocol (so real WebTorrent peers
// interoperate), downloads the files the page asks for in the order the page needs them, verifies every
// piece against the manifest's torrent, bans peers that send bad pieces, takes pieces from the webseeds
// (HTTP Range) when a file the page waits for is due, and shares what it holds with later visitors while the
// page stays open, as far as the page's policy and the operator's upload caps allow (uploads.ts).
//
// The swarm itself is our own core (src/p2p): it talks to no host the manifest does not name (the manifest's
// tracker alone, no DHT, PEX or local discovery; ICE gets the manifest's servers only, an empty list included,
// so no public STUN server is ever asked).
import type { Engine, EngineReport, Head, Manifest, ManifestFile, Policy, Reader } from './manifest'
import { equal, fromHex, type Info, padBytes, parseInfo, rawValue, sha1, Torrent, type Want } from './p2p'
import { relay } from './relay'
import { ReportSchedule } from './reporting'
import { PageStore } from './store'
import { nextChunk, READ_AHEAD, type Stream as StreamState, streamWants } from './streams'
import { canTransfer, type Core, type CoreStats, type Hooks, inDedicatedWorker, inWorker, noCounts, type RunCore, serveCore } from './thread'
import { gateUploads } from './uploads'

// While files are wanted, the engine asks the gateway this often which webseeds to use: helpers that became
// ready after the page loaded take the place of the site's own webseed (see PathWebseeds).
const WEBSEED_POLL_MS = 2000

// The most memory a page view's pieces may take: a version up to this size is kept in memory whole; beyond
// it, pieces written to the browser's storage leave memory (store.ts).
const MAX_MEMORY_BYTES = 128 << 20

// How often the engine moves deadlines, polls for webseeds and checks for a file to give up on.
const TICK_MS = 250

function base64Bytes(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

// What an engine started by a loader that predates policies goes by: the operator's switch alone.
const operatorOnly = (m: Manifest): Policy => ({
  mode: () => (m.uploads === 'off' ? { mode: 'download-only', reason: 'operator' } : { mode: 'p2p', reason: '' }),
  watch: () => {},
})

// A file the page waits for.
interface Wanted {
  start: number
  end: number
  priority: number
  asked: number // Date.now() when the page asked
  type: string
  resolve(file: Blob): void
  reject(err: Error): void
}

// A byte range a service worker streams from the engine (Engine.serve), as streams.ts sees it, and its reader.
interface Stream extends StreamState {
  wake?: () => void
  failed?: Error
}

const optedOut = () => new Error('swarmgate: the visitor opted out')

// Seed-only mode (a page in normal times, after it loaded): the verified pieces of the files the page already
// holds, read from the browser's HTTP cache and never from the network ('only-if-cached' answers a miss with
// an error and needs 'same-origin'). A file that is missing, partial (a media Range), or of another size is
// skipped. Files start on piece boundaries and BEP 47 padding is zeros, so a piece is whole once every non-pad
// file it touches is held; each is checked against the info's SHA-1 before it counts.
async function cachedPieces(m: Manifest, info: Info, paths: string[]): Promise<Map<number, Uint8Array>> {
  const files = new Map<number, Uint8Array>() // by index in the torrent's file list
  for (const path of paths) {
    const meta = m.files[path]
    const f = meta && info.files[meta.index]
    if (!f || f.length !== meta.size || f.offset !== meta.offset) continue
    try {
      const res = await fetch(path, { cache: 'only-if-cached', mode: 'same-origin' })
      if (res.status !== 200) continue
      const b = new Uint8Array(await res.arrayBuffer())
      if (b.length === f.length) files.set(meta.index, b)
    } catch {
      // not in the cache: skipped, the network is never asked
    }
  }
  const pl = info.pieceLength
  const out = new Map<number, Uint8Array>()
  const todo = new Set<number>()
  for (const fi of files.keys()) {
    const f = info.files[fi]
    for (let i = Math.floor(f.offset / pl); i * pl < f.offset + f.length; i++) todo.add(i)
  }
  next: for (const i of todo) {
    const s = i * pl
    const piece = new Uint8Array(Math.min(pl, info.length - s))
    for (const [fi, f] of info.files.entries()) {
      const a = Math.max(s, f.offset)
      const b = Math.min(s + piece.length, f.offset + f.length)
      if (a >= b || f.pad) continue
      const data = files.get(fi)
      if (!data) continue next // a file this piece shares is not held
      piece.set(data.subarray(a - f.offset, b - f.offset), a - s)
    }
    if (equal(await sha1(piece), info.pieces.subarray(20 * i, 20 * i + 20))) out.set(i, piece)
  }
  return out
}

// Outside a crowd the engine joins the swarm (its tracker, offers, peer connections) SIGNAL_DELAY_MS after it
// starts. Meanwhile what the first view needs comes from the page's head and the site's webseed, idle then (a
// waiting stream's piece is due at once before any peer): WebRTC's set-up and its first megabytes took CPU that
// the first view waited for. The swarm's deadlines count from when it joins. In bench firstview (2026-12-05,
// two alternated rounds) a lone visitor's first frame came at 1.12x and 1.18x direct against 1.30x, and with a
// peer on the page at 1.13x and 1.25x against 1.55x and 1.31x; the swarm still gave 5.2 to 5.4 of the page's
// 8.2 MB. Waiting for the page's load event instead gained nothing: with its elements held for the swarm, the
// event comes before they load. In a crowd the swarm is the point, and it joins at once.
const SIGNAL_DELAY_MS = 1000

// run is the engine's core (thread.ts's RunCore): on the page, or in the worker. With seed (URL paths of
// files the page already loaded over HTTP) it runs in seed-only mode: it downloads nothing, and joins the
// swarm only as a seed of the pieces it verified from the browser's HTTP cache (cachedPieces); uploads go
// through the same gate and caps.
const run: RunCore = (m, policy, seed, hooks, connect, head) => {
  const stats = noCounts()

  const seeder = (m.seederPeerId ?? '').toLowerCase()
  const wanted = new Map<string, Wanted>() // by path
  const streams = new Set<Stream>()
  // Files a stream was opened on are wanted whole, at priority 0: after every stream's read-ahead window and
  // every file the page waits for of a higher priority (a viewport video's tail after the images below it),
  // in the swarm's order, even once the response is cancelled (a video reads ahead, pauses, seeks): the page
  // then holds what it can serve later visitors, and its next Range is likely there already.
  const whole = new Map<string, Want>()
  let torrent: Torrent | undefined
  let store: PageStore | undefined
  let held = 0 // bytes of the site in verified pieces, padding left out
  let lastProgress = Date.now() // bytes from any source
  let swarmProgress = lastProgress // bytes from a peer (the gateway's seeder included)
  let swarmed = false // a peer has sent bytes
  let stopped = false // the visitor opted out (policy.watch below)
  // Whether the webseeds are in use: from the start when the gateway says they have capacity to spare (they
  // then take any piece no source is fetching, webseedMode 'all'), else once a file the page waits for has
  // been due (they take its due pieces, and only those: when the swarm makes progress again, the deadlines
  // move on and the webseeds take no more).
  let webseeded = !!m.webseedsNow
  // A file or stream with no progress at all for this long is given up (the page or the worker takes it over
  // HTTP); in a crowd the site's link is full, and HTTP would only compete for it, so the engine waits longer.
  const crowded = m.mode === 'crowd' || m.mode === 'ending'
  const giveUpMs = Math.max(crowded ? 30000 : 10000, 5 * m.fallbackMs)
  let webseeds = m.webseeds
  const gate = gateUploads(m, policy, () => stats.uploadedBytes, () => held, () => torrent?.rechoke())
  // When the torrent joins the swarm outside a crowd (SIGNAL_DELAY_MS; undefined: at once): the swarm's
  // deadlines start then.
  const signalled = crowded || seed ? undefined : new Promise<void>((r) => setTimeout(r, SIGNAL_DELAY_MS)).then(() => {
    swarmProgress = Math.max(swarmProgress, Date.now())
    retarget()
  })

  // A file's deadline is fallbackMs after the page asked for it, moved on while the swarm makes progress:
  // once it passes, a piece of it that no peer is fetching goes to a webseed, and the gateway's seeder
  // (otherwise a peer of last resort, behind the visitors' browsers) may serve it.
  // A stream's read-ahead window is due the same way, from when its reader began waiting (streams.ts).
  const due = (w: Wanted) => Math.max(w.asked, swarmProgress) + m.fallbackMs
  const streamDue = (waiting: number) => Math.max(waiting, swarmProgress) + m.fallbackMs
  const ranges = (): Want[] => {
    const out: Want[] = [...wanted.values()].map((w) => ({ start: w.start, end: w.end, priority: w.priority, deadline: due(w) }))
    const c = { crowded, swarmed, due: streamDue }
    for (const s of streams) out.push(...streamWants(s, c))
    return out.concat([...whole.values()])
  }
  let sent = 0 // the earliest deadline last given to the core
  const retarget = () => {
    const r = ranges()
    sent = Math.min(...r.map((w) => w.deadline ?? Infinity))
    torrent?.want(r)
  }

  const pl = Math.max(m.pieceLength, 1)
  const complete = (t: Torrent, w: { start: number; end: number }) => {
    for (let i = Math.floor(w.start / pl); i * pl < w.end; i++) if (!t.have.get(i)) return false
    return true
  }
  const settled = () => {
    if (wanted.size === 0 && streams.size === 0 && whole.size === 0) void store?.flush() // the page has what it asked for
  }
  const finish = async (path: string, w: Wanted) => {
    wanted.delete(path)
    retarget()
    settled()
    const blob = await store!.blob(w.start, w.end - w.start, w.type)
    stats.files++
    hooks.report()
    w.resolve(blob)
  }

  const ready: Promise<Torrent> = (async () => {
    const raw = base64Bytes(m.torrent)
    const info = rawValue(raw, 'info')
    if (!info) throw new Error("swarmgate: the manifest's torrent has no info dictionary")
    const parsed = parseInfo(info)
    const s = (store = new PageStore(m.infoHash, parsed, MAX_MEMORY_BYTES, (n) => {
      stats.storedBytes += n
      hooks.moved()
    }))
    // An earlier view's pieces, verified. A page view does not wait for them to start signalling (the tracker's
    // socket and ICE gathering take a few hundred milliseconds before the first byte, reading the store tens).
    let have = s.load()
    if (seed) {
      if (!equal(await sha1(info), fromHex(m.infoHash))) throw new Error('swarmgate: info dictionary does not match the infohash')
      const pieces = await have
      for (const [i, piece] of await cachedPieces(m, parsed, seed)) {
        if (pieces.includes(i)) continue
        s.put(i, piece)
        pieces.push(i)
      }
      if (pieces.length === 0) throw new Error('swarmgate: nothing to seed')
      have = Promise.resolve(pieces)
      webseeds = []
    }
    if (stopped) throw optedOut()
    // Webseeds take due pieces, or every piece once helpers with capacity to spare are ready.
    const t = await Torrent.create({
      info, infoHash: fromHex(m.infoHash), trackers: [m.tracker], rtc: { iceServers: m.iceServers ?? [] },
      webseeds, store: s, have, wantedOnly: true, want: ranges(), webseedLeadMs: 0, head: seed ? undefined : head,
      webseedMode: webseeded ? 'all' : 'due',
      upload: gate.allow, lastResort: (id) => id === seeder, connect,
      signal: signalled,
    })
    if (stopped) {
      t.destroy()
      throw optedOut()
    }
    torrent = t
    const size = (i: number) => Math.min(parsed.pieceLength, parsed.length - i * parsed.pieceLength)
    t.on('download', ({ bytes, peer }) => {
      lastProgress = Date.now()
      if (peer !== undefined) swarmProgress = lastProgress
      if (peer !== undefined && !swarmed) {
        swarmed = true
        retarget() // the waited-for pieces are no longer due at once
      }
      hooks.moved()
      if (peer === undefined) stats.webseedBytes += bytes
      else if (peer === seeder) stats.seederBytes += bytes
      else stats.peerBytes += bytes
    })
    t.on('upload', (n) => {
      stats.uploadedBytes += n
      hooks.moved()
    })
    t.on('peer', ({ open }) => {
      if (open) stats.peers++
      hooks.moved()
    })
    t.on('ban', () => {
      stats.droppedPeers++
      hooks.moved()
    })
    // Pieces now held: one verified from a source, or an earlier view's, read back from the store.
    const gained = (pieces: number[]) => {
      for (const i of pieces) held += size(i) - padBytes(t.info, i)
      gate.verified()
      for (const [path, w] of wanted) if (complete(t, w)) void finish(path, w).catch(w.reject)
      for (const s of streams) if (s.wake && pieces.includes(Math.floor(s.pos / pl))) s.wake()
      for (const [path, w] of whole) {
        if (complete(t, w)) {
          whole.delete(path)
          settled()
        }
      }
    }
    t.on('piece', ({ index }) => gained([index]))
    void t.loaded.then(() => have).then((h) => h.length > 0 && gained(h), () => {}) // a failed read: the torrent warned
    return t
  })()
  ready.catch(() => {}) // seed-only with nothing held, or opted out: nothing to tell the console

  // Every TICK_MS while files are wanted: deadlines follow progress, the gateway is asked for webseeds, and
  // files that make no progress even from the webseeds are given up (the page loads them over HTTP).
  let polling = false
  let lastPoll = Date.now()
  const poll = async () => {
    polling = true
    lastPoll = Date.now()
    try {
      const res = await fetch(`/.swarm/webseeds?version=${encodeURIComponent(m.version)}`, { cache: 'no-store' })
      if (!res.ok) return
      const w: { version: string; webseeds: string[]; now?: boolean } = await res.json()
      if (w.version !== m.version || w.webseeds.length === 0 || stopped || !torrent) return
      if (!w.now && !webseeded) return // the site's own webseed waits for a file to be due, as before
      // Webseeds with capacity to spare (helpers in a crowd) replace the ones in use: the site's own webseed
      // then stops competing for the site's full link. When they go (the crowd is over and helpers are
      // released), an engine that was using them goes back to the site's own.
      for (const url of webseeds) if (!w.webseeds.includes(url)) torrent.removeWebseed(url)
      webseeds = w.webseeds
      for (const url of webseeds) torrent.addWebseed(url)
      webseeded = true
      if (w.now) torrent.webseedMode = 'all' // and it stays so when they go: the site's own takes their place
    } catch {
      // The next poll tries again; the swarm and the fallbacks go on meanwhile.
    } finally {
      polling = false
    }
  }
  const stalled = () => new Error('swarmgate: no progress from peers or webseeds')
  const timer = setInterval(() => {
    if ((wanted.size === 0 && streams.size === 0 && whole.size === 0) || !torrent) return
    if (!polling && Date.now() - lastPoll >= WEBSEED_POLL_MS) void poll()
    const now = Date.now()
    if (now >= sent) webseeded = true
    if (webseeded && now - lastProgress >= giveUpMs) {
      for (const w of wanted.values()) w.reject(stalled())
      wanted.clear()
      retarget()
      void store?.flush() // the files that did complete are kept for a later view
    }
    // A stream whose reader has waited that long with no progress fails: the service worker takes the rest
    // over HTTP. A reader that is not waiting (a video's buffer is full) is not stalled.
    for (const s of streams) {
      if (webseeded && s.waiting && now - Math.max(lastProgress, s.waiting) >= giveUpMs) {
        s.failed = stalled()
        s.wake?.()
      }
    }
    // Progress moved the deadlines on: tell the core (not on every block; a tick's drift is nothing).
    const next = Math.min(...[...wanted.values()].map(due), ...[...streams].filter((s) => s.waiting).map((s) => streamDue(s.waiting)))
    if (next - sent >= TICK_MS) retarget()
  }, TICK_MS)

  // The visitor opted out while the page was open: leave the swarm; files not yet complete load over HTTP.
  policy.watch(() => {
    if (stopped || policy.mode().mode !== 'off') return
    stopped = true
    clearInterval(timer)
    for (const w of wanted.values()) w.reject(optedOut())
    wanted.clear()
    for (const s of streams) s.wake?.()
    hooks.report()
    torrent?.destroy()
  })

  // open is a stream's reader (Engine.serve).
  const open = (path: string, start: number, end: number, priority: number): Reader => {
    const meta = checkOpen(m, seed, path, start, end)
    const s: Stream = { pos: meta.offset + start, end: meta.offset + end, priority, waiting: 0, image: meta.type.startsWith('image/') }
    const file = { start: meta.offset, end: meta.offset + meta.size, priority: 0 }
    let closed = false
    const close = () => {
      if (closed) return
      closed = true
      streams.delete(s)
      s.wake?.()
      retarget()
      settled()
    }
    return {
      close,
      async next(): Promise<Uint8Array | null> {
        const t = await ready
        if (closed) throw new Error('swarmgate: stream closed')
        if (!streams.has(s) && s.pos < s.end) {
          streams.add(s)
          if (!whole.has(path) && !complete(t, file)) whole.set(path, file)
          retarget()
        }
        for (;;) {
          if (stopped) throw optedOut()
          if (s.failed) throw s.failed
          if (closed) throw new Error('swarmgate: stream closed')
          if (s.pos >= s.end) {
            close()
            return null
          }
          const chunk = await nextChunk(s, pl, (i) => t.have.get(i), (i) => store!.get(i))
          if (chunk) {
            const moved = s.waiting !== 0
            s.pos += chunk.length
            s.waiting = 0
            if (moved || s.pos % READ_AHEAD < chunk.length) retarget() // the window moves on
            return chunk
          }
          s.waiting = Date.now()
          retarget()
          await new Promise<void>((r) => (s.wake = r))
          s.wake = undefined
        }
      },
    }
  }

  const files = new Map<string, Promise<Blob>>()
  return {
    file(path: string, priority: number): Promise<Blob> {
      let p = files.get(path)
      if (p) return p
      if (stopped) return Promise.reject(optedOut())
      if (seed) return Promise.reject(new Error('swarmgate: seed-only: nothing is downloaded'))
      const meta = m.files[path]
      if (!meta) return Promise.reject(new Error(`swarmgate: ${path} is not in the swarm`))
      p = ready.then((t) => new Promise<Blob>((resolve, reject) => {
        const f = t.info.files[meta.index]
        if (!f || f.length !== meta.size || f.offset !== meta.offset) {
          return reject(new Error(`swarmgate: manifest and torrent disagree on ${path}`))
        }
        if (stopped) return reject(optedOut())
        const w: Wanted = { start: meta.offset, end: meta.offset + meta.size, priority, asked: Date.now(), type: meta.type,
          resolve, reject }
        if (complete(t, w)) return void finish(path, w).catch(reject)
        wanted.set(path, w)
        retarget()
      }))
      files.set(path, p)
      return p
    },
    serve(port, path, start, end, priority, via) {
      relay(port, Promise.resolve().then(() => open(path, start, end, priority)), via)
    },
    stats: () => ({ ...stats, ...gate.mode(), capReason: gate.capReason() }),
  }
}

// checkOpen throws at once for a stream the engine cannot give (Engine.serve), and returns the file's entry.
function checkOpen(m: Manifest, seed: string[] | undefined, path: string, start: number, end: number): ManifestFile {
  const meta = m.files[path]
  if (seed) throw new Error('swarmgate: seed-only: nothing is downloaded')
  if (!meta) throw new Error(`swarmgate: ${path} is not in the swarm`)
  if (!(start >= 0 && start <= end && end <= meta.size)) throw new Error(`swarmgate: ${path}: no bytes ${start}-${end}`)
  return meta
}

// start runs the engine for the page (the loader's entry point): its core in a worker where the browser can
// transfer data channels and the worker starts (thread.ts; early is one the loader started already), else
// here. See run for seed; head is the page's head (p2p/head.ts), if it has one.
export function start(m: Manifest, policy: Policy = operatorOnly(m), seed?: string[], early?: Worker, head?: Head): Engine {
  let core: Core | undefined
  const reported = { peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0 }
  // Tells the gateway what came from where since the last report, for its per-source byte counts.
  const report = () => {
    schedule.sent()
    if (!core) return
    const stats = core.stats()
    const delta: Record<string, number | string> = {}
    let any = false
    for (const k of Object.keys(reported) as (keyof typeof reported)[]) {
      const d = stats[k] - reported[k]
      delta[k] = d
      any ||= d > 0
      reported[k] = stats[k]
    }
    delta.token = m.reportToken
    if (any) navigator.sendBeacon('/.swarm/stats', JSON.stringify(delta))
  }
  const schedule = new ReportSchedule(report)
  addEventListener('pagehide', report)
  const hooks: Hooks = { moved: () => schedule.moved(), report }

  let thread: 'worker' | 'page' = 'page'
  const here = () => (core = run(m, policy, seed, hooks, undefined, head))
  const transfer = canTransfer({ iceServers: m.iceServers ?? [] })
  if (!transfer) early?.terminate()
  const ready: Promise<Core> = transfer
    ? inWorker(import.meta.url, m, policy, seed, hooks, early, head).then(
        (c) => ((thread = 'worker'), (core = c)),
        () => here(),
      )
    : Promise.resolve(here())

  const urls = new Map<string, Promise<string>>()
  return {
    url(path: string, priority = 0): Promise<string> {
      let p = urls.get(path)
      if (!p) urls.set(path, (p = ready.then((c) => c.file(path, priority)).then((b) => URL.createObjectURL(b))))
      return p
    },
    serve(port, path, start, end, priority, via) {
      checkOpen(m, seed, path, start, end)
      void ready.then(
        (c) => c.serve(port, path, start, end, priority, via),
        (err: unknown) => relay(port, Promise.reject(err), via), // the service worker then takes it over HTTP
      )
    },
    stats: () => {
      const s: CoreStats = core?.stats() ?? { ...noCounts(), ...policy.mode(), capReason: '' }
      // The mode is the page's policy's own, at once: a worker's counts come up to STATS_MS late.
      const { mode: _m, reason: _r, capReason, ...counts } = s
      const { mode, reason } = policy.mode()
      const hidden = { mode, reason, uploadCapped: capReason !== '', capReason, thread }
      const out = { ...counts }
      for (const [k, value] of Object.entries(hidden)) Object.defineProperty(out, k, { value, enumerable: false })
      return out as EngineReport
    },
  }
}

// The engine's script is also the worker's (thread.ts's inWorker starts it so).
if (inDedicatedWorker()) serveCore(run)
