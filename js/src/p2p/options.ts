// What a Torrent's caller gives and hears: its options, the events it emits and its counts (torrent.ts has the
// torrent itself).

import type { Head } from './head'
import type { Want } from './picker'
import type { Connect } from './rtc'
import type { PieceStore } from './store'

export interface TorrentOptions {
  info: Uint8Array // the bencoded info dictionary
  infoHash: Uint8Array // its SHA-1, checked before anything starts
  peerId?: Uint8Array // 20 bytes; default "-SG0001-" and random bytes
  trackers?: string[] // ws:// or wss:// WebTorrent trackers
  // signal: the trackers (and so every peer connection, ours and others' to us) start once it resolves; default
  // at once. Until then the torrent's sources are its webseeds and head alone.
  signal?: Promise<void>
  rtc?: RTCConfiguration // for every peer connection: the caller's iceServers
  // connect makes the peer connections: default in this realm; a core in a worker, where browsers have no
  // RTCPeerConnection, passes linkVia(port) to have its page make them (see rtc.ts).
  connect?: Connect
  webseeds?: string[] // BEP 19 url-list
  // head: pieces the page preloaded over HTTP (see head.ts): pending from the start, as a webseed's would be.
  head?: Head
  store?: PieceStore // default: memory
  // have: pieces the store already holds, verified by the caller. A promise lets the torrent start signalling
  // (the tracker's socket, ICE gathering for its offers) while the caller still reads its store: the first
  // announce (and so any peer) and every request wait until it resolves. Torrent.loaded says when the torrent
  // holds them.
  have?: number[] | 'all' | Promise<number[]>
  // upload is asked before each block sent to a peer; false means a cap is reached: the request is refused
  // and the peer choked. Default: no cap.
  upload?: (bytes: number) => boolean
  want?: Want[] // the byte ranges that matter most from the start (see Torrent.want)
  maxPeers?: number // default DEFAULT_MAX_PEERS
  // webseedLeadMs: a piece with a deadline closer than this goes to a webseed unless a peer is already
  // fetching it. Default DEFAULT_WEBSEED_LEAD_MS.
  webseedLeadMs?: number
  // webseedMode: what webseeds take besides due pieces, from the start (see WebseedMode). Default 'idle'.
  // Torrent.webseedMode changes it later.
  webseedMode?: WebseedMode
  // wantedOnly: download only the pieces of the want ranges (the files a page asked for); default: every
  // piece, wanted ones first.
  wantedOnly?: boolean
  // lastResort names peers (hex IDs) asked only for pieces that are due (see webseedLeadMs), or, while no
  // webseeds with capacity to spare (mode 'all') are in use, that no other connected, unchoking peer holds:
  // a site's own seeder, whose upload should go to what the crowd lacks.
  // Webseeds also ignore what such peers hold. Asked at each choice, so the answer may change.
  lastResort?: (id: string) => boolean
}

// WebseedMode is what webseeds take besides pieces due within the lead time:
//   - 'due': nothing;
//   - 'idle': pieces no connected, unchoking peer holds;
//   - 'all': any piece no source is fetching yet (webseeds with capacity to spare, which compete with peers
//     for every piece, as WebTorrent's do).
export type WebseedMode = 'due' | 'idle' | 'all'

// Where a verified piece came from: a peer, a webseed, or the caller (put).
export type Source = 'peer' | 'webseed' | 'local'

export interface TorrentEvents {
  piece: { index: number; source: Source; peer?: string } // verified and stored
  progress: Stats
  done: Stats
  peer: { id: string; open: boolean } // a peer's wire is up (open) or gone
  ban: { id: string; piece: number } // a peer sent a piece that failed verification
  warning: string
  // Bytes as they arrive, before verification: a block from a peer (its hex ID), or a webseed's response
  // (peer undefined; padding is never fetched, so never counted).
  download: { bytes: number; peer?: string }
  upload: number // bytes of a block sent to a peer
}

export interface Stats {
  have: number // verified pieces
  count: number
  // Verified bytes by source, counted by whole pieces (padding zeros filled in locally included).
  peerBytes: number // from peers
  webseedBytes: number // from webseeds
  uploaded: number
  peers: number
}
