// Tests of the engine core against faults in its surroundings, with fakes in place of the network: a tracker
// whose socket closes at the wrong moment, a peer that sends blocks of the wrong length or chokes at the wrong
// moment, a peer connection that fails while the engine runs in a worker. Run from p2p_units.ts.

import { encode } from '../src/p2p/bencode'
import { binary, concat, randomBytes, sha1 } from '../src/p2p/bytes'
import { type Connect, type Description, type Link, linkVia, serveLinks } from '../src/p2p/rtc'
import { Torrent } from '../src/p2p/torrent'
import { TrackerClient } from '../src/p2p/tracker'

type Check = (ok: boolean, what: string) => void

// A WebSocket that opens and closes when the test says, and keeps what is sent on it.
class FakeSocket {
  static readonly OPEN = 1
  static made: FakeSocket[] = []
  readyState = 0
  sent: string[] = []
  onopen?: () => void
  onmessage?: (e: { data: unknown }) => void
  onclose?: () => void
  constructor(readonly url: string) {
    FakeSocket.made.push(this)
  }
  open(): void {
    this.readyState = FakeSocket.OPEN
    this.onopen?.()
  }
  send(s: string): void {
    this.sent.push(s)
  }
  close(): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.()
  }
}

// heldLinks makes peer connections whose offers are complete only once release is called (ICE gathering, up
// to GATHER_MS in a browser). An answer is made at once, and its connection's data channel is dc, if given.
function heldLinks(dc?: () => RTCDataChannel): { connect: Connect; release: () => void; closed: () => number } {
  let release!: () => void
  const gathered = new Promise<void>((r) => (release = r))
  let closed = 0
  const connect: Connect = () => {
    const link: Link = {
      offer: async (): Promise<Description> => (await gathered, { type: 'offer', sdp: 'v=0' }),
      answer: async (): Promise<Description> => {
        if (dc) setTimeout(() => link.ondatachannel?.(dc()))
        return { type: 'answer', sdp: 'v=0' }
      },
      accept: async () => {},
      close: () => void closed++,
    }
    return link
  }
  return { connect, release, closed: () => closed }
}

// FakeChannel is an open data channel whose other end is the test: it keeps what the engine sends.
class FakeChannel {
  readyState = 'open'
  binaryType = 'arraybuffer'
  bufferedAmount = 0
  sent: Uint8Array[] = []
  closed = false
  onmessage?: (e: { data: ArrayBuffer }) => void
  onclose?: () => void
  onopen?: () => void
  send(b: Uint8Array): void {
    this.sent.push(b.slice())
  }
  close(): void {
    if (this.closed) return
    this.closed = true
    this.readyState = 'closed'
    this.onclose?.()
  }
  deliver(b: Uint8Array): void {
    this.onmessage?.({ data: b.slice().buffer })
  }
}

// message frames a peer wire message: its id, 4-byte integers, then a payload.
function message(id: number, ints: number[], payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(5 + 4 * ints.length + payload.length)
  const v = new DataView(b.buffer)
  v.setUint32(0, b.length - 4)
  b[4] = id
  ints.forEach((x, k) => v.setUint32(5 + 4 * k, x))
  b.set(payload, 5 + 4 * ints.length)
  return b
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

// trackerTests: the socket closes while an announce's offers are being made. The client must reconnect (after
// RETRY_MIN_MS, 1 to 1.25 s) rather than schedule an announce on no socket, which cancelled the reconnection:
// the page then found no new peer for the rest of its life. The offers made for the lost announce are closed.
export async function trackerTests(check: Check): Promise<void> {
  const real = globalThis.WebSocket
  globalThis.WebSocket = FakeSocket as unknown as typeof WebSocket
  FakeSocket.made = []
  const links = heldLinks()
  const t = new TrackerClient({
    url: 'ws://tracker.invalid/announce',
    infoHash: new Uint8Array(20),
    peerId: randomBytes(20),
    rtc: {},
    connect: links.connect,
    state: () => ({ uploaded: 0, downloaded: 0, left: 1, want: 5, starving: true }),
    onpeer: () => {},
  })
  try {
    const [first] = FakeSocket.made
    check(FakeSocket.made.length === 1, `tracker: ${FakeSocket.made.length} sockets at the start, want 1`)
    first.open() // the first announce waits for its offers
    await new Promise((r) => setTimeout(r, 50))
    first.close()
    links.release()
    await new Promise((r) => setTimeout(r, 1600))
    check(FakeSocket.made.length === 2, `tracker: ${FakeSocket.made.length} sockets 1.6 s after one closed during an announce, want 2`)
    check(first.sent.length === 0, `tracker: ${first.sent.length} messages on a closed socket`)
    check(links.closed() === 5, `tracker: ${links.closed()} of the lost announce's 5 offers closed`)
  } finally {
    t.destroy()
    globalThis.WebSocket = real
  }
}

// withPeer runs f with a torrent of one 32 KiB piece (two blocks) and a remote peer, the test, that holds it and
// unchokes: its data channel is open, both handshakes are done, and the engine has asked for blocks.
async function withPeer(check: Check, name: string, f: (t: Torrent, dc: FakeChannel, data: Uint8Array, warnings: string[]) => Promise<void>): Promise<void> {
  const data = randomBytes(32768)
  const info = encode({ name: 'f.bin', 'piece length': data.length, pieces: await sha1(data), length: data.length })
  const infoHash = await sha1(info)
  const remote = randomBytes(20)
  const real = globalThis.WebSocket
  globalThis.WebSocket = FakeSocket as unknown as typeof WebSocket
  FakeSocket.made = []
  const dc = new FakeChannel()
  const links = heldLinks(() => dc as unknown as RTCDataChannel)
  const warnings: string[] = []
  const t = await Torrent.create({ info, infoHash, trackers: ['ws://tracker.invalid/announce'], connect: links.connect })
  t.on('warning', (w) => warnings.push(w))
  try {
    const [sock] = FakeSocket.made
    sock.open()
    // The tracker relays a remote peer's offer; the engine answers, and the data channel opens.
    sock.onmessage?.({ data: JSON.stringify({ action: 'announce', info_hash: binary(infoHash), peer_id: binary(remote),
      offer: { type: 'offer', sdp: 'v=0' }, offer_id: binary(randomBytes(20)) }) })
    for (let n = 0; n < 50 && !dc.sent.length; n++) await wait(10)
    dc.deliver(concat([new Uint8Array([19]), new TextEncoder().encode('BitTorrent protocol'), new Uint8Array(8), infoHash, remote]))
    dc.deliver(concat([message(5, [], new Uint8Array([0x80])), message(1, [])])) // bitfield: the piece; unchoke
    const requests = () => {
      const out = concat(dc.sent).subarray(68) // past the handshake
      let n = 0
      for (let at = 0; at + 5 <= out.length; at += 4 + new DataView(out.buffer, out.byteOffset + at).getUint32(0)) n += +(out[at + 4] === 6)
      return n
    }
    for (let n = 0; n < 50 && requests() < 2; n++) await wait(10)
    check(requests() === 2, `${name}: the engine asked the peer for ${requests()} blocks, want 2`)
    await f(t, dc, data, warnings)
  } finally {
    t.destroy()
    globalThis.WebSocket = real
  }
}

// shortBlockTests: a peer answers a request with a block of another length than asked (here none: a piece
// message of 9 bytes). Before, the request was struck off and its block left marked as requested, by no one: no
// peer would be asked for it again, nor would it ever count as late, and a page waited on it until its stream
// gave up. The peer is now dropped, its requests freed.
export function shortBlockTests(check: Check): Promise<void> {
  return withPeer(check, 'short block', async (_t, dc, _data, warnings) => {
    dc.deliver(message(7, [0, 0]))
    await wait(50)
    check(dc.closed, `short block: the peer that sent a block of 0 bytes is still connected (warnings: ${warnings.join('; ')})`)
    check(warnings.some((w) => w.includes('block of 0 bytes')), `short block: no warning about it (warnings: ${warnings.join('; ')})`)
  })
}

// chokeTests: a peer sends a piece's last block and a choke in one message, so the choke comes while the piece
// is being verified. Before, the choke gave the piece up (its blocks were all in, none requested) and the
// verified piece was thrown away.
export function chokeTests(check: Check): Promise<void> {
  return withPeer(check, 'choke', async (t, dc, data) => {
    dc.deliver(concat([message(7, [0, 0], data.subarray(0, 16384)), message(7, [0, 16384], data.subarray(16384)), message(0, [])]))
    for (let n = 0; n < 50 && !t.have.get(0); n++) await wait(10)
    check(t.have.get(0), 'choke: a piece whose last block came with a choke was not kept')
  })
}

// failedLinkTests: an engine in a worker has its page make its peer connections (linkVia, serveLinks). One
// that fails on the page (ICE or DTLS) ends there and at the worker's end; the page's connection must be
// closed too (before, the worker's close asked nothing of a link already gone, and the page's
// RTCPeerConnection stayed open for the page's life), and a request still waiting on it fails.
export async function failedLinkTests(check: Check): Promise<void> {
  let made: Link | undefined
  let closed = false
  const page: Connect = () => {
    const link: Link = {
      offer: () => new Promise<Description>(() => {}), // still gathering when it fails
      answer: () => new Promise<Description>(() => {}),
      accept: async () => {},
      close: () => void (closed = true),
    }
    made = link
    return link
  }
  const ch = new MessageChannel()
  serveLinks(ch.port2, page)
  const link = linkVia(ch.port1)({})
  let ended: boolean | undefined
  link.onend = (failed) => (ended = failed)
  const offer = link.offer('x').then(() => 'answered', (e: unknown) => `failed: ${e}`)
  for (let n = 0; n < 50 && !made; n++) await wait(10)
  made?.onend?.(true)
  const got = await Promise.race([offer, wait(1000).then(() => 'still waiting')])
  check(ended === true, `failed link: the worker's end heard ${ended}, want a failure`)
  check(closed, "failed link: the page's connection was left open")
  check(got.startsWith('failed'), `failed link: the offer asked of it: ${got}`)
  ch.port1.close()
  ch.port2.close()
}
