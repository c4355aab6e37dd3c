// One connected peer: its wire over a data channel, what it holds, what we asked of it and how fast it sends.

import { Bits } from './bits'
import { hex } from './bytes'
import { LATE_MS } from './limits'
import type { Conn } from './rtc'
import { BLOCK, Wire } from './wire'

// A peer is kept busy with about QUEUE_MS of its own rate in requested blocks, START_REQS before its rate is
// known, never fewer than MIN_REQS nor more than MAX_REQS: 1 MiB in flight, enough for several MB/s at
// browser round trips, and exactly anacrolix/torrent's default per-connection budget (it can stall a peer
// that keeps more requested). A fixed 1 MiB each spread the page's first pieces over every source at once, and
// a slow peer's share (a browser on a busy machine) held the first image back until the whole page was in.
const QUEUE_MS = 1000
const START_REQS = 16
const MIN_REQS = 4
const MAX_REQS = 64
// RATE_MS is the shortest interval a peer's rate is measured over.
const RATE_MS = 500

export class Peer {
  readonly wire: Wire
  id: string // hex peer ID: the tracker's until the handshake gives the peer's own
  has: Bits
  ready = false // handshake checked
  reqs = new Map<number, number>() // block key → when requested (performance.now)
  // block key → when requested, for blocks requested, then cancelled: the block may come all the same, or from
  // a Fast peer a reject (anacrolix sends one; WebTorrent sends nothing). Asked again of a Fast peer, a block
  // keeps its entry here until the cancel's answer comes: a reject then leaves the new request alone.
  cancelled = new Map<number, number>()
  heard = 0 // when it last sent us a block (performance.now)
  answered = 0 // blocks it sent that were asked of it
  skipped = 0 // of them, those it sent before one asked earlier
  private quiet: [number, boolean] = [-1, false] // silent's last answer, and when it was asked
  downloaded = 0
  rate = 0 // bytes per second it sends us while asked for blocks (0: not known yet)
  got = 0 // bytes received since `since`, for rate
  since = 0
  uploaded = 0
  strikes = 0 // bad pieces it had a part in
  utMetadata?: number // the peer's extended message ID for ut_metadata (BEP 9), from its LTEP handshake
  lastSent = 0
  readonly born = performance.now()

  constructor(
    readonly conn: Conn,
    readonly dc: RTCDataChannel,
    peerId: Uint8Array,
    count: number,
  ) {
    this.id = hex(peerId)
    this.has = new Bits(count)
    this.wire = new Wire({
      send: (b) => {
        this.lastSent = performance.now()
        dc.send(b as Uint8Array<ArrayBuffer>)
      },
      close: () => conn.close(),
    })
    dc.onmessage = (e: MessageEvent<ArrayBuffer>) => this.wire.push(new Uint8Array(e.data))
    dc.onclose = () => this.wire.close()
    conn.onclose = () => this.wire.close()
  }

  // silent says whether the peer owes a block asked LATE_MS ago or more (cancelled since or not) and has sent
  // none since it was asked: a peer on a machine too busy to send, or one that stalled.
  // A fill asks it of each owner of a piece under way, at one time: the answer is kept for that time.
  silent(now: number): boolean {
    if (this.quiet[0] === now) return this.quiet[1]
    let s = false
    for (const m of [this.reqs, this.cancelled]) for (const at of m.values()) s ||= now - at >= LATE_MS && at > this.heard
    this.quiet = [now, s]
    return s
  }

  // shuffles says whether the peer sends what it is asked out of order: anacrolix/torrent v1.59.1 serves a
  // connection's queued requests at random, while browsers (ours, WebTorrent) answer in turn, and a block
  // cancelled there has mostly been sent already.
  shuffles(): boolean {
    return this.answered >= 8 && this.skipped * 4 >= this.answered
  }

  // budget is how many blocks to keep requested from the peer: about QUEUE_MS of its rate.
  budget(): number {
    if (!this.rate) return START_REQS
    return Math.min(MAX_REQS, Math.max(MIN_REQS, Math.ceil((this.rate * QUEUE_MS) / 1000 / BLOCK)))
  }

  // measure adds n bytes received from the peer to its rate, a moving average over intervals of RATE_MS or
  // more.
  measure(n: number): void {
    this.got += n
    const now = performance.now()
    if (now - this.since < RATE_MS) return
    const r = (this.got * 1000) / (now - this.since)
    this.rate = this.rate ? (this.rate + r) / 2 : r
    this.got = 0
    this.since = now
  }
}
