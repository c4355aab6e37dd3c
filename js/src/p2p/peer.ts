// One connected peer: its wire over a data channel, what it holds and what we asked of it.

import { Bits } from './bits'
import { hex } from './bytes'
import type { Conn } from './rtc'
import { Wire } from './wire'

export class Peer {
  readonly wire: Wire
  id: string // hex peer ID: the tracker's until the handshake gives the peer's own
  has: Bits
  ready = false // handshake checked
  reqs = new Map<number, number>() // block key → when requested (performance.now)
  cancelled = new Set<number>() // block keys requested, then cancelled (the block may come all the same)
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
}
