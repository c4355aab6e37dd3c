// The engine's upload gate: whether this page view serves other peers. It serves no one while the page's
// policy says download-only, and stops serving before an operator's cap would be passed: the ceiling (bytes
// per page view) and the ratio (a multiple of the verified bytes of the site the page view holds, held(): what
// it downloaded, plus what it kept in its browser's storage from an earlier view of the same site version; a
// returning visitor that downloaded nothing this time can still seed what it holds).
//
// Serving is controlled by choking, the BitTorrent way: the core (src/p2p) asks allow(0) before it unchokes an
// interested peer and allow(n) before it sends a block of n bytes; a refusal rejects the request and chokes
// the peer. rechoke() makes the core ask again for every peer (a cap lifted, or the policy changed).
import type { Manifest, Mode, Policy } from './manifest'

export interface UploadGate {
  mode(): Mode
  capReason(): string // "ratio" or "ceiling" while capped, else ""
  allow(bytes: number): boolean // the core's upload hook
  verified(): void // the page view holds one more piece: a ratio cap may lift
}

export function gateUploads(m: Manifest, policy: Policy, uploaded: () => number, held: () => number,
  rechoke: () => void): UploadGate {
  let capped = ''
  const over = (bytes: number) =>
    bytes > m.uploadCeiling ? 'ceiling' : bytes > m.uploadRatio * held() ? 'ratio' : ''
  const serving = () => policy.mode().mode === 'p2p' && !capped
  policy.watch(rechoke)

  return {
    mode: policy.mode,
    capReason: () => capped,
    allow: (bytes) => {
      if (!serving()) return false
      // uploaded() counts every block accepted so far (the core counts a block when it accepts it), so a cap
      // checked here is never passed.
      const cap = bytes > 0 ? over(uploaded() + bytes) : ''
      if (!cap) return true
      capped = cap
      rechoke()
      return false
    },
    // A ratio cap lifts once the page view holds enough more (hysteresis of a piece, so that it does not choke
    // and unchoke on every block); the ceiling is final.
    verified: () => {
      if (capped !== 'ratio') return
      capped = over(uploaded() + m.pieceLength)
      if (serving()) rechoke()
    },
  }
}
