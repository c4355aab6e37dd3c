// The page-side P2P engine, loaded by the loader only when the page has swarmable assets. It joins the site
// version's swarm through the gateway's tracker with the WebTorrent protocol (so real WebTorrent peers
// interoperate), downloads the files the page needs, verifies every piece against the manifest's torrent,
// drops peers that send bad pieces, falls back to the webseeds (HTTP Range) when the swarm makes no progress
// for a while, and shares what it holds with later visitors while the page stays open, as far as the page's
// policy and the operator's upload caps allow (uploads.ts).
//
// It talks to no host the manifest does not name: the torrent is marked private so that WebTorrent adds no
// tracker of its own (nor DHT, PEX or local discovery), and ICE gets the manifest's servers only, an empty
// list included, since WebTorrent's WebRTC layer would otherwise use public STUN servers (Google's, Twilio's).
import WebTorrent from 'webtorrent/dist/webtorrent.min.js'
import FSAChunkStore from 'fsa-chunk-store'
import type { Engine, EngineReport, EngineStats, Manifest, Policy } from './manifest'
import { PageStore } from './store'
import { gateUploads } from './uploads'

// Bytes that move after the last report (endgame duplicates arriving after a file completed, uploads to later
// visitors) are reported once traffic has paused this long, not only when the page goes away.
const REPORT_IDLE_MS = 1000

// While files are wanted, the engine asks the gateway this often which webseeds to use: helpers that became
// ready after the page loaded take the place of the site's own webseed (see PathWebseeds).
const WEBSEED_POLL_MS = 2000

// A version larger than the engine keeps in memory (MAX_CACHE_BYTES, see store.ts for the others) goes to
// WebTorrent's browser store (fsa-chunk-store, in the origin-private file system), which writes every piece
// twice: as a file of its own, and again into a copy of each torrent file it spans. The engine never reads the
// second copy (pages get their files from the pieces, and a later page view reads the pieces back), while the
// store's writes were about a fifth of a visitor's renderer CPU in a profiled crowd: this store keeps the
// pieces alone.
class PieceStore extends FSAChunkStore {
  private readonly onStored: (bytes: number) => void

  constructor(chunkLength: number, opts: Record<string, unknown>) {
    super(chunkLength, { ...opts, files: undefined })
    this.onStored = (opts.onStored as (bytes: number) => void) ?? (() => {})
  }

  put(index: number, buf: Uint8Array, cb: (err: Error | null) => void = () => {}) {
    return super.put(index, buf, (err: Error | null) => {
      if (!err) this.onStored(buf.length)
      cb(err)
    })
  }
}

// The most memory a page view's pieces may take: a version up to this size is kept in memory whole
// (PageStore); a larger one in fsa-chunk-store, behind a memory cache of this size.
const MAX_CACHE_BYTES = 128 << 20

// A BitTorrent block: what a piece is requested and stored in (torrent-piece's BLOCK_LENGTH).
const BLOCK_LENGTH = 1 << 14

// The gateway pads every file but the last to a piece boundary (BEP 47), so that a file's pieces are its own.
// The padding is zeros, hashed with the piece: there is no reason to move it over the network, and in the crowd
// benchmark it was about a tenth of what each visitor received. The engine fills it in itself: before a piece
// is first requested, its blocks that lie wholly in padding are set to zeros and never reserved, and a webseed's
// request for the rest of a piece stops at the last block that holds file data. (The one block that holds both
// a file's end and the start of its padding still travels whole.) webtorrent has no option for this; its
// pieces are patched one by one, where _request is about to reserve a block of them.
//
// It returns how many bytes of padding piece index holds (0 for most pieces), so that what a page view holds of
// the site can be counted without it.
function skipPadding(torrent: any): (index: number) => number {
  let dataIn: Map<number, number> | undefined // index of a piece that ends in padding -> bytes of file data in it
  const padded = () => {
    const m = new Map<number, number>()
    for (const f of torrent.files) {
      if (!/(^|\/)\.pad\/\d+$/.test(f.path) || f.length === 0) continue
      const index = Math.floor(f.offset / torrent.pieceLength)
      const data = f.offset - index * torrent.pieceLength
      if (data > 0 && f.offset + f.length === (index + 1) * torrent.pieceLength) m.set(index, data)
    }
    return m
  }
  const patch = (piece: any, data: number) => {
    const first = Math.ceil(data / BLOCK_LENGTH) // the first block without file data
    if (piece.swarmgatePadding || first >= piece._chunks) return
    piece.swarmgatePadding = true
    for (let i = first; i < piece._chunks; i++) piece.set(i, new Uint8Array(piece.chunkLength(i)), 'padding')
    const reserve = piece.reserve.bind(piece)
    const reserveRemaining = piece.reserveRemaining.bind(piece)
    piece.reserve = () => {
      const i = reserve()
      return i >= first ? -1 : i
    }
    piece.reserveRemaining = () => {
      const i = reserveRemaining()
      return i >= first ? -1 : i
    }
    piece.chunkLengthRemaining = (i: number) => first * BLOCK_LENGTH - i * BLOCK_LENGTH
  }
  const request = torrent._request.bind(torrent)
  torrent._request = (wire: any, index: number, hotswap: boolean) => {
    dataIn ??= padded() // requests begin once the metadata is in
    const data = dataIn.get(index)
    const piece = torrent.pieces[index]
    if (data !== undefined && piece) patch(piece, data) // a piece that failed verification is a new one
    return request(wire, index, hotswap)
  }
  return (index: number) => {
    if (!dataIn && torrent.files.length === 0) return 0 // no metadata yet
    dataIn ??= padded()
    const data = dataIn.get(index)
    return data === undefined ? 0 : torrent.pieceLength - data // a padded piece is never the last
  }
}

// held is what the torrent holds of the site: the bytes of its verified pieces, padding left out.
function held(torrent: any, padding: (index: number) => number): number {
  if (!torrent.bitfield) return 0
  let n = 0
  const last = torrent.pieces.length - 1
  for (let i = 0; i <= last; i++) {
    if (torrent.bitfield.get(i)) n += (i === last ? torrent.lastPieceLength : torrent.pieceLength) - padding(i)
  }
  return n
}

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

export function start(m: Manifest, policy: Policy = operatorOnly(m)): Engine {
  const client = new WebTorrent({
    tracker: { rtcConfig: { iceServers: m.iceServers ?? [] } },
    dht: false, lsd: false, utPex: false, natUpnp: false, natPmp: false,
  })
  // Rarest first: the page uses a file only once it is complete, so the order of its pieces does not matter to
  // it, while visitors that arrive together then hold different pieces and trade them, instead of all taking
  // the same next piece from the first visitor (whose upload caps would leave the rest to the site).
  // A page's files are small next to memory: the store holds every piece in memory (up to MAX_CACHE_BYTES), so
  // serving later visitors does not read pieces back from the browser's storage, which took about a tenth of a
  // visitor's CPU in a profiled crowd, and the page view's pieces are written to storage once it is complete.
  const pieceLength = Math.max(m.pieceLength, 1)
  const length = Object.values(m.files).reduce((n, f) => Math.max(n, f.offset + f.size), 0)
  const stats: EngineStats = {
    peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0, peers: 0, droppedPeers: 0, files: 0, storedBytes: 0,
  }
  let pageStore: PageStore | undefined
  const storeOpts = { onStore: (s: PageStore) => (pageStore = s), onStored: (n: number) => (stats.storedBytes += n) }
  const store = length <= MAX_CACHE_BYTES
    ? { store: PageStore, storeCacheSlots: 0, storeOpts }
    : { store: PieceStore, storeCacheSlots: Math.floor(MAX_CACHE_BYTES / pieceLength), storeOpts }
  const torrent = client.add(base64Bytes(m.torrent), {
    announce: [m.tracker], deselect: true, private: true, strategy: 'rarest', ...store,
  })
  const padding = skipPadding(torrent)
  const reported = { peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0 }
  // Tells the gateway what came from where since the last report, for its per-source byte counts.
  const report = () => {
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
  addEventListener('pagehide', report)
  let idle: ReturnType<typeof setTimeout> | undefined
  const reportWhenIdle = () => {
    clearTimeout(idle)
    idle = setTimeout(report, REPORT_IDLE_MS)
  }
  const gate = gateUploads(torrent, m, policy, () => stats.uploadedBytes, () => held(torrent, padding))
  const banned = new Set<string>()
  const sources = new Map<number, Set<any>>() // piece index -> wires that sent blocks of it
  let lastProgress = Date.now()
  let webseeded = false
  let stopped = false // the visitor opted out (policy.watch below)
  let stalled = false // the swarm made no progress for fallbackMs: the seeder serves every piece it holds

  // The gateway's seeder is the seed of last resort: a piece that an unchoking browser peer holds is not
  // taken from it, so the site's own upload goes to pieces the crowd lacks (and to the first visitors).
  // It hides behind what the other wires hold until the swarm stalls, as the webseeds do.
  const othersHave = (self: any, index: number) => torrent.wires.some((w: any) =>
    w !== self && w.type !== 'webSeed' && !w.peerChoking && w.peerPieces && w.peerPieces.get(index))
  const lastResort = (wire: any) => {
    const bf = wire.peerPieces
    if (!bf || bf.swarmgate) return
    const get = bf.get.bind(bf)
    bf.get = (i: number) => get(i) && (stalled || !othersHave(wire, i))
    bf.swarmgate = true
  }

  torrent.on('wire', (wire: any) => {
    if (banned.has(wire.peerId)) return wire.destroy()
    const web = wire.type === 'webSeed'
    const seeder = !web && !!m.seederPeerId && wire.peerId === m.seederPeerId
    if (seeder) {
      lastResort(wire)
      for (const ev of ['bitfield', 'have-all']) wire.on(ev, () => lastResort(wire))
    }
    if (!web) stats.peers++
    wire.on('download', (n: number) => {
      reportWhenIdle()
      lastProgress = Date.now()
      if (web) stats.webseedBytes += n
      else if (seeder) stats.seederBytes += n
      else stats.peerBytes += n
    })
    wire.on('upload', (n: number) => {
      stats.uploadedBytes += n
      reportWhenIdle()
    })
    wire.on('piece', (index: number) => {
      let s = sources.get(index)
      if (!s) sources.set(index, (s = new Set()))
      s.add(wire)
    })
  })
  torrent.on('verified', (index: number) => sources.delete(index))
  torrent.on('warning', (err: Error) => {
    const bad = /Piece (\d+) failed verification/.exec(String(err && err.message))
    if (!bad) return
    const index = Number(bad[1])
    for (const wire of sources.get(index) ?? []) {
      if (wire.type === 'webSeed') continue
      if (!banned.has(wire.peerId)) stats.droppedPeers++
      banned.add(wire.peerId)
      wire.destroy()
    }
    sources.delete(index)
  })

  // HTTP fallback: when nothing arrives for fallbackMs while files are wanted, add the webseeds (at once when
  // the gateway says they have capacity to spare); they then fetch missing pieces by Range alongside any peers.
  // A file that makes no progress even from the webseeds is given up, so the page loads it over HTTP.
  const wanted = new Map<any, (err: Error) => void>() // file -> its url() rejecter
  const giveUpMs = Math.max(10000, 5 * m.fallbackMs)
  let webseeds = m.webseeds
  const added = new Set<string>()
  const addWebseeds = () => {
    for (const url of webseeds) {
      if (!added.has(url)) torrent.addWebSeed(url)
      added.add(url)
    }
  }
  const useNow = () => {
    webseeded = true
    if (torrent.ready) addWebseeds()
    else torrent.once('ready', addWebseeds)
  }
  if (m.webseedsNow && webseeds.length > 0) useNow()
  // Webseeds with capacity to spare (helpers in a crowd) that appear while files are wanted replace the ones
  // in use: the site's own webseed then stops competing for the site's full link. When they go (the crowd is
  // over and helpers are released), an engine that was using them goes back to the site's own.
  let polling = false
  let lastPoll = Date.now()
  const poll = async () => {
    polling = true
    lastPoll = Date.now()
    try {
      const res = await fetch(`/.swarm/webseeds?version=${encodeURIComponent(m.version)}`, { cache: 'no-store' })
      if (!res.ok) return
      const w: { version: string, webseeds: string[], now?: boolean } = await res.json()
      if (w.version !== m.version || w.webseeds.length === 0 || stopped) return
      if (!w.now && !webseeded) return // the site's own webseed waits for a stall, as before
      for (const url of added) {
        if (!w.webseeds.includes(url)) {
          torrent.removePeer(url)
          added.delete(url)
        }
      }
      webseeds = w.webseeds
      useNow()
    } catch {
      // The next poll tries again; the swarm and the fallbacks go on meanwhile.
    } finally {
      polling = false
    }
  }
  const timer = setInterval(() => {
    if (wanted.size === 0) return
    if (!polling && Date.now() - lastPoll >= WEBSEED_POLL_MS) void poll()
    const idle = Date.now() - lastProgress
    if (idle >= m.fallbackMs) stalled = true
    if (!webseeded && idle >= m.fallbackMs) {
      webseeded = true
      addWebseeds()
    } else if (webseeded && idle >= giveUpMs) {
      for (const [file, reject] of wanted) {
        file.deselect()
        reject(new Error('swarmgate: no progress from peers or webseeds'))
      }
      wanted.clear()
      void pageStore?.flush() // the files that did complete are kept for a later view
    }
  }, 250)
  torrent.on('done', () => clearInterval(timer))

  // The visitor opted out while the page was open: leave the swarm; files not yet complete load over HTTP.
  policy.watch(() => {
    if (stopped || policy.mode().mode !== 'off') return
    stopped = true
    clearInterval(timer)
    for (const reject of wanted.values()) reject(new Error('swarmgate: the visitor opted out'))
    wanted.clear()
    report()
    client.destroy()
  })

  const ready = new Promise<void>(resolve => (torrent.ready ? resolve() : torrent.once('ready', () => resolve())))
  const urls = new Map<string, Promise<string>>()

  return {
    url(path: string): Promise<string> {
      let p = urls.get(path)
      if (p) return p
      if (stopped) return Promise.reject(new Error('swarmgate: the visitor opted out'))
      const meta = m.files[path]
      if (!meta) return Promise.reject(new Error(`swarmgate: ${path} is not in the swarm`))
      p = ready.then(() => new Promise<string>((resolve, reject) => {
        const file = torrent.files[meta.index]
        if (!file || file.length !== meta.size) return reject(new Error(`swarmgate: manifest and torrent disagree on ${path}`))
        const finish = async () => {
          wanted.delete(file)
          if (wanted.size === 0) void pageStore?.flush() // the page has what it asked for
          // From the pieces in memory when they all are (WebTorrent's file.blob() reads them through the store
          // one by one and copies them twice), else through WebTorrent.
          const blob = pageStore?.blob(file.offset, file.length, meta.type) ??
            new Blob([await file.blob()], { type: meta.type })
          stats.files++
          report()
          resolve(URL.createObjectURL(blob))
        }
        if (file.done) return void finish().catch(reject)
        wanted.set(file, reject)
        lastProgress = Date.now()
        file.once('done', () => void finish().catch(reject))
        file.select()
      }))
      urls.set(path, p)
      return p
    },
    stats: () => {
      const { mode, reason } = gate.mode()
      const capReason = gate.capReason()
      const hidden = { mode, reason, uploadCapped: capReason !== '', capReason }
      const out = { ...stats }
      for (const [k, value] of Object.entries(hidden)) Object.defineProperty(out, k, { value, enumerable: false })
      return out as EngineReport
    },
  }
}
