// A piece under way: from peers, block by block, or whole over HTTP (a webseed's fetch, or the page's head).

import type { Peer } from './peer'
import { BLOCK } from './wire'

export interface Pending {
  buf: Uint8Array
  state: Uint8Array // per block: 0 needed, 1 requested, 2 received
  dup: Uint8Array // per block: requested a second time, in the endgame
  left: number // blocks not received
  from: Set<Peer>
  owner?: Peer // the peer that started it; others join only once it is gone or silent (Peer.silent), or in the endgame
  webseed?: boolean // fetched whole by a webseed
  at?: number // a webseed's: when its fetch began (performance.now)
  ac?: AbortController // a webseed's: ends its fetch; unset once the fetch has ended
  rival?: Pending // a peer's piece started while a webseed still fetches it (raced): that fetch
}

// peerPiece is a piece of size bytes to take from peers, owner first; blocks for which pad says they lie
// wholly inside padding files are zeros already, received.
export function peerPiece(size: number, pad: (b: number) => boolean, owner?: Peer): Pending {
  const n = Math.ceil(size / BLOCK)
  const pd: Pending = { buf: new Uint8Array(size), state: new Uint8Array(n), dup: new Uint8Array(n), left: n, from: new Set(), owner }
  for (let b = 0; b < n; b++) {
    if (pad(b)) {
      pd.state[b] = 2
      pd.left--
    }
  }
  return pd
}

// httpPiece is a piece coming whole over HTTP, from now; ac ends (or, for the head's, marks) its fetch. Its
// bytes go in buf, and left to 0, once all of them are in.
export function httpPiece(ac: AbortController): Pending {
  const none = new Uint8Array(0)
  return { buf: none, state: none, dup: none, left: 1, from: new Set(), webseed: true, at: performance.now(), ac }
}
