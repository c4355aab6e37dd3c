// A torrent being downloaded and seeded: sources (peers over WebRTC found through WebSocket trackers, and BEP 19
// webseeds), piece picking by the caller's priorities, SHA-1 verification of every piece, banning peers that
// send bad data, and serving peers what we hold within the caller's upload cap.

import { Bits } from './bits'
import { equal, hex, randomBytes, sha1, utf8 } from './bytes'
import { Emitter } from './emitter'
import {
  DEFAULT_MAX_PEERS, DEFAULT_WEBSEED_LEAD_MS, FOCUS_REQS, HANDSHAKE_MS, KEEPALIVE_MS, LATE_MS, MAX_BLOCK, MAX_QUEUED, REQ_MS, REQQ, TICK_MS,
  WEBSEED_RETRY_MS, WEBSEED_SLOTS,
} from './limits'
import { ltepHandshake, onExtended } from './extensions'
import { type Head, headPieces } from './head'
import type { Source, Stats, TorrentEvents, TorrentOptions, WebseedMode } from './options'
import { type Info, padBytes, padding, parseInfo, pieceSize } from './metainfo'
import { Peer } from './peer'
import { httpPiece, type Pending, peerPiece } from './pending'
import { Picker, type Want } from './picker'
import type { Conn } from './rtc'
import { MemoryStore, type PieceStore } from './store'
import { TrackerClient } from './tracker'
import { fetchRange } from './webseed'
import { BLOCK, type Msg, WireError } from './wire'

interface Webseed {
  url: string
  busy: number
  fails: number
  until: number // no requests before this (performance.now)
  dead: boolean
}

export class Torrent extends Emitter<TorrentEvents> {
  readonly info: Info
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly have: Bits
  readonly picker: Picker
  readonly peers = new Map<string, Peer>()
  readonly banned = new Set<string>()
  destroyed = false
  webseedMode: WebseedMode
  // loaded resolves once the torrent holds the caller's pieces (TorrentOptions.have; a failed promise counts
  // as none, with a warning).
  readonly loaded: Promise<void>
  private store: PieceStore
  private pending = new Map<number, Pending>()
  private handshaking = new Set<Peer>() // data channels open, handshake not yet in
  private loading?: Promise<void> // the caller's have, not yet known (see TorrentOptions.have)
  private trackers: TrackerClient[] = []
  private webseeds: Webseed[] = []
  private aborts = new Set<AbortController>()
  private timer: ReturnType<typeof setInterval>
  private bpp: number // blocks per piece
  private padBlocks: (i: number, b: number) => boolean
  private stats: Stats

  private constructor(private o: TorrentOptions, info: Info) {
    super()
    this.info = info
    this.infoHash = o.infoHash
    this.peerId = o.peerId ?? new Uint8Array([...utf8.encode('-SG0001-'), ...randomBytes(12)])
    this.store = o.store ?? new MemoryStore()
    this.have = new Bits(info.count)
    if (o.have === 'all') this.have.fill()
    else if (o.have instanceof Promise) this.loading = this.load(o.have)
    else for (const i of o.have ?? []) this.have.set(i)
    this.loaded = this.loading ?? Promise.resolve()
    this.picker = new Picker(info)
    if (o.want) this.picker.want(o.want)
    this.bpp = Math.ceil(info.pieceLength / BLOCK)
    this.padBlocks = padding(info)
    this.webseedMode = o.webseedMode ?? 'idle'
    this.stats = { have: this.have.count, count: info.count, peerBytes: 0, webseedBytes: 0, uploaded: 0, peers: 0 }
    for (const url of o.webseeds ?? []) this.addWebseed(url)
    if (o.signal) void o.signal.then(() => this.signal())
    else this.signal()
    this.timer = setInterval(() => this.tick(), TICK_MS)
    if (o.head) void this.takeHead(o.head)
    queueMicrotask(() => this.update())
  }

  // load takes the caller's pieces once it knows them (TorrentOptions.have).
  private async load(have: Promise<number[]>): Promise<void> {
    let got: number[] = []
    try {
      got = await have
    } catch (e) {
      this.emit('warning', `torrent: the store's pieces: ${e}`)
    }
    this.loading = undefined
    if (this.destroyed) return
    for (const i of got) if (i >= 0 && i < this.info.count) this.have.set(i)
    this.update()
  }

  // create checks the info dictionary against the infohash and starts the torrent.
  static async create(o: TorrentOptions): Promise<Torrent> {
    if (!equal(await sha1(o.info), o.infoHash)) throw new Error('torrent: info dictionary does not match the infohash')
    return new Torrent(o, parseInfo(o.info))
  }

  // signal starts the trackers: the announce, offers to peers and answers to theirs (TorrentOptions.signal).
  private signal(): void {
    if (this.destroyed || this.trackers.length) return
    for (const url of this.o.trackers ?? []) {
      this.trackers.push(
        new TrackerClient({
          url,
          infoHash: this.infoHash,
          peerId: this.peerId,
          rtc: this.o.rtc ?? {},
          connect: this.o.connect,
          ready: this.loaded,
          state: () => ({
            uploaded: this.stats.uploaded,
            downloaded: this.stats.peerBytes + this.stats.webseedBytes,
            left: this.left(),
            want: (this.o.maxPeers ?? DEFAULT_MAX_PEERS) - this.peers.size - this.handshaking.size,
            // No peer that unchokes us is as good as none (download-only visitors choke everyone).
            starving: this.needy() && !this.handshaking.size && ![...this.peers.values()].some((p) => !p.wire.peerChoking),
          }),
          onpeer: (dc, conn, id) => this.addPeer(dc, conn, id),
          accept: (id) => !this.banned.has(hex(id)) && !this.peers.has(hex(id)),
          onwarning: (m) => this.emit('warning', m),
        }),
      )
    }
  }

  get done(): boolean {
    return this.have.full()
  }

  // want sets which byte ranges matter most (see Want); it replaces the previous call's ranges.
  want(ranges: Want[]): void {
    this.picker.want(ranges)
    // With wantedOnly, what we want grows: a peer told at its bitfield that we were not interested (a page
    // connects before it knows which files it needs) is told now, or it never unchokes us.
    for (const p of this.peers.values()) if (!p.wire.amInterested && this.wants(p)) p.wire.interested()
    this.update()
  }

  addWebseed(url: string): void {
    if (this.webseeds.some((w) => w.url === url)) return
    this.webseeds.push({ url, busy: 0, fails: 0, until: 0, dead: false })
    this.update()
  }

  // removeWebseed stops asking a webseed for pieces (those it is fetching still count when they arrive).
  removeWebseed(url: string): void {
    this.webseeds = this.webseeds.filter((w) => w.url !== url)
  }

  // rechoke unchokes every interested peer while upload(0) allows, and chokes every peer otherwise: the
  // caller's answer changed (a cap lifted, the page's policy changed).
  rechoke(): void {
    const ok = !this.o.upload || this.o.upload(0)
    for (const p of this.peers.values()) {
      if (ok && p.wire.peerInterested) p.wire.unchoke()
      else if (!ok) p.wire.choke()
    }
  }

  // read returns bytes [start, end) of the torrent's byte stream once every piece they touch is verified and
  // held in memory by the store (undefined otherwise).
  read(start: number, end: number): Uint8Array | undefined {
    const pl = this.info.pieceLength
    const out = new Uint8Array(end - start)
    for (let i = Math.floor(start / pl); i * pl < end; i++) {
      const p = this.have.get(i) ? this.store.get(i) : undefined
      if (!p || p instanceof Promise) return undefined
      const a = Math.max(start, i * pl)
      const b = Math.min(end, i * pl + p.length)
      out.set(p.subarray(a - i * pl, b - i * pl), a - start)
    }
    return out
  }

  // put offers a piece obtained elsewhere (the HTTP cache, say): it is kept when it verifies.
  async put(i: number, data: Uint8Array): Promise<boolean> {
    if (this.have.get(i)) return true
    if (data.length !== pieceSize(this.info, i) || !(await this.verify(i, data))) return false
    this.gotPiece(i, data, 'local')
    return true
  }

  getStats(): Stats {
    return { ...this.stats, have: this.have.count, peers: this.peers.size }
  }

  // destroy stops everything: trackers (announcing stopped), peer connections, webseed requests and timers.
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    clearInterval(this.timer)
    for (const t of this.trackers) t.destroy()
    for (const p of this.peers.values()) p.wire.close()
    for (const p of this.handshaking) p.wire.close()
    for (const a of this.aborts) a.abort()
    this.pending.clear()
  }

  // needed says whether piece i is still to download.
  private needed(i: number): boolean {
    return !this.have.get(i) && (!this.o.wantedOnly || this.picker.pri[i] > -Infinity)
  }

  // head is the priority of the first piece still needed in the picker's order. The pieces of that
  // priority (the first image, a stream's next seconds) are urgent: a block of theirs that a peer has left
  // unanswered for LATE_MS may be asked of another peer too (a slow browser otherwise holds the first image
  // back until the whole page is in).
  private head(): number {
    for (const i of this.picker.ordered(performance.now())) {
      if (this.needed(i)) return this.picker.pri[i] > -Infinity ? this.picker.pri[i] : Infinity // none wanted more
    }
    return Infinity
  }

  // late says whether block k was requested from some peer LATE_MS ago or more and is still awaited.
  private late(k: number, now: number): boolean {
    for (const q of this.peers.values()) {
      const at = q.reqs.get(k)
      if (at !== undefined && now - at >= LATE_MS) return true
    }
    return false
  }

  // endgame says whether every piece still to download is under way: only then are blocks requested twice
  // (before, a peer that ran out of new pieces duplicated others' requests: up to a fifth more bytes moved in
  // the five-browser crowd test).
  private endgame(): boolean {
    for (let i = 0; i < this.info.count; i++) if (this.needed(i) && !this.pending.has(i)) return false
    return true
  }

  // needy says whether any piece is still to download.
  private needy(): boolean {
    for (let i = 0; i < this.info.count; i++) if (this.needed(i)) return true
    return false
  }

  private left(): number {
    let n = 0
    for (let i = 0; i < this.info.count; i++) if (!this.have.get(i)) n += pieceSize(this.info, i)
    return n
  }

  private addPeer(dc: RTCDataChannel, conn: Conn, id: Uint8Array): void {
    if (this.destroyed) return conn.close()
    const p = new Peer(conn, dc, id, this.info.count)
    this.handshaking.add(p)
    p.wire.onmsg = (m) => this.onmsg(p, m)
    p.wire.onclose = (err) => {
      if (err && !this.destroyed) this.emit('warning', `torrent: peer ${p.id}: ${err.message}`)
      this.dropPeer(p)
    }
    p.wire.handshake(this.infoHash, this.peerId)
    for (const b of conn.early.splice(0)) p.wire.push(new Uint8Array(b))
  }

  private dropPeer(p: Peer): void {
    this.handshaking.delete(p)
    p.conn.close()
    if (this.peers.get(p.id) !== p) return
    this.peers.delete(p.id)
    for (let i = 0; i < this.info.count; i++) if (p.has.get(i)) this.picker.avail[i]--
    this.picker.rarity()
    for (const k of p.reqs.keys()) this.release(p, k)
    this.disown(p)
    this.emit('peer', { id: p.id, open: false })
    this.update()
  }

  // disown gives the pieces p started to whoever comes next, once nothing is requested from p (it left or
  // choked us). A piece nobody else is fetching starts over, so that a webseed (which fetches whole pieces)
  // can take it too; one whose blocks are all in is being verified, and finish settles it (a bad one still
  // bans the peers that sent it).
  private disown(p: Peer): void {
    for (const [i, pd] of this.pending) {
      if (pd.owner !== p) continue
      pd.owner = undefined
      if (pd.left && !pd.state.includes(1)) this.drop(i, pd)
    }
  }

  // drop ends pending piece i; a webseed still fetching it (pd raced it) has it back.
  private drop(i: number, pd: Pending): void {
    if (pd.rival?.ac) this.pending.set(i, pd.rival)
    else this.pending.delete(i)
  }

  private ban(p: Peer, piece: number): void {
    this.banned.add(p.id)
    this.emit('ban', { id: p.id, piece })
    p.wire.close()
  }

  private onmsg(p: Peer, m: Msg): void {
    const w = p.wire
    switch (m.t) {
      case 'handshake': {
        const id = hex(m.peerId)
        const refuse = !equal(m.infoHash, this.infoHash)
          ? 'another torrent'
          : equal(m.peerId, this.peerId)
            ? 'ourselves'
            : this.banned.has(id)
              ? 'banned'
              : this.peers.has(id)
                ? 'already connected'
                : ''
        if (refuse) return w.close(new Error(`handshake refused: ${refuse}`))
        p.id = id
        p.ready = true
        this.handshaking.delete(p)
        this.peers.set(id, p)
        w.bitfield(this.have)
        if (w.ltep) w.extended(0, ltepHandshake(this.o.info.length, REQQ))
        this.emit('peer', { id, open: true })
        return
      }
      case 'bitfield':
      case 'haveAll':
        // A second bitfield replaces the first: availability drops what the old one counted.
        for (let i = 0; i < this.info.count; i++) if (p.has.get(i)) this.picker.avail[i]--
        if (m.t === 'bitfield') p.has = new Bits(this.info.count, m.bits)
        else p.has.fill()
        for (let i = 0; i < this.info.count; i++) if (p.has.get(i)) this.picker.avail[i]++
        this.picker.rarity()
        return this.interest(p)
      case 'have':
        if (p.has.set(m.i)) {
          this.picker.avail[m.i]++
          this.picker.rarity()
          if (this.needed(m.i)) w.interested()
          this.fill(p)
        }
        return
      case 'interested':
        // upload(0) asks whether uploads are allowed at all.
        if (!this.o.upload || this.o.upload(0)) w.unchoke()
        return
      case 'unchoke':
        return this.fill(p)
      case 'choke':
        // Without the Fast extension a choke drops every request; with it, the peer rejects each.
        if (!w.fast) for (const k of [...p.reqs.keys()]) this.release(p, k)
        if (!p.reqs.size) this.disown(p)
        return this.update()
      case 'reject': {
        // A reject may answer a cancel: a cancelled block asked again is still owed by a choking peer only.
        const k = this.key(m.i, m.off)
        if (!p.cancelled.delete(k) || w.peerChoking) this.release(p, k)
        if (w.peerChoking && !p.reqs.size) {
          this.disown(p)
          return this.update()
        }
        return this.fill(p)
      }
      case 'request':
        return this.serve(p, m.i, m.off, m.len)
      case 'piece':
        return this.onblock(p, m.i, m.off, m.data)
      case 'extended':
        return onExtended(p, this.o.info, m.id, m.payload)
    }
  }

  // interest tells a peer whether it holds anything we lack.
  private interest(p: Peer): void {
    if (this.wants(p)) p.wire.interested()
    else p.wire.uninterested()
    if (this.done && p.has.full()) p.wire.close() // two seeders have nothing to say to each other
    this.fill(p)
  }

  private wants(p: Peer): boolean {
    for (let i = 0; i < this.info.count; i++) if (p.has.get(i) && this.needed(i)) return true
    return false
  }

  // leaves says whether p should leave piece i to others: p is a peer of last resort, i is not due, and
  // webseeds with capacity to spare (mode 'all': helpers in a crowd) are in use, or another connected peer
  // that unchokes us holds it. fill runs before feed, so a site's seeder would otherwise take every piece the
  // helpers were recruited to send (half a page a visitor from the site's link, bench crowd at the defaults).
  private leaves(p: Peer, i: number, due: number): boolean {
    const lr = this.o.lastResort
    if (!lr || !lr(p.id) || this.picker.due[i] <= due) return false
    if (this.webseedMode === 'all' && this.webseeds.some((w) => !w.dead)) return true
    for (const q of this.peers.values()) if (q !== p && q.ready && !q.wire.peerChoking && q.has.get(i) && !lr(q.id)) return true
    return false
  }

  // serve answers a request; a piece the store keeps outside memory is read first (the block then goes out
  // after others, which BitTorrent allows). The upload is counted when the request is accepted, so that a cap
  // is never passed by blocks still being read.
  private serve(p: Peer, i: number, off: number, len: number): void {
    const w = p.wire
    if (len > MAX_BLOCK) return w.close()
    const fits = this.have.get(i) && off + len <= pieceSize(this.info, i) && len > 0
    if (w.amChoking || !fits || p.dc.bufferedAmount > MAX_QUEUED) {
      return w.reject(i, off, len)
    }
    if (this.o.upload && !this.o.upload(len)) {
      w.reject(i, off, len)
      return w.choke()
    }
    p.uploaded += len
    this.stats.uploaded += len
    this.emit('upload', len)
    const send = (d?: Uint8Array) => {
      if (w.closed) return
      if (d) w.piece(i, off, d.subarray(off, off + len))
      else w.reject(i, off, len)
    }
    const data = this.store.get(i)
    if (data instanceof Promise) data.then(send, () => send())
    else send(data)
  }

  private key(i: number, off: number): number {
    return i * this.bpp + off / BLOCK
  }

  // release gives back a block requested from p, for anyone to request again.
  private release(p: Peer, k: number): void {
    if (!p.reqs.delete(k)) return
    const pd = this.pending.get(Math.floor(k / this.bpp))
    const b = k % this.bpp
    if (!pd || pd.state[b] !== 1) return
    for (const q of this.peers.values()) if (q.reqs.has(k)) return
    pd.state[b] = 0
  }

  // withdraw cancels q's request for block k, if it holds one (the block may come all the same); with free,
  // the block is free for anyone to request again.
  private withdraw(q: Peer, k: number, free = false): void {
    const at = q.reqs.get(k)
    if (at === undefined) return
    if (free) this.release(q, k)
    else q.reqs.delete(k)
    const [i, b] = [Math.floor(k / this.bpp), k % this.bpp]
    q.wire.cancel(i, b * BLOCK, this.blockLen(i, b))
    q.cancelled.set(k, at)
  }

  private blockLen(i: number, b: number): number {
    return Math.min(BLOCK, pieceSize(this.info, i) - b * BLOCK)
  }

  private onblock(p: Peer, i: number, off: number, parts: Uint8Array[]): void {
    const k = this.key(i, off)
    let len = 0
    for (const d of parts) len += d.length
    p.heard = performance.now()
    // A block we cancelled may still come (the peer had sent it): it counts as received, and is used only if
    // it was asked again.
    const late = p.cancelled.delete(k)
    // A block of another length than asked is the peer's fault, not a late block: the peer goes while its
    // request is still on record, so that the block is free for others (kept as requested, no one would ask
    // for it again, nor see it late).
    if (p.reqs.has(k) && len !== this.blockLen(i, k % this.bpp)) return p.wire.close(new WireError(`wire: block of ${len} bytes`))
    const oldest = p.reqs.keys().next().value // requests are kept in the order they were sent
    if (!p.reqs.delete(k)) return late ? this.emit('download', { bytes: len, peer: p.id }) : undefined
    p.answered++
    if (oldest !== k) p.skipped++
    const pd = this.pending.get(i)
    const b = k % this.bpp
    p.measure(len)
    if (pd && !pd.webseed && pd.state[b] !== 2 && len === this.blockLen(i, b)) {
      for (let at = off, n = 0; n < parts.length; at += parts[n++].length) pd.buf.set(parts[n], at)
      pd.state[b] = 2
      pd.left--
      pd.from.add(p)
      p.downloaded += len
      this.emit('download', { bytes: len, peer: p.id })
      for (const q of this.peers.values()) if (q !== p) this.withdraw(q, k)
      if (!pd.left) void this.finish(i, pd)
    }
    // Requests are topped up in batches, once half the budget is left: they go out packed together (one
    // data-channel send each time, see Wire.write) while the other half stays in flight.
    if (p.reqs.size <= p.budget() / 2) this.fill(p)
  }

  // finish verifies a pending piece whose blocks are all in, and reports whether it was good.
  private async finish(i: number, pd: Pending): Promise<boolean> {
    const ok = await this.verify(i, pd.buf)
    if (this.destroyed || this.pending.get(i) !== pd) return ok
    if (ok) {
      this.pending.delete(i)
      pd.rival?.ac?.abort() // a webseed still fetching the piece a peer raced for: it lost
      const n = pd.buf.length
      if (pd.webseed) this.stats.webseedBytes += n
      else this.stats.peerBytes += n
      const [one] = pd.from
      this.gotPiece(i, pd.buf, pd.webseed ? 'webseed' : 'peer', pd.from.size === 1 ? one.id : undefined)
      return ok
    }
    this.drop(i, pd) // it starts over, or is left to the webseed this peer raced
    // A peer that sent the whole piece is banned at once; one of several is banned at its second bad piece.
    for (const p of pd.from) if (pd.from.size === 1 || ++p.strikes >= 2) this.ban(p, i)
    this.emit('warning', `torrent: piece ${i} failed verification`)
    this.update()
    return ok
  }

  private async verify(i: number, data: Uint8Array): Promise<boolean> {
    return equal(await sha1(data), this.info.pieces.subarray(20 * i, 20 * i + 20))
  }

  private gotPiece(i: number, data: Uint8Array, source: Source, peer?: string): void {
    if (this.destroyed || !this.have.set(i)) return
    this.store.put(i, data)
    for (const p of this.peers.values()) if (p.ready) p.wire.have(i)
    this.emit('piece', { index: i, source, peer })
    const s = this.getStats()
    this.emit('progress', s)
    if (this.done) {
      for (const t of this.trackers) void t.announce('completed')
      for (const p of this.peers.values()) this.interest(p)
      this.emit('done', s)
    }
    this.update()
  }

  // update hands out work to every source, the fastest peers first: they take the pieces that come first.
  private update(): void {
    if (this.destroyed || this.loading) return
    for (const p of [...this.peers.values()].sort((a, b) => b.rate - a.rate)) this.fill(p)
    for (const w of this.webseeds) this.feed(w)
  }

  // fill keeps p's budget of blocks requested from a peer that unchokes us: a pass over the most wanted pieces
  // (see head), then one over the rest.
  //   - While p holds requests for the most wanted, it holds at most FOCUS_REQS besides: a peer may send what
  //     it was asked in any order (anacrolix/torrent v1.59.1 serves a connection's requests in its map's
  //     order, at random), and a Go seeder asked for the hero's pieces with a full budget behind them sent two
  //     of them after 12 and 20 pieces asked for later. From such a peer (Peer.shuffles), those it was asked
  //     before the pieces became the most wanted (an image scrolled into view) or before it had them are
  //     withdrawn, the latest asked first, and take no room from the most wanted. A peer that answers in
  //     turn (a browser sends a block as soon as it is asked) has mostly sent them already: cancelled, they
  //     would come all the same.
  //   - A silent peer (Peer.silent) is asked for at most one block of the most wanted, and only when it has
  //     none in flight (when all that is left is most wanted, it may be the only source); others take the free
  //     blocks of its pieces. A stalled peer whose requests were cancelled once others had sent their blocks
  //     was free to take the hero's last free blocks, which then waited LATE_MS and a steady peer's room.
  private fill(p: Peer): void {
    if (this.destroyed || !p.ready || p.wire.peerChoking || this.done) return
    const now = performance.now()
    if (!p.reqs.size) [p.got, p.since] = [0, now] // its rate is measured while it has work
    const budget = p.budget()
    const shuffles = p.shuffles()
    if (p.reqs.size >= budget && !shuffles) return // nothing to ask, nothing to withdraw
    const head = this.head()
    const top = (i: number) => this.picker.pri[i] >= head
    let held = 0
    for (const k of p.reqs.keys()) if (top(Math.floor(k / this.bpp))) held++
    const room = budget - held - (shuffles ? Math.min(p.reqs.size - held, FOCUS_REQS) : p.reqs.size - held)
    if (!p.silent(now)) held += room > 0 ? this.pass(p, now, room, head, top) : 0
    else if (!p.reqs.size) held += this.pass(p, now, 1, head, top) // one block: an answer ends its silence
    if (held && shuffles) this.unqueue(p, p.reqs.size - held - FOCUS_REQS, top)
    const more = held ? Math.min(budget - p.reqs.size, FOCUS_REQS - (p.reqs.size - held)) : budget - p.reqs.size
    if (more > 0) this.pass(p, now, more, head, (i) => !top(i))
    if (!p.reqs.size && !this.wants(p)) p.wire.uninterested()
  }

  // unqueue withdraws p's n latest requests for pieces other than the most wanted (top): their blocks are
  // free for anyone again.
  private unqueue(p: Peer, n: number, top: (i: number) => boolean): void {
    if (n <= 0) return
    for (const k of [...p.reqs.keys()].filter((k) => !top(Math.floor(k / this.bpp))).slice(-n)) this.withdraw(p, k, true)
  }

  // pass requests up to room blocks from p, of the pieces ok admits (head is this.head()): free blocks of pieces
  // under way that p may work on; a duplicate of each late block of the most wanted pieces; new pieces in the
  // picker's order that p holds; then free blocks of others' pieces and, in the endgame, one duplicate request
  // for each block still outstanding. It returns how many it requested.
  private pass(p: Peer, now: number, room: number, head: number, ok: (i: number) => boolean): number {
    const asked = room
    let endgame: boolean | undefined // asked once, when it matters
    const due = Date.now() + (this.o.webseedLeadMs ?? DEFAULT_WEBSEED_LEAD_MS)
    // take requests piece i's free blocks (none with dupOnly) and, with dup, one duplicate of each block still
    // awaited from another peer (with urgent, only once it is late).
    const take = (i: number, pd: Pending, dup: boolean, urgent = false, dupOnly = false) => {
      for (let b = 0; b < pd.state.length && room > 0; b++) {
        const k = i * this.bpp + b
        const again = dup && pd.state[b] === 1 && !pd.dup[b] && !p.reqs.has(k) && (!urgent || this.late(k, now))
        if (!again && (dupOnly || pd.state[b] !== 0)) continue
        if (again) pd.dup[b] = 1
        pd.state[b] = 1
        p.reqs.set(k, performance.now())
        if (!p.wire.fast) p.cancelled.delete(k) // it may send the cancelled block or not: this request takes it
        p.wire.request(i, b * BLOCK, this.blockLen(i, b))
        room--
      }
    }
    for (const [i, pd] of this.pending) {
      if (room <= 0) break
      if (pd.webseed || !ok(i) || !p.has.get(i)) continue
      const mine = !pd.owner || pd.owner === p || pd.owner.silent(now)
      if (!mine || (pd.owner !== p && this.leaves(p, i, due))) continue
      pd.owner = p
      take(i, pd, false)
    }
    // Late blocks of the most wanted pieces before new pieces: a starved browser held a first image's last piece
    // for 9 to 11 s (bench crowd -browsers 8) while fast peers that had it spent their room on the rest.
    for (const [i, pd] of this.pending) {
      if (room <= 0) break
      if (pd.webseed || !ok(i) || !p.has.get(i) || this.picker.pri[i] < head || this.leaves(p, i, due)) continue
      take(i, pd, true, true, true)
    }
    for (const i of room > 0 ? this.picker.ordered(now) : []) {
      if (room <= 0) break
      if (ok(i) && this.needed(i) && !this.pending.has(i) && p.has.get(i) && !this.leaves(p, i, due)) take(i, this.start(i, p), false)
    }
    for (const [i, pd] of this.pending) {
      if (room <= 0) break
      if (!ok(i) || !p.has.get(i) || this.leaves(p, i, due)) continue
      if (pd.webseed) {
        // A webseed's piece still awaited after LATE_MS, in the endgame or among the most wanted: a webseed
        // whose link is full (a helper in a crowd) would otherwise hold the page's last pieces, or its first
        // image, while a peer that has them waits. p races it; whichever source is first gives the piece.
        const overdue = now - (pd.at ?? now) >= LATE_MS
        if (overdue && ((endgame ??= this.endgame()) || this.picker.pri[i] >= head)) take(i, this.race(i, pd, p), false)
        continue
      }
      take(i, pd, false)
      if (room > 0 && (endgame ??= this.endgame())) take(i, pd, true) // late blocks of the most wanted went first
    }
    return asked - room
  }

  // start begins a piece; blocks wholly inside padding files are zeros already and never requested.
  private start(i: number, owner?: Peer): Pending {
    const pd = peerPiece(pieceSize(this.info, i), (b) => this.padBlocks(i, b), owner)
    this.pending.set(i, pd)
    if (!pd.left) void this.finish(i, pd)
    return pd
  }

  // race starts piece i afresh for peer p while webseed's fetch of it goes on; the first to bring it wins.
  private race(i: number, webseed: Pending, p: Peer): Pending {
    const pd = this.start(i, p)
    pd.rival = webseed
    return pd
  }

  // feed gives a webseed whole pieces: those due within the lead time that no peer is fetching, and what
  // webseedMode adds. A piece a peer is fetching that is due (or, for webseeds with capacity to spare, mode
  // 'all', among the most wanted: see head), and that has a block the peers have left unanswered for LATE_MS,
  // is raced by the webseed too (the converse of fill's race): a peer on a starved machine otherwise holds a
  // first image for as long as it is slow, up to REQ_MS, while the webseed would bring it in a round trip. A
  // webseed kept for due pieces (the site's own, on its full link in a crowd) races only for those.
  private feed(w: Webseed): void {
    const now = performance.now()
    if (w.dead || now < w.until || this.done) return
    const lead = Date.now() + (this.o.webseedLeadMs ?? DEFAULT_WEBSEED_LEAD_MS)
    const mode = this.webseedMode
    const lr = this.o.lastResort
    const sources = [...this.peers.values()].filter((p) => !p.wire.peerChoking && !lr?.(p.id))
    let head: number | undefined // asked once, when it matters
    for (const i of this.picker.ordered(now)) {
      if (w.busy >= WEBSEED_SLOTS) return
      if (!this.needed(i)) continue
      const due = this.picker.due[i] <= lead
      const pd = this.pending.get(i)
      if (pd) {
        const urgent = due || (mode === 'all' && this.picker.pri[i] >= (head ??= this.head()))
        if (!pd.webseed && !pd.rival && urgent && this.lagging(i, pd, now)) void this.fetchPiece(w, i, pd)
        continue
      }
      const takes = due || mode === 'all' || (mode === 'idle' && !sources.some((p) => p.has.get(i)))
      if (takes) void this.fetchPiece(w, i)
    }
  }

  // lagging says whether a block of peer piece i (pd) was requested LATE_MS ago or more and is still awaited.
  private lagging(i: number, pd: Pending, now: number): boolean {
    return pd.state.some((s, b) => s === 1 && this.late(i * this.bpp + b, now))
  }

  // fetchPiece fetches piece i whole from w; with racing (a peer's pending piece), as that piece's rival:
  // whichever brings it first gives it (see landed and finish).
  private async fetchPiece(w: Webseed, i: number, racing?: Pending): Promise<void> {
    const ac = new AbortController()
    const pd = httpPiece(ac)
    if (racing) racing.rival = pd
    else this.pending.set(i, pd)
    w.busy++
    this.aborts.add(ac)
    const start = i * this.info.pieceLength
    try {
      pd.buf = await fetchRange(w.url, this.info, start, start + pieceSize(this.info, i), ac.signal)
      pd.left = 0
      w.fails = 0
      if (!this.destroyed) this.emit('download', { bytes: pieceSize(this.info, i) - padBytes(this.info, i) })
    } catch (e) {
      // An abort is ours (a peer won the race, or the torrent ended): no fault of the webseed's.
      if (!ac.signal.aborted) w.until = performance.now() + Math.min(WEBSEED_RETRY_MS * 2 ** w.fails++, 30000)
      if (!this.destroyed && !ac.signal.aborted) this.emit('warning', `torrent: webseed ${w.url}: ${e}`)
    }
    this.aborts.delete(ac)
    pd.ac = undefined
    w.busy--
    if (racing?.rival === pd && pd.left) racing.rival = undefined // it failed: a webseed may race the peer again
    if (this.destroyed) return
    // A webseed whose bytes fail verification serves other content than the torrent's: it is not asked again.
    if (!(await this.landed(i, pd))) w.dead = true
  }

  // takeHead takes the pieces of a page's head as its response brings them. They are pending from the start,
  // so that no other source is asked for them unless they come late (LATE_MS, as a webseed's); whatever the
  // response does not bring, or brings after bytes that failed verification, goes back to the other sources.
  // Their pendings share one AbortController, which only marks them as still coming (see drop): the
  // response goes on for the other pieces when one of them loses a race.
  private async takeHead(h: Head): Promise<void> {
    if (!h.pieces.every((i) => Number.isInteger(i) && i >= 0 && i < this.info.count)) return
    const ac = new AbortController()
    const mine = new Map<number, Pending>()
    for (const i of h.pieces) {
      if (this.have.get(i) || this.pending.has(i)) continue
      const pd = httpPiece(ac)
      this.pending.set(i, pd)
      mine.set(i, pd)
    }
    try {
      await this.loaded // pieces an earlier view stored need none of the head's bytes
      for (const [i, pd] of mine) {
        if (!this.have.get(i)) continue
        mine.delete(i)
        if (this.pending.get(i) === pd) this.pending.delete(i)
      }
      const body = await h.body
      const sizes = h.pieces.map((i) => pieceSize(this.info, i))
      if (body && !mine.size) void body.cancel().catch(() => {})
      if (body && mine.size) {
        for await (const [k, buf] of headPieces(body, sizes.map((n, k) => n - padBytes(this.info, h.pieces[k])), sizes)) {
          const i = h.pieces[k]
          const pd = mine.get(i)
          if (this.destroyed) break
          if (!pd) continue
          mine.delete(i)
          pd.buf = buf
          pd.left = 0
          pd.ac = undefined
          this.emit('download', { bytes: buf.length - padBytes(this.info, i) })
          if (!(await this.landed(i, pd))) break
        }
      }
    } catch (e) {
      if (!this.destroyed) this.emit('warning', `torrent: ${e}`)
    }
    for (const [i, pd] of mine) {
      pd.ac = undefined
      if (this.pending.get(i) === pd) this.pending.delete(i)
    }
    if (!this.destroyed) this.update()
  }

  // landed settles a piece that came whole over HTTP (a webseed's, or the head's): it may have won a race
  // with a peer, whose requests are then withdrawn, or lost it; else it is verified. It returns false only for
  // bytes that failed verification.
  private async landed(i: number, pd: Pending): Promise<boolean> {
    const racer = this.pending.get(i)
    if (racer !== pd && racer?.rival === pd && !pd.left) {
      // The webseed won a race: the peers' requests for the piece are withdrawn, and its bytes are used.
      for (const q of this.peers.values()) for (let b = 0; b < racer.state.length; b++) this.withdraw(q, i * this.bpp + b)
      this.pending.set(i, pd)
    }
    if (this.pending.get(i) !== pd || pd.left) {
      if (this.pending.get(i) === pd) this.pending.delete(i) // it failed
      this.update() // or it lost a race: its slot is free
      return true
    }
    return this.finish(i, pd)
  }

  private tick(): void {
    const now = performance.now()
    for (const p of this.handshaking) if (now - p.born > HANDSHAKE_MS) p.wire.close(new Error('no handshake'))
    for (const p of this.peers.values()) {
      for (const t of p.reqs.values()) {
        if (now - t > REQ_MS) {
          this.emit('warning', `torrent: peer ${p.id} stalled`)
          p.wire.close()
          break
        }
      }
      for (const [k, t] of p.cancelled) if (now - t > REQ_MS) p.cancelled.delete(k) // it will not come now
      if (now - p.lastSent > KEEPALIVE_MS) p.wire.keepalive()
    }
    this.update()
  }
}
