// The torrent's limits and timings: how many peers and requests, how long a source may stay silent, how
// hard webseeds are pressed. Torrent reads them; they are here so that they are read and tuned in one place.

import { BLOCK } from './wire'

// DEFAULT_MAX_PEERS bounds connections: each is a peer connection with DTLS and SCTP state; a page needs a
// few good sources, not dozens (WebTorrent allows 55, mostly idle in a page's short life).
export const DEFAULT_MAX_PEERS = 20
export const DEFAULT_WEBSEED_LEAD_MS = 3000
// LATE_MS: a block of an urgent piece (see Torrent.head) awaited this long may be asked of a second peer.
export const LATE_MS = 1000
// FOCUS_REQS bounds the blocks a peer is asked for besides the most wanted pieces while it holds requests for
// them (see Torrent.fill).
export const FOCUS_REQS = 4
// REQQ is how many requests we tell peers we queue (LTEP reqq); WebTorrent keeps up to about 110.
export const REQQ = 256
// MAX_QUEUED bounds the bytes waiting on a peer's data channel: requests past it are refused. 4 MiB is
// REQQ blocks, and a quarter of what Chromium buffers on a data channel before it fails a send.
export const MAX_QUEUED = REQQ * BLOCK
// MAX_BLOCK is the largest request served; BEP 3 clients drop peers asking for more than 128 KiB.
export const MAX_BLOCK = 1 << 17
// REQ_MS: a peer that leaves a request unanswered this long is stalled and dropped (WebTorrent: 30 s).
export const REQ_MS = 30000
// HANDSHAKE_MS: a data channel whose peer has not sent a valid handshake by then is closed (WebTorrent
// allows 25 s for WebRTC peers, connection set-up included; the channel is already open here).
export const HANDSHAKE_MS = 10000
// KEEPALIVE_MS: a keep-alive after this long without sending (BEP 3 peers drop silent ones at 2 minutes).
export const KEEPALIVE_MS = 60000
// WEBSEED_SLOTS is how many pieces one webseed fetches at once: HTTP/1.1 allows six connections per host,
// and the page has its own requests to make.
export const WEBSEED_SLOTS = 3
// WEBSEED_RETRY_MS: first backoff after a failed webseed request, doubled per failure in a row up to 30 s.
export const WEBSEED_RETRY_MS = 1000
// TICK_MS is how often the torrent checks its peers and requests for time-outs.
export const TICK_MS = 1000
