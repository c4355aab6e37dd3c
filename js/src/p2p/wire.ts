// The BitTorrent peer wire protocol (BEP 3) with the Fast extension (BEP 6) and the LTEP handshake (BEP 10),
// over any reliable, ordered message pipe (an RTCDataChannel). Messages may be split across or packed into
// pipe messages in any way: the reader frames by the length prefixes alone.

import { Bits } from './bits'
import { concat, equal } from './bytes'

// Pipe is where the wire writes; the owner feeds what arrives to Wire.push and calls Wire.close at the end.
export interface Pipe {
  send(b: Uint8Array): void
  close(): void
}

export type Msg =
  | { t: 'handshake'; infoHash: Uint8Array; peerId: Uint8Array }
  | { t: 'choke' | 'unchoke' | 'interested' | 'uninterested' | 'haveAll' | 'haveNone' | 'keepalive' }
  | { t: 'have' | 'allowedFast' | 'suggest'; i: number }
  | { t: 'bitfield'; bits: Uint8Array }
  | { t: 'request' | 'cancel' | 'reject'; i: number; off: number; len: number }
  | { t: 'piece'; i: number; off: number; data: Uint8Array[] } // the block, in the pieces it arrived in
  | { t: 'extended'; id: number; payload: Uint8Array }

// BLOCK is the request size every client uses (BEP 3 recommends 16 KiB; larger requests get peers dropped).
export const BLOCK = 1 << 14
// MAX_MESSAGE bounds one message: a piece message of the largest block any client requests (128 KiB, past
// which BEP 3 clients disconnect) or a bitfield of a million pieces, with headers.
const MAX_MESSAGE = (1 << 17) + 16

// MAX_SEND bounds the pipe messages made by packing small messages together: a 16 KiB block's piece
// message is sent alone, and what peers' data channels accept (pion's default maximum is 64 KiB) is never
// exceeded by packing.
const MAX_SEND = 1 << 14

const PROTOCOL = new TextEncoder().encode('\x13BitTorrent protocol')
const IDS = ['choke', 'unchoke', 'interested', 'uninterested', 'have', 'bitfield', 'request', 'piece', 'cancel']
const FAST_IDS: Record<number, Msg['t']> = { 13: 'suggest', 14: 'haveAll', 15: 'haveNone', 16: 'reject', 17: 'allowedFast' }
const ID_OF: Record<string, number> = { haveAll: 14, haveNone: 15, reject: 16, extended: 20 }
IDS.forEach((t, i) => (ID_OF[t] = i))

export class WireError extends Error {}

export class Wire {
  amChoking = true
  amInterested = false
  peerChoking = true
  peerInterested = false
  // Set once both handshakes are in: whether both sides speak the Fast extension and LTEP.
  fast = false
  ltep = false
  peerId?: Uint8Array
  closed = false
  onmsg: (m: Msg) => void = () => {}
  onclose: (err?: Error) => void = () => {}

  private sentHandshake = false
  private peerFast = false
  private peerLtep = false
  private out: Uint8Array[] = [] // messages written in this task, not yet sent
  private chunks: Uint8Array[] = []
  private buffered = 0
  private need = PROTOCOL.length + 48 // the handshake first, then 4-byte lengths and messages in turn
  private inMessage = false
  private gotHandshake = false

  constructor(private pipe: Pipe) {}

  // handshake sends ours: reserved bits for LTEP (byte 5, 0x10) and Fast (byte 7, 0x04), as WebTorrent sets
  // them.
  handshake(infoHash: Uint8Array, peerId: Uint8Array): void {
    const reserved = new Uint8Array(8)
    reserved[5] = 0x10
    reserved[7] = 0x04
    this.sentHandshake = true
    this.write(concat([PROTOCOL, reserved, infoHash, peerId]))
    this.agree()
  }

  // push feeds bytes received from the pipe.
  push(chunk: Uint8Array): void {
    if (this.closed) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    try {
      while (!this.closed && this.buffered >= this.need) {
        if (this.inMessage && this.need > 9 && this.chunks[0][0] === 7) this.pieceMessage()
        else this.parse(this.take(this.need))
      }
    } catch (e) {
      this.close(e instanceof Error ? e : new WireError(String(e)))
    }
  }

  close(err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.chunks = []
    try {
      this.pipe.close()
    } catch {}
    this.onclose(err)
  }

  choke(): void {
    if (!this.amChoking) this.send('choke')
    this.amChoking = true
  }
  unchoke(): void {
    if (this.amChoking) this.send('unchoke')
    this.amChoking = false
  }
  interested(): void {
    if (!this.amInterested) this.send('interested')
    this.amInterested = true
  }
  uninterested(): void {
    if (this.amInterested) this.send('uninterested')
    this.amInterested = false
  }
  have(i: number): void {
    this.send('have', [i])
  }
  // bitfield sends what we hold: as have-all or have-none when the Fast extension allows.
  bitfield(bits: Bits): void {
    if (this.fast && bits.full()) this.send('haveAll')
    else if (this.fast && !bits.count) this.send('haveNone')
    else this.send('bitfield', [], bits.bytes)
  }
  request(i: number, off: number, len: number): void {
    this.send('request', [i, off, len])
  }
  cancel(i: number, off: number, len: number): void {
    this.send('cancel', [i, off, len])
  }
  reject(i: number, off: number, len: number): void {
    if (this.fast) this.send('reject', [i, off, len])
  }
  piece(i: number, off: number, data: Uint8Array): void {
    this.send('piece', [i, off], data)
  }
  keepalive(): void {
    this.write(new Uint8Array(4))
  }
  extended(id: number, payload: Uint8Array): void {
    if (this.ltep) this.write(frame(20, [], concat([new Uint8Array([id]), payload])))
  }

  private send(t: string, ints: number[] = [], payload?: Uint8Array): void {
    this.write(frame(ID_OF[t], ints, payload))
  }

  // write queues a message; the queue goes out at the end of the current task, small messages packed
  // together. Each RTCDataChannel.send is a synchronous hop to Chromium's network thread (about 2 ms each
  // on a busy machine in a profile here): a fill of 64 requests sent one by one held the page's main thread
  // for over 80 ms.
  private write(b: Uint8Array): void {
    if (this.closed) return
    if (!this.out.length) queueMicrotask(() => this.flush())
    this.out.push(b)
  }

  private flush(): void {
    const out = this.out
    this.out = []
    try {
      for (let k = 0; k < out.length && !this.closed; ) {
        let n = out[k].length
        let j = k + 1
        while (j < out.length && n + out[j].length <= MAX_SEND) n += out[j++].length
        this.pipe.send(j === k + 1 ? out[k] : concat(out.slice(k, j)))
        k = j
      }
    } catch (e) {
      this.close(e instanceof Error ? e : new WireError(String(e)))
    }
  }

  private agree(): void {
    this.fast = this.sentHandshake && this.peerFast
    this.ltep = this.sentHandshake && this.peerLtep
  }

  // pieceMessage reads a piece message whose bytes are all buffered, handing its block on as the parts of
  // the pipe's messages it lies in: a block spans two data-channel messages from most peers (a seeder
  // sending 16 KiB messages puts a block's 16 KiB and its 13 bytes of headers in two), and copying it whole
  // here was one copy of every byte received, and an allocation per block, before the piece buffer's.
  private pieceMessage(): void {
    const n = this.need
    const h = this.take(9)
    const v = new DataView(h.buffer, h.byteOffset, 9)
    this.need = 4
    this.inMessage = false
    this.onmsg({ t: 'piece', i: v.getUint32(1), off: v.getUint32(5), data: this.takeParts(n - 9) })
  }

  // takeParts removes n buffered bytes as the subarrays of the chunks they lie in.
  private takeParts(n: number): Uint8Array[] {
    this.buffered -= n
    const out: Uint8Array[] = []
    while (n > 0) {
      const c = this.chunks[0]
      const m = Math.min(c.length, n)
      if (m) out.push(c.subarray(0, m))
      n -= m
      if (m === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(m)
    }
    return out
  }

  // take removes n buffered bytes, copying only when they span chunks.
  private take(n: number): Uint8Array {
    this.buffered -= n
    const first = this.chunks[0]
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    let k = 0
    while (k < n) {
      const c = this.chunks[0]
      const m = Math.min(c.length, n - k)
      out.set(c.subarray(0, m), k)
      k += m
      if (m === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(m)
    }
    return out
  }

  private parse(b: Uint8Array): void {
    if (!this.gotHandshake) {
      if (!equal(b.subarray(0, PROTOCOL.length), PROTOCOL)) throw new WireError('wire: not a BitTorrent handshake')
      this.gotHandshake = true
      const r = b.subarray(20, 28)
      this.peerLtep = !!(r[5] & 0x10)
      this.peerFast = !!(r[7] & 0x04)
      this.agree()
      this.peerId = b.slice(48, 68)
      this.need = 4
      this.onmsg({ t: 'handshake', infoHash: b.slice(28, 48), peerId: this.peerId })
      return
    }
    const v = new DataView(b.buffer, b.byteOffset, b.length)
    if (!this.inMessage) {
      const n = v.getUint32(0)
      if (n > MAX_MESSAGE) throw new WireError(`wire: message of ${n} bytes`)
      if (n === 0) return this.onmsg({ t: 'keepalive' })
      this.need = n
      this.inMessage = true
      return
    }
    this.need = 4
    this.inMessage = false
    const id = b[0]
    const u = (k: number) => v.getUint32(1 + 4 * k)
    const sized = (n: number) => {
      if (b.length !== n) throw new WireError(`wire: message ${id} of ${b.length} bytes`)
    }
    const t = IDS[id] ?? FAST_IDS[id]
    switch (t) {
      case 'choke':
        this.peerChoking = true
        break
      case 'unchoke':
        this.peerChoking = false
        break
      case 'interested':
        this.peerInterested = true
        break
      case 'uninterested':
        this.peerInterested = false
        break
    }
    switch (id) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 14:
      case 15:
        sized(1)
        return this.onmsg({ t: t as 'choke' })
      case 4:
      case 13:
      case 17:
        sized(5)
        return this.onmsg({ t: t as 'have', i: u(0) })
      case 5:
        return this.onmsg({ t: 'bitfield', bits: b.subarray(1) })
      case 6:
      case 8:
      case 16:
        sized(13)
        return this.onmsg({ t: t as 'request', i: u(0), off: u(1), len: u(2) })
      case 7:
        if (b.length < 9) sized(9)
        return this.onmsg({ t: 'piece', i: u(0), off: u(1), data: [b.subarray(9)] })
      case 20:
        if (b.length < 2) sized(2)
        return this.onmsg({ t: 'extended', id: b[1], payload: b.subarray(2) })
    }
    // Unknown messages (PORT and others) are skipped, as BEP 3 asks.
  }
}

function frame(id: number, ints: number[], payload?: Uint8Array): Uint8Array {
  const n = 1 + 4 * ints.length + (payload?.length ?? 0)
  const b = new Uint8Array(4 + n)
  const v = new DataView(b.buffer)
  v.setUint32(0, n)
  b[4] = id
  ints.forEach((x, k) => v.setUint32(5 + 4 * k, x))
  if (payload) b.set(payload, 5 + 4 * ints.length)
  return b
}
