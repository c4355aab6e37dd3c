// The page-side P2P engine, loaded by the loader only when the page has swarmable assets. It joins the site
// version's swarm through the gateway's tracker with the WebTorrent protocol (so real WebTorrent peers
// interoperate), downloads the files the page needs, verifies every piece against the manifest's torrent,
// drops peers that send bad pieces, falls back to the webseeds (HTTP Range) when the swarm makes no progress
// for a while, and shares what it holds with later visitors while the page stays open.
import WebTorrent from 'webtorrent/dist/webtorrent.min.js'
import type { Engine, EngineStats, Manifest } from './manifest'

function base64Bytes(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export function start(m: Manifest): Engine {
  const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: m.iceServers } }, dht: false, lsd: false, utPex: false })
  const torrent = client.add(base64Bytes(m.torrent), { announce: [m.tracker], deselect: true })
  const stats: EngineStats = { peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0, peers: 0, droppedPeers: 0, files: 0 }
  const reported = { peerBytes: 0, seederBytes: 0, webseedBytes: 0, uploadedBytes: 0 }
  // Tells the gateway what came from where since the last report, for its per-source byte counts.
  const report = () => {
    const delta: Record<string, number> = {}
    let any = false
    for (const k of Object.keys(reported) as (keyof typeof reported)[]) {
      delta[k] = stats[k] - reported[k]
      any ||= delta[k] > 0
      reported[k] = stats[k]
    }
    if (any) navigator.sendBeacon('/.swarm/stats', JSON.stringify(delta))
  }
  addEventListener('pagehide', report)
  const banned = new Set<string>()
  const sources = new Map<number, Set<any>>() // piece index -> wires that sent blocks of it
  let lastProgress = Date.now()
  let webseeded = false

  // The gateway's seeder is the seed of last resort: a piece that an unchoking browser peer holds is not
  // taken from it, so the site's own upload goes to pieces the crowd lacks (and to the first visitors).
  // It hides behind what the other wires hold until the swarm stalls, as the webseeds do.
  const othersHave = (self: any, index: number) => torrent.wires.some((w: any) =>
    w !== self && w.type !== 'webSeed' && !w.peerChoking && w.peerPieces && w.peerPieces.get(index))
  const lastResort = (wire: any) => {
    const bf = wire.peerPieces
    if (!bf || bf.swarmgate) return
    const get = bf.get.bind(bf)
    bf.get = (i: number) => get(i) && (webseeded || !othersHave(wire, i))
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
      lastProgress = Date.now()
      if (web) stats.webseedBytes += n
      else if (seeder) stats.seederBytes += n
      else stats.peerBytes += n
    })
    wire.on('upload', (n: number) => { stats.uploadedBytes += n })
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

  // HTTP fallback: when nothing arrives for fallbackMs while files are wanted, add the webseeds; they then
  // fetch missing pieces by Range alongside any peers.
  // A file that makes no progress even from the webseeds is given up, so the page loads it over HTTP.
  const wanted = new Map<any, (err: Error) => void>() // file -> its url() rejecter
  const giveUpMs = Math.max(10000, 5 * m.fallbackMs)
  const timer = setInterval(() => {
    if (wanted.size === 0) return
    const idle = Date.now() - lastProgress
    if (!webseeded && idle >= m.fallbackMs) {
      webseeded = true
      for (const url of m.webseeds) torrent.addWebSeed(url)
    } else if (webseeded && idle >= giveUpMs) {
      for (const [file, reject] of wanted) {
        file.deselect()
        reject(new Error('swarmgate: no progress from peers or webseeds'))
      }
      wanted.clear()
    }
  }, 250)
  torrent.on('done', () => clearInterval(timer))

  const ready = new Promise<void>(resolve => (torrent.ready ? resolve() : torrent.once('ready', () => resolve())))
  const urls = new Map<string, Promise<string>>()

  return {
    url(path: string): Promise<string> {
      let p = urls.get(path)
      if (p) return p
      const meta = m.files[path]
      if (!meta) return Promise.reject(new Error(`swarmgate: ${path} is not in the swarm`))
      p = ready.then(() => new Promise<string>((resolve, reject) => {
        const file = torrent.files[meta.index]
        if (!file || file.length !== meta.size) return reject(new Error(`swarmgate: manifest and torrent disagree on ${path}`))
        const finish = async () => {
          wanted.delete(file)
          const blob: Blob = await file.blob()
          stats.files++
          report()
          resolve(URL.createObjectURL(new Blob([blob], { type: meta.type })))
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
    stats: () => ({ ...stats }),
  }
}
