// A client of the WebTorrent tracker protocol (bittorrent-tracker's WebSocket flavour): announces carry
// complete WebRTC offers, the tracker relays each to one peer, and that peer's answer comes back through it.
// Offers relayed to us are answered the same way.

import { binary, equal, fromBinary, hex, randomBytes } from './bytes'
import { Conn, type Connect, type Description } from './rtc'

// OFFERS is how many offers one announce carries: bittorrent-tracker caps numwant at 5 for WebSocket
// trackers, and each offer costs a peer connection while it waits.
const OFFERS = 5
// OFFER_MS is how long an offer waits for its answer: bittorrent-tracker's OFFER_TIMEOUT, also our tracker's
// default offer TTL.
const OFFER_MS = 50000
// Reconnect backoff: from 1 s, doubling to 60 s, with up to a quarter more at random so that the pages of a
// crowd do not all come back at once after the tracker restarts.
const RETRY_MIN_MS = 1000
const RETRY_MAX_MS = 60000
// MIN_INTERVAL_S bounds how often the tracker's interval can make us re-announce.
const MIN_INTERVAL_S = 15
// STARVING_MS: while a torrent that still needs data has no peer that unchokes it, it re-announces with fresh offers
// after 5 s, then 10, 20... up to the tracker's interval, instead of waiting the whole interval (2 minutes
// on ours) after a first offer that went nowhere or a connection that failed.
const STARVING_MS = 5000

export interface TrackerOptions {
  url: string
  infoHash: Uint8Array
  peerId: Uint8Array
  rtc: RTCConfiguration // iceServers and the like, from the caller
  connect?: Connect // where peer connections are made (default: this realm)
  // ready: announces wait for it (the torrent knows what it holds, so that left is true); the socket and the
  // first offers do not.
  ready?: Promise<void>
  // state is asked at each announce: transfer counts, how many more peers are wanted (0: send no offers,
  // and answer no relayed offers), and whether the torrent needs data and no peer unchokes it (see STARVING_MS).
  state(): { uploaded: number; downloaded: number; left: number; want: number; starving: boolean }
  // onpeer gets each open data channel, with the remote peer ID the tracker gave.
  onpeer(dc: RTCDataChannel, conn: Conn, peerId: Uint8Array): void
  // accept is asked before answering an offer (a banned peer ID, say).
  accept?(peerId: Uint8Array): boolean
  onwarning?(msg: string): void
}

interface Offer {
  offer_id: string
  offer: Description
}

interface TrackerMessage {
  action?: string
  info_hash?: string
  peer_id?: string
  offer_id?: string
  offer?: Description
  answer?: Description
  interval?: number
  'failure reason'?: string
  'warning message'?: string
}

export class TrackerClient {
  destroyed = false
  private ws?: WebSocket
  private retries = 0
  private timer?: ReturnType<typeof setTimeout>
  private offers = new Map<string, Conn>() // unanswered, by binary offer ID
  private connecting = new Set<Conn>() // every connection until its data channel opens or it closes
  private interval = 120
  private starved = 0 // announces in a row made while starving
  private started = false

  // early: the first announce's offers, made while the socket connects (ICE gathering takes a few hundred
  // milliseconds of its own; in sequence the two delayed a first view's first peer by both).
  private early?: Promise<Offer[]>

  constructor(private o: TrackerOptions) {
    this.early = this.makeOffers(Math.min(OFFERS, o.state().want))
    this.open()
  }

  // announce sends an announce now (with fresh offers unless the event is stopped or no peers are wanted).
  async announce(event?: 'started' | 'completed'): Promise<void> {
    await this.o.ready
    const ws = this.ws
    if (this.destroyed || !ws || ws.readyState !== WebSocket.OPEN) return
    // A completed announce carries no offers (as WebTorrent's): they would go to random members of the
    // swarm, mostly seeders with nothing to exchange; newcomers' offers still reach us.
    const want = event === 'completed' ? 0 : Math.min(OFFERS, this.o.state().want)
    // The early offers still waiting for an answer go first (once); fresh ones make up the rest.
    const first = this.early
    this.early = undefined
    const early = ((await first) ?? []).filter((x) => this.offers.has(x.offer_id)).slice(0, want)
    const made = early.concat(this.destroyed ? [] : await this.makeOffers(want - early.length))
    // The socket may have closed while the offers were made (ICE gathering takes up to GATHER_MS): its
    // reconnection is under way (retry), or a new socket announces for itself once open. Scheduling here
    // would cancel the reconnection, and the client would never announce again.
    if (this.destroyed || this.ws !== ws || ws.readyState !== WebSocket.OPEN) {
      for (const x of made) this.offers.get(x.offer_id)?.close()
      return
    }
    this.report(event, made)
    this.schedule()
  }

  private async makeOffers(n: number): Promise<Offer[]> {
    const made = await Promise.all(Array.from({ length: Math.max(0, n) }, () => this.offer()))
    return made.filter((x) => x !== undefined)
  }

  private report(event: string | undefined, offers: Offer[]): void {
    const s = this.o.state()
    this.send({
      action: 'announce',
      info_hash: binary(this.o.infoHash),
      peer_id: binary(this.o.peerId),
      numwant: offers.length,
      uploaded: s.uploaded,
      downloaded: s.downloaded,
      left: s.left,
      event,
      offers,
    })
  }

  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    clearTimeout(this.timer)
    if (this.started) this.report('stopped', [])
    for (const c of this.connecting) c.close()
    this.offers.clear()
    try {
      this.ws?.close()
    } catch {}
  }

  private open(): void {
    let ws: WebSocket
    try {
      ws = this.ws = new WebSocket(this.o.url)
    } catch (e) {
      this.o.onwarning?.(`tracker: ${e}`)
      return this.retry()
    }
    ws.onopen = () => {
      void this.announce(this.started ? undefined : 'started')
      this.started = true
    }
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') this.receive(e.data)
    }
    ws.onclose = () => {
      if (this.ws === ws && !this.destroyed) this.retry()
    }
  }

  private retry(): void {
    this.ws = undefined
    clearTimeout(this.timer)
    const ms = Math.min(RETRY_MIN_MS * 2 ** this.retries++, RETRY_MAX_MS)
    this.timer = setTimeout(() => this.open(), ms * (1 + Math.random() / 4))
  }

  // schedule the next regular announce at the tracker's interval, or sooner while starving.
  private schedule(): void {
    clearTimeout(this.timer)
    if (this.destroyed) return
    let ms = Math.max(this.interval, MIN_INTERVAL_S) * 1000
    if (this.o.state().starving) ms = Math.min(ms, STARVING_MS * 2 ** this.starved++)
    else this.starved = 0
    this.timer = setTimeout(() => void this.announce(), ms)
  }

  private send(m: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m))
  }

  // offer makes one peer connection and its complete offer, kept until answered or expired.
  private async offer(): Promise<Offer | undefined> {
    const id = binary(randomBytes(20))
    const conn = this.track(new Conn(this.o.rtc, (c, dc) => c.peerId && this.o.onpeer(dc, c, c.peerId), this.o.connect))
    this.offers.set(id, conn)
    const untrack = conn.onclose
    conn.onclose = () => {
      untrack?.()
      if (this.offers.get(id) === conn) this.offers.delete(id)
    }
    try {
      const offer = await conn.offer()
      if (this.destroyed) throw new Error('tracker: destroyed')
      conn.deadline(OFFER_MS)
      return { offer_id: id, offer }
    } catch (e) {
      conn.close()
      if (!this.destroyed) this.o.onwarning?.(`tracker: offer: ${e}`)
      return undefined
    }
  }

  // track keeps a connection in connecting until its data channel opens (the torrent owns it then) or it
  // closes.
  private track(conn: Conn): Conn {
    this.connecting.add(conn)
    conn.onclose = () => {
      this.connecting.delete(conn)
      if (conn.peerId && !this.destroyed) {
        this.o.onwarning?.(`tracker: connection to ${hex(conn.peerId)} ${conn.failed ? 'failed' : 'did not open'}`)
      }
    }
    const open = conn.onopen
    conn.onopen = (c, dc) => {
      this.connecting.delete(c)
      open(c, dc)
    }
    return conn
  }

  private receive(data: string): void {
    let m: TrackerMessage
    try {
      m = JSON.parse(data) as TrackerMessage
    } catch {
      return this.o.onwarning?.('tracker: reply is not JSON')
    }
    if (typeof m !== 'object' || !m || m.action !== 'announce') return
    const ih = fromBinary(m.info_hash)
    if (!ih || !equal(ih, this.o.infoHash)) return
    this.retries = 0 // the backoff restarts once the tracker answers, not when a socket merely opens
    if (m['failure reason']) return this.o.onwarning?.(`tracker: ${m['failure reason']}`)
    if (m['warning message']) this.o.onwarning?.(`tracker: ${m['warning message']}`)
    if (typeof m.interval === 'number' && m.interval > 0) {
      const changed = m.interval !== this.interval
      this.interval = m.interval
      if (changed) this.schedule()
    }
    const peer = fromBinary(m.peer_id)
    if (!peer || peer.length !== 20 || equal(peer, this.o.peerId)) return
    if (m.offer && typeof m.offer.sdp === 'string' && typeof m.offer_id === 'string') {
      void this.answer(m.offer, m.offer_id, peer)
    } else if (m.answer && typeof m.answer.sdp === 'string' && typeof m.offer_id === 'string') {
      const conn = this.offers.get(m.offer_id)
      if (!conn) return
      this.offers.delete(m.offer_id)
      conn.peerId = peer
      conn.accept(m.answer).catch((e) => {
        conn.close()
        this.o.onwarning?.(`tracker: answer from ${hex(peer)}: ${e}`)
      })
    }
  }

  private async answer(offer: Description, offerId: string, peer: Uint8Array): Promise<void> {
    if (this.o.state().want <= 0 || (this.o.accept && !this.o.accept(peer))) return
    const conn = this.track(new Conn(this.o.rtc, (c, dc) => this.o.onpeer(dc, c, peer), this.o.connect))
    conn.peerId = peer
    try {
      const answer = await conn.answer({ type: 'offer', sdp: offer.sdp })
      if (this.destroyed) return conn.close()
      this.send({
        action: 'announce',
        info_hash: binary(this.o.infoHash),
        peer_id: binary(this.o.peerId),
        to_peer_id: binary(peer),
        answer,
        offer_id: offerId,
      })
    } catch (e) {
      conn.close()
      this.o.onwarning?.(`tracker: answering ${hex(peer)}: ${e}`)
    }
  }
}
