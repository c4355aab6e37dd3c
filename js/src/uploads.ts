// The engine's upload gate: whether this page view serves other peers. It serves no one while the page's
// policy says download-only, and stops serving before an operator's cap would be passed: the ceiling (bytes
// per page view) and the ratio (a multiple of the verified bytes of the site the page view holds, held(): what
// it downloaded, plus what it kept in its browser's storage from an earlier view of the same site version; a
// returning visitor that downloaded nothing this time can still seed what it holds).
//
// Serving is controlled by choking, the BitTorrent way: a peer that we choke may not request, and choking
// drops its queued requests before any block of them is sent. WebTorrent unchokes wires on its own (when a
// peer becomes interested, and every rechoke), so each wire's unchoke is guarded.
import type { Manifest, Mode, Policy } from './manifest'

export interface UploadGate {
  mode(): Mode
  capReason(): string // "ratio" or "ceiling" while capped, else ""
}

export function gateUploads(torrent: any, m: Manifest, policy: Policy, uploaded: () => number,
  held: () => number): UploadGate {
  let capped = ''
  // Bytes promised to peers: sent, plus the requests queued on every wire (a request is queued before the
  // engine reads its block, so a cap checked here is never passed).
  const committed = () => uploaded() + torrent.wires.reduce((n: number, w: any) =>
    n + (w.peerRequests ?? []).reduce((k: number, r: any) => k + r.length, 0), 0)
  const over = (bytes: number) =>
    bytes > m.uploadCeiling ? 'ceiling' : bytes > m.uploadRatio * held() ? 'ratio' : ''
  const serving = () => policy.mode().mode === 'p2p' && !capped
  const chokeAll = () => torrent.wires.forEach((w: any) => w.choke())
  // Lets peers that want pieces ask again (WebTorrent's rechoke trims to its upload slots).
  const reopen = () => torrent.wires.forEach((w: any) => w.peerInterested && w.unchoke())

  torrent.on('wire', (wire: any) => {
    if (wire.type === 'webSeed') return
    const unchoke = wire.unchoke.bind(wire)
    wire.unchoke = () => serving() && unchoke()
    // This listener runs before WebTorrent's, which reads the block: a request past a cap chokes every wire,
    // which drops it and every other queued request unsent.
    wire.on('request', () => {
      if (!serving()) return chokeAll()
      const over0 = over(committed())
      if (over0) {
        capped = over0
        chokeAll()
      }
    })
  })
  // A ratio cap lifts once the page view holds enough more (hysteresis of a piece, so that it does not choke
  // and unchoke on every block); the ceiling is final.
  torrent.on('verified', () => {
    if (capped !== 'ratio') return
    capped = over(uploaded() + m.pieceLength)
    if (serving()) reopen()
  })
  policy.watch(() => (serving() ? reopen() : chokeAll()))

  return { mode: policy.mode, capReason: () => capped }
}
