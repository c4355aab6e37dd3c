// Piece order. Callers say which byte ranges matter ("the hero image first", "media from the playhead") as
// priorities and deadlines; the rest follows rarest first, then in order.

import type { Info } from './metainfo'

// Want is a byte range [start, end) of the torrent's byte stream and how much it matters: pieces with a
// deadline (ms since the epoch, as Date.now) come first; among them, and then among the rest, higher priority
// (default 0) comes first, then (for pieces with deadlines) the earlier deadline. Then pieces of ordered
// ranges (a stream's read-ahead, read in order) go by their place in the range, nearest its start first (two
// streams of one priority advance together, a piece each); the others follow, those fewer connected peers
// hold first, then in an order of this client's own, at random. Pieces in no range come last (priority
// -Infinity).
//
// Priority before deadline: a page's streams all wait at once, and the one just served waits again with the
// latest deadline; earliest deadline first took each stream in turn, and every image of a page finished
// together, late. Deadlines still decide where a piece comes from (a webseed once it is due).
//
// The random order is what lets a crowd trade: clients that arrive together and want the same files would
// otherwise all take the same pieces first, from the same sources, and hold nothing the others lack
// (BitTorrent's random first pieces).
export interface Want {
  start: number
  end: number
  priority?: number
  deadline?: number
  ordered?: boolean
}

// RESORT_MS bounds how often a change in rarity alone re-sorts the pieces: every have message changes it,
// and a few hundred milliseconds of stale rarity costs nothing.
const RESORT_MS = 250

export class Picker {
  readonly avail: Int32Array // connected peers holding each piece
  readonly due: Float64Array
  readonly pri: Float64Array // -Infinity: in no range
  private readonly seq: Uint32Array // 1 + the piece's place in its ordered range; 0: in none
  private readonly tie: Uint32Array // this client's random order among equals
  private order: number[] = []
  private stale = true
  private sortedAt = -Infinity

  constructor(private info: Info) {
    this.avail = new Int32Array(info.count)
    this.due = new Float64Array(info.count).fill(Infinity)
    this.pri = new Float64Array(info.count).fill(-Infinity)
    this.seq = new Uint32Array(info.count)
    this.tie = new Uint32Array(info.count)
    for (let i = 0; i < info.count; i += 16384) crypto.getRandomValues(this.tie.subarray(i, i + 16384))
  }

  // want replaces the caller's ranges.
  want(ranges: Want[]): void {
    this.due.fill(Infinity)
    this.pri.fill(-Infinity)
    this.seq.fill(0)
    const pl = this.info.pieceLength
    for (const r of ranges) {
      const first = Math.max(0, Math.floor(r.start / pl))
      const last = Math.min(Math.ceil(r.end / pl), this.info.count)
      for (let i = first; i < last; i++) {
        if (r.deadline !== undefined) this.due[i] = Math.min(this.due[i], r.deadline)
        this.pri[i] = Math.max(this.pri[i], r.priority ?? 0)
        if (r.ordered) this.seq[i] = this.seq[i] ? Math.min(this.seq[i], i - first + 1) : i - first + 1
      }
    }
    this.stale = true
    this.sortedAt = -Infinity
  }

  // rarity marks availability as changed.
  rarity(): void {
    this.stale = true
  }

  // ordered returns every piece index, best first.
  ordered(now: number): number[] {
    if (this.stale && now - this.sortedAt >= RESORT_MS) {
      const { due, pri, avail, seq, tie } = this
      this.order = Array.from({ length: this.info.count }, (_, i) => i).sort(
        (a, b) =>
          +(due[a] === Infinity) - +(due[b] === Infinity) || pri[b] - pri[a] || due[a] - due[b] ||
          (seq[a] && seq[b] ? seq[a] - seq[b] || a - b : +!seq[a] - +!seq[b] || avail[a] - avail[b] || tie[a] - tie[b] || a - b),
      )
      this.stale = false
      this.sortedAt = now
    }
    return this.order
  }
}
