// Table and round-trip tests of the engine core's pure parts (bencode, the peer wire's framing, the info
// dictionary, piece order, webseed URLs) and of the page engine's (its store, byte ranges, stream deadlines,
// when it reports), run in a browser page by p2p_test.go. run returns the failures.

import { BencodeError, type Encodable, decode, encode, rawValue } from '../src/p2p/bencode'
import { Bits } from '../src/p2p/bits'
import { concat, equal, hex, randomBytes, sha1 } from '../src/p2p/bytes'
import { headPieces } from '../src/p2p/head'
import { type Info, parseInfo } from '../src/p2p/metainfo'
import { Picker } from '../src/p2p/picker'
import { linkHere } from '../src/p2p/rtc'
import { fileURL } from '../src/p2p/webseed'
import { type Msg, Wire } from '../src/p2p/wire'
import { byteRange } from '../src/range'
import { relay } from '../src/relay'
import { type Clock, REPORT_EVERY_MS, REPORT_IDLE_MS, ReportSchedule } from '../src/reporting'
import { PageStore } from '../src/store'
import { MAX_CHUNK, nextChunk, READ_AHEAD, type Stream, streamWants } from '../src/streams'
import { chokeTests, failedLinkTests, shortBlockTests, trackerTests } from './p2p_faults'

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const show = (b: Uint8Array): string => JSON.stringify(String.fromCharCode(...b))

// A seeded xorshift, so a failure can be replayed.
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x % n
  }
}

export async function run(): Promise<string[]> {
  const fails: string[] = []
  const check = (ok: boolean, what: string) => {
    if (!ok) fails.push(what)
  }
  const guard = async (name: string, f: () => void | Promise<void>) => {
    try {
      await f()
    } catch (e) {
      fails.push(`${name}: threw ${e}`)
    }
  }
  await guard('bencode', () => bencodeTests(check))
  await guard('wire', () => wireTests(check))
  await guard('metainfo', () => metainfoTests(check))
  await guard('picker', () => pickerTests(check))
  await guard('webseed', () => webseedTests(check))
  await guard('head', () => headTests(check))
  await guard('page store', () => pageStoreTests(check))
  await guard('byte ranges', () => rangeTests(check))
  await guard('stream deadlines', () => streamTests(check))
  await guard('stream chunks', () => chunkTests(check))
  await guard('stream relay', () => relayTests(check))
  await guard('report schedule', () => reportTests(check))
  await guard('ice gathering', () => gatheringTests(check))
  await guard('tracker reconnect', () => trackerTests(check))
  await guard('short block', () => shortBlockTests(check))
  await guard('choke while verifying', () => chokeTests(check))
  await guard('failed link', () => failedLinkTests(check))
  return fails
}

type Check = (ok: boolean, what: string) => void

function bencodeTests(check: Check): void {
  const good: [Encodable, string][] = [
    [0, 'i0e'],
    [-42, 'i-42e'],
    [2 ** 40, 'i1099511627776e'],
    ['', '0:'],
    ['spam', '4:spam'],
    [new Uint8Array([0, 255, 10]), '3:\x00\xff\n'],
    [[], 'le'],
    [{}, 'de'],
    [{ b: 1, a: 'x', l: [1, 'y', []] }, 'd1:a1:x1:bi1e1:lli1e1:yleee'],
    [{ m: { ut_metadata: 3 }, v: 'swarmgate', reqq: 256, skip: undefined }, 'd1:md11:ut_metadatai3ee4:reqqi256e1:v9:swarmgatee'],
  ]
  for (const [v, want] of good) {
    const got = encode(v)
    check(equal(got, bytes(want)), `encode ${want}: got ${show(got)}`)
    check(equal(encode(decode(got) as Encodable), got), `decode/encode round trip of ${want}`)
  }
  const bad = ['', 'i01e', 'i-0e', 'ie', 'i1', '3:ab', '-1:', 'l', 'd1:ai1e', 'i1ei2e', 'd i1e1:ae', 'x',
    'l'.repeat(40) + 'e'.repeat(40)]
  for (const s of bad) {
    let threw = false
    try {
      decode(bytes(s))
    } catch (e) {
      threw = e instanceof BencodeError
    }
    check(threw, `decode ${JSON.stringify(s)} did not fail with BencodeError`)
  }
  // The raw info dictionary of a .torrent, as its infohash covers it.
  const info = encode({ name: 'x', 'piece length': 16384, pieces: new Uint8Array(20), length: 1 })
  const torrent = concatAll([bytes('d8:announce3:ws:4:info'), info, bytes('8:url-listle3:zzzi1ee')])
  const raw = rawValue(torrent, 'info')
  check(!!raw && equal(raw, info), `rawValue(info) = ${raw && show(raw)}`)
  check(rawValue(torrent, 'nope') === undefined, 'rawValue of a missing key')
  // Round trips of random values.
  const r = rng(7)
  const value = (depth: number): Encodable => {
    switch (r(depth > 3 ? 2 : 4)) {
      case 0:
        return r(1000) - 500
      case 1:
        return Uint8Array.from({ length: r(20) }, () => r(256))
      case 2:
        return Array.from({ length: r(4) }, () => value(depth + 1))
      default: {
        const d: Record<string, Encodable> = {}
        for (let k = r(4); k > 0; k--) d[`k${r(100)}`] = value(depth + 1)
        return d
      }
    }
  }
  for (let n = 0; n < 300; n++) {
    const b = encode(value(0))
    check(equal(encode(decode(b) as Encodable), b), `random round trip ${show(b)}`)
  }
}

// wireTests sends every message from one Wire to another through a pipe that re-chunks the byte stream
// (byte by byte, at random cuts, all in one), and checks what arrives. Writes go out at the end of the
// task, small ones packed together: each await below lets them out.
async function wireTests(check: Check): Promise<void> {
  const ih = Uint8Array.from({ length: 20 }, (_, i) => i)
  const idA = Uint8Array.from({ length: 20 }, (_, i) => 100 + i)
  const block = Uint8Array.from({ length: 1 << 14 }, (_, i) => (i * 7) & 255)
  const bits = new Bits(13)
  bits.set(0)
  bits.set(12)
  const want: Msg[] = [
    { t: 'handshake', infoHash: ih, peerId: idA },
    { t: 'bitfield', bits: bits.bytes },
    { t: 'have', i: 12 },
    { t: 'interested' },
    { t: 'unchoke' },
    { t: 'request', i: 3, off: 16384, len: 16384 },
    { t: 'piece', i: 3, off: 16384, data: [block] },
    { t: 'piece', i: 4, off: 0, data: [block.subarray(0, 5)] },
    { t: 'cancel', i: 3, off: 0, len: 16384 },
    { t: 'reject', i: 9, off: 32768, len: 100 },
    { t: 'keepalive' },
    { t: 'haveAll' },
    { t: 'haveNone' },
    { t: 'extended', id: 0, payload: encode({ m: {} }) },
    { t: 'choke' },
    { t: 'uninterested' },
  ]
  const cutters: [string, (n: number) => number[]][] = [
    ['byte by byte', (n) => Array(n).fill(1)],
    ['all at once', (n) => [n]],
    ['random cuts', (n) => {
      const r = rng(n)
      const out: number[] = []
      for (let left = n; left > 0;) {
        const k = Math.min(left, 1 + r(r(2) ? 40 : 20000))
        out.push(k)
        left -= k
      }
      return out
    }],
  ]
  for (const [name, cut] of cutters) {
    const sent: Uint8Array[] = []
    const a = new Wire({ send: (b) => sent.push(b.slice()), close: () => {} })
    const got: Msg[] = []
    let closed: Error | undefined | null = null
    const b = new Wire({ send: () => {}, close: () => {} })
    b.onmsg = (m) => got.push(m)
    b.onclose = (e) => (closed = e)
    a.handshake(ih, idA)
    b.handshake(ih, ih)
    a.push(concatAll([bytes('\x13BitTorrent protocol'), new Uint8Array([0, 0, 0, 0, 0, 0x10, 0, 0x04]), ih, ih]))
    check(a.fast && a.ltep, `${name}: Fast and LTEP not agreed`)
    a.bitfield(bits)
    a.have(12)
    a.interested()
    a.unchoke()
    a.request(3, 16384, 16384)
    a.piece(3, 16384, block)
    a.piece(4, 0, block.subarray(0, 5))
    a.cancel(3, 0, 16384)
    a.reject(9, 32768, 100)
    a.keepalive()
    a.bitfield(new Bits(3, new Uint8Array([0xe0]))) // have-all under Fast
    a.bitfield(new Bits(3)) // have-none
    a.extended(0, encode({ m: {} }))
    a.choke()
    a.uninterested()
    check(sent.length === 0, `${name}: sent before the task ended`)
    await null
    check(sent.length > 1 && sent.length < want.length, `${name}: ${sent.length} sends for ${want.length} messages`)
    check(sent.every((b) => b.length <= 1 << 14 || b.length === (1 << 14) + 13), `${name}: a packed send over 16 KiB`)
    const stream = concatAll(sent)
    let off = 0
    for (const n of cut(stream.length)) {
      b.push(stream.subarray(off, off + n))
      off += n
    }
    check(closed === null, `${name}: receiver closed: ${closed}`)
    check(got.length === want.length, `${name}: ${got.length} messages, want ${want.length}`)
    want.forEach((w, k) => check(same(got[k], w), `${name}: message ${k} = ${JSON.stringify(got[k])}, want ${w.t}`))
    check(b.fast && b.ltep && b.peerChoking && !b.peerInterested, `${name}: receiver's state after the stream`)
  }
  // A peer not speaking BitTorrent, and an oversized message, close the wire with an error.
  for (const [name, stream] of [
    ['bad protocol', bytes('\x13BitTorrent protocoX' + '\x00'.repeat(48))],
    ['oversized', concatAll([bytes('\x13BitTorrent protocol'), new Uint8Array(48), new Uint8Array([0, 0x10, 0, 0, 7])])],
    ['short have', concatAll([bytes('\x13BitTorrent protocol'), new Uint8Array(48), new Uint8Array([0, 0, 0, 2, 4, 0])])],
  ] as const) {
    const w = new Wire({ send: () => {}, close: () => {} })
    let err: Error | undefined
    w.onclose = (e) => (err = e)
    w.push(stream)
    check(w.closed && err !== undefined, `${name}: wire not closed with an error`)
  }
}

function same(a: Msg | undefined, b: Msg): boolean {
  if (!a || a.t !== b.t) return false
  const av = a as unknown as Record<string, unknown>
  const bv = b as unknown as Record<string, unknown>
  for (const k of Object.keys(bv)) {
    const x = av[k]
    const y = bv[k]
    if (Array.isArray(y)) {
      // A piece message's block comes in the parts it arrived in: compare their bytes.
      if (!Array.isArray(x) || !equal(concatAll(x as Uint8Array[]), concatAll(y as Uint8Array[]))) return false
    } else if (y instanceof Uint8Array ? !(x instanceof Uint8Array && equal(x, y)) : x !== y) return false
  }
  return true
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

function metainfoTests(check: Check): void {
  const pieces = (n: number) => new Uint8Array(20 * n)
  const multi = parseInfo(
    encode({
      name: 'site',
      'piece length': 1024,
      pieces: pieces(3),
      files: [
        { length: 1000, path: ['img', 'a b.jpg'] },
        { length: 24, path: ['.pad', '24'], attr: 'p' },
        { length: 1500, path: ['z.bin'] },
      ],
    }),
  )
  check(multi.multi && multi.count === 3 && multi.length === 2524, `multi-file: ${JSON.stringify(multi)}`)
  check(multi.files[1].pad && !multi.files[0].pad && multi.files[2].offset === 1024, 'multi-file: padding and offsets')
  check(multi.files[0].path.join('/') === 'img/a b.jpg', 'multi-file: path')
  const single = parseInfo(encode({ name: 'one.bin', 'piece length': 16384, pieces: pieces(1), length: 5 }))
  check(!single.multi && single.files.length === 1 && single.files[0].path[0] === 'one.bin', 'single-file')
  const bad: [string, Encodable][] = [
    ['no pieces', { name: 'x', 'piece length': 1, length: 1 }],
    ['too few pieces', { name: 'x', 'piece length': 1, pieces: pieces(1), length: 2 }],
    ['dot-dot path', { name: 'x', 'piece length': 4, pieces: pieces(1), files: [{ length: 1, path: ['..', 'etc'] }] }],
    ['zero piece length', { name: 'x', 'piece length': 0, pieces: pieces(1), length: 1 }],
  ]
  for (const [name, v] of bad) {
    let threw = false
    try {
      parseInfo(encode(v))
    } catch {
      threw = true
    }
    check(threw, `metainfo ${name} accepted`)
  }
}

function pickerTests(check: Check): void {
  const info = parseInfo(encode({ name: 'x', 'piece length': 100, pieces: new Uint8Array(20 * 10), length: 1000 }))
  const p = new Picker(info)
  p.avail.fill(2)
  p.avail[7] = 1
  p.avail[2] = 1
  p.rarity()
  const o = p.ordered(0)
  check(o.slice(0, 2).sort().join() === '2,7' && o.length === 10, `rarest first: ${o}`)
  // Equals come in each client's own random order: two clients in the same state rarely agree (1 in 8!).
  const q = new Picker(info)
  q.avail.set(p.avail)
  q.rarity()
  check(q.ordered(0).slice(2).join() !== o.slice(2).join(), `two clients take equals in the same order: ${o}`)
  p.want([
    { start: 550, end: 700, priority: 1 }, // pieces 5 and 6
    { start: 899, end: 900, deadline: 2000 }, // piece 8
    { start: 0, end: 1, deadline: 1000 }, // piece 0, due sooner
    { start: 300, end: 500, priority: 0.5, ordered: true }, // pieces 3 and 4, in order
  ])
  const w = p.ordered(0)
  check(w.slice(0, 2).join() === '0,8' && w.slice(2, 4).sort().join() === '5,6' && w.slice(4, 6).join() === '3,4' &&
    w.slice(6, 8).sort().join() === '2,7', `deadlines, then priority (an ordered range in order), then rarity: ${w}`)
  // Among pieces with deadlines priority comes first: a page's streams all wait, and the one served last has
  // the latest deadline. Two ordered ranges of one priority advance together.
  p.want([
    { start: 0, end: 200, priority: 2.5, deadline: 5000, ordered: true }, // pieces 0 and 1: the first image
    { start: 500, end: 800, priority: 2.5, deadline: 5000, ordered: true }, // pieces 5 to 7: a video beside it
    { start: 300, end: 400, priority: 1.5, deadline: 1000 }, // piece 3: an image below, due sooner
    { start: 900, end: 1000, priority: 9 }, // piece 9: no deadline
  ])
  const s = p.ordered(1000)
  check(s.slice(0, 6).join() === '0,5,1,6,7,3' && s[6] === 9, `priority before deadline, streams side by side: ${s}`)
}

function webseedTests(check: Check): void {
  const multi = parseInfo(
    encode({ name: 'v 1', 'piece length': 4, pieces: new Uint8Array(20), files: [{ length: 3, path: ['a', 'b c'] }] }),
  )
  const single = parseInfo(encode({ name: 'f.bin', 'piece length': 4, pieces: new Uint8Array(20), length: 3 }))
  const cases: [string, string][] = [
    [fileURL('http://h/seed/', multi, multi.files[0]), 'http://h/seed/v%201/a/b%20c'],
    [fileURL('http://h/seed', multi, multi.files[0]), 'http://h/seed/v%201/a/b%20c'],
    [fileURL('http://h/seed/', single, single.files[0]), 'http://h/seed/f.bin'],
    [fileURL('http://h/x.bin', single, single.files[0]), 'http://h/x.bin'],
  ]
  for (const [got, want] of cases) check(got === want, `webseed URL ${got}, want ${want}`)
}

// The page's store (src/store.ts) in the test page's origin-private file system: memory for two pieces of
// five; past it, written pieces leave memory and are read back from the version's file; a later page view
// loads the pieces that verify.
async function pageStoreTests(check: Check): Promise<void> {
  const pl = 1024
  const ps = [0, 1, 2, 3, 4].map((i) => randomBytes(i === 4 ? 100 : pl))
  const length = 4 * pl + 100
  const info = (hashes: Uint8Array[]): Info => ({ name: 'f', pieceLength: pl, pieces: concat(hashes), count: 5, length,
    files: [{ path: ['f'], length, offset: 0, pad: false }], multi: false })
  const good = await Promise.all(ps.map((p) => sha1(p)))
  const name = hex(randomBytes(20))
  let stored = 0
  const s = new PageStore(name, info(good), 2 * pl, (n) => (stored += n))
  ps.forEach((p, i) => s.put(i, p))
  await s.flush()
  check(stored === length, `page store: wrote ${stored} bytes, want ${length}`)
  const first = s.get(0)
  check(first instanceof Promise, 'page store: the oldest piece is still in memory past the bound')
  check(equal((await first) ?? new Uint8Array(0), ps[0]), 'page store: piece 0 read back differs')
  check(s.get(4) === ps[4], 'page store: the newest piece left memory')
  const blob = new Uint8Array(await (await s.blob(100, length - 200, 'x/y')).arrayBuffer())
  check(equal(blob, concat(ps).subarray(100, length - 100)), 'page store: blob differs from the pieces')
  const again = await new PageStore(name, info(good), 2 * pl).load()
  check(again.join() === '0,1,2,3,4', `page store: a later view loads pieces ${again}, want all five`)
  const bad = good.slice()
  bad[2] = new Uint8Array(20)
  const some = await new PageStore(name, info(bad), 2 * pl).load()
  check(some.join() === '0,1,3,4', `page store: a later view loads pieces ${some}, want all but the one that does not verify`)
  await (await (await navigator.storage.getDirectory()).getDirectoryHandle('swarmgate')).removeEntry(name)
  // A Blob of pieces that left memory stays readable once the version's file is written again. It holds slices
  // of the File read before, and the File API allows a browser to refuse a File whose file has changed since;
  // Chromium reads them (a write keeps the file's earlier bytes), and this checks that it still does.
  const name2 = hex(randomBytes(20))
  const s2 = new PageStore(name2, info(good), 2 * pl)
  ps.slice(0, 4).forEach((p, i) => s2.put(i, p))
  await s2.flush()
  const early = await s2.blob(0, 4 * pl, 'x/y')
  s2.put(4, ps[4])
  await s2.flush()
  const read = await early.arrayBuffer().then((b) => new Uint8Array(b), (e: unknown) => `${e}`)
  check(read instanceof Uint8Array && equal(read, concat(ps.slice(0, 4))), `page store: a blob made before the file was written again: ${read instanceof Uint8Array ? 'differs' : read}`)
  await (await (await navigator.storage.getDirectory()).getDirectoryHandle('swarmgate')).removeEntry(name2)
}

// What a stream wants, and by when (src/streams.ts), in each of the states that change it.
function streamTests(check: Check): void {
  const MB = 1 << 20
  const due = (w: number) => w + 1500 // the fallback after the wait
  const video: Stream = { pos: 8 * MB, end: 16 * MB, priority: 2, waiting: 1010 }
  const json = (w: unknown) => JSON.stringify(w)
  const ahead = { start: 8 * MB, end: 8 * MB + READ_AHEAD, priority: 2.5, deadline: 2510, ordered: true }
  const c = { crowded: false, swarmed: false, due }

  // Outside a crowd, before any peer has sent bytes: the read-ahead window, due at the fallback, and the piece
  // the reader waits for, due at once.
  let w = streamWants(video, c)
  check(json(w) === json([ahead, { start: 8 * MB, end: 8 * MB + 1, priority: 2.5, deadline: 1010 }]), `before any peer: ${json(w)}`)
  // Once a peer has sent bytes, or in a crowd with or without peers: the read-ahead window alone.
  for (const cc of [{ ...c, swarmed: true }, { ...c, crowded: true }, { ...c, crowded: true, swarmed: true }]) {
    w = streamWants(video, cc)
    check(json(w) === json([ahead]), `${json(cc)}: ${json(w)}`)
  }
  // A reader that does not wait (a video's buffer is full): nothing due. The window ends at the file's end.
  w = streamWants({ ...video, waiting: 0 }, c)
  check(w.length === 1 && w[0].deadline === undefined, `not waiting: ${json(w)}`)
  w = streamWants({ ...video, pos: 15 * MB }, { ...c, swarmed: true })
  check(w.length === 1 && w[0].end === 16 * MB, `near the end: ${json(w)}`)
  // An image's window is due at once with the piece its reader waits for, before any peer, and only then.
  const image: Stream = { pos: MB, end: MB + 700_000, priority: 2, waiting: 1010, image: true }
  w = streamWants(image, c)
  check(json(w[1]) === json({ start: MB, end: MB + 700_000, priority: 2.5, deadline: 1010 }), `image before any peer: ${json(w)}`)
  w = streamWants(image, { ...c, swarmed: true })
  check(w.length === 1 && w[0].deadline === due(1010), `image once a peer has sent: ${json(w)}`)
  // An image's pieces come in no order (the swarm's, so that clients trade): it shows once all of it is in.
  check(!w[0].ordered && streamWants(video, { ...c, swarmed: true })[0].ordered === true, `order: ${json(w)}`)
  // An image larger than READ_AHEAD is wanted whole in its window: it shows once all of it is in.
  const big: Stream = { ...image, end: MB + READ_AHEAD + 1277 }
  for (const cc of [c, { ...c, crowded: true }]) {
    w = streamWants(big, cc)
    check(w.every((x) => x.end === big.end), `image past READ_AHEAD, ${json(cc)}: ${json(w)}`)
  }
}

// What a stream reads at once (src/streams.ts): every verified piece in a row from its position, in one chunk.
async function chunkTests(check: Check): Promise<void> {
  const pl = 1000
  const data = randomBytes(5500) // six pieces, the last of 500 bytes
  const piece = (i: number) => data.subarray(i * pl, Math.min((i + 1) * pl, data.length))
  const read = async (pos: number, end: number, held: number[], stored = held) =>
    nextChunk({ pos, end }, pl, (i) => held.includes(i), (i) => (stored.includes(i) ? Promise.resolve(piece(i)) : undefined))
  const want = (c: Uint8Array | undefined, a: number, b: number, what: string) =>
    check(!!c && equal(c, data.subarray(a, b)), `${what}: got ${c ? c.length : 'nothing'}, want bytes ${a}-${b}`)
  // From the middle of piece 1, with pieces 1 to 3 in and 5 too: to the end of piece 3, not past the gap.
  want(await read(1250, 5500, [1, 2, 3, 5]), 1250, 4000, 'pieces in a row')
  // The stream's end bounds it, mid-piece; the last, short piece ends the torrent.
  want(await read(1250, 2600, [1, 2, 3]), 1250, 2600, "the stream's end")
  want(await read(4100, 5500, [4, 5]), 4100, 5500, 'the last piece')
  // Nothing while the piece at the position is not in, or not readable from the store.
  check((await read(1250, 5500, [2, 3])) === undefined, 'the first piece missing: got a chunk')
  check((await read(1250, 5500, [1, 2], [])) === undefined, 'the first piece unreadable: got a chunk')
  want(await read(1250, 5500, [1, 2, 3], [1, 2]), 1250, 3000, 'a later piece unreadable')
  // The chunk is a copy: the store's piece is left whole when the chunk's buffer is transferred.
  const c = await read(0, 1000, [0])
  check(!!c && c.buffer !== data.buffer, "the chunk shares the store's buffer")
  // At most MAX_CHUNK at once.
  const big = MAX_CHUNK + 3 * pl
  const many = Array.from({ length: Math.ceil(big / pl) }, (_, i) => i)
  const zero = new Uint8Array(pl)
  const b = await nextChunk({ pos: 10, end: big }, pl, () => true, (i) => (many.includes(i) ? zero : undefined))
  check(b?.length === MAX_CHUNK, `a long run: ${b?.length} bytes, want MAX_CHUNK`)
}

// The service worker's Range parsing (src/range.ts): [start, end) of a file of 1000 bytes.
function rangeTests(check: Check): void {
  const cases: [string | null, ReturnType<typeof byteRange>][] = [
    [null, null],
    ['bytes=0-', [0, 1000]],
    ['bytes=0-0', [0, 1]],
    ['bytes=100-199', [100, 200]],
    ['bytes=900-5000', [900, 1000]],
    ['bytes=-100', [900, 1000]],
    ['bytes=-5000', [0, 1000]],
    ['bytes=999-', [999, 1000]],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=200-100', 'unsatisfiable'],
    ['bytes=-', null],
    ['bytes=0-1,5-6', null],
    ['items=0-1', null],
  ]
  for (const [h, want] of cases) {
    const got = byteRange(h, 1000)
    check(JSON.stringify(got) === JSON.stringify(want), `byteRange(${h}): ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
  }
}

// When the engine reports (src/reporting.ts), on a fake clock: once traffic pauses, and at least every
// REPORT_EVERY_MS while it goes on.
function reportTests(check: Check): void {
  const run = (traffic: (t: number) => boolean, until: number, reportsAt: number[] = []): number[] => {
    let now = 0
    const timers: { at: number; f: () => void }[] = []
    const clock: Clock = { now: () => now, after: (ms, f) => void timers.push({ at: now + ms, f }) }
    const sent: number[] = []
    const s = new ReportSchedule(() => {
      sent.push(now)
      s.sent()
    }, clock)
    for (; now <= until; now += 100) {
      for (let i = 0; i < timers.length; i++) {
        if (timers[i].at <= now) timers.splice(i--, 1)[0].f()
      }
      if (reportsAt.includes(now)) s.sent() // a report from elsewhere: a file completed
      if (traffic(now)) s.moved()
    }
    return sent
  }
  const show = (a: number[]) => a.join(', ')
  let got = run((t) => t === 500, 5000)
  check(show(got) === String(500 + REPORT_IDLE_MS), `report schedule: one burst at 500 ms reported at ${show(got)}, want once when idle`)
  // Bytes every 100 ms for 25 s: a report every 10 s while it goes on, and one when it stops.
  got = run((t) => t <= 25000, 30000)
  let want = [REPORT_EVERY_MS, 2 * REPORT_EVERY_MS, 25000 + REPORT_IDLE_MS]
  check(show(got) === show(want), `report schedule: steady traffic for 25 s reported at ${show(got)}, want ${show(want)}`)
  // A report made elsewhere at 6 s moves the next periodic one to 16 s.
  got = run((t) => t <= 25000, 30000, [6000])
  want = [6000 + REPORT_EVERY_MS, 25000 + REPORT_IDLE_MS]
  check(show(got) === show(want), `report schedule: with a report at 6 s, reported at ${show(got)}, want ${show(want)}`)
  check(run(() => false, 20000).length === 0, 'report schedule: reported with no traffic')
}

// headTests: a page's head (a response of pieces one after another, each without its padding) is read into
// its pieces, each padded with zeros to its size, however the response's bytes are cut; a response that ends
// short yields the pieces it holds, then fails.
async function headTests(check: Check): Promise<void> {
  const lengths = [10, 7, 4, 0, 9]
  const sizes = [10, 10, 4, 3, 16]
  const all = concatAll(lengths.map((n, k) => Uint8Array.from({ length: n }, (_, j) => 1 + ((k * 31 + j) % 250))))
  const r = rng(11)
  const cuttings: [string, (n: number) => number][] = [['byte by byte', () => 1], ['at random', () => 1 + r(12)], ['whole', (n) => n]]
  const body = (b: Uint8Array, cut: (n: number) => number) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < b.length; ) {
          const n = Math.min(cut(b.length), b.length - at)
          c.enqueue(b.slice(at, at + n))
          at += n
        }
        c.close()
      },
    })
  for (const [name, cut] of cuttings) {
    for (const [what, b, whole] of [['whole', all, true], ['short', all.subarray(0, all.length - 1), false], ['long', concat([all, new Uint8Array(5)]), true]] as const) {
      const got: number[] = []
      let failed = false
      let at = 0
      try {
        for await (const [k, piece] of headPieces(body(b, cut), lengths, sizes)) {
          got.push(k)
          const want = new Uint8Array(sizes[k])
          want.set(all.subarray(at, at + lengths[k]))
          at += lengths[k]
          check(equal(piece, want), `head ${what}, cut ${name}: piece ${k} is ${show(piece)}, want ${show(want)}`)
        }
      } catch {
        failed = true
      }
      const n = whole ? lengths.length : lengths.length - 1
      check(got.join() === [...Array(n).keys()].join(), `head ${what}, cut ${name}: pieces ${got}, want the first ${n}`)
      check(failed === !whole, `head ${what}, cut ${name}: ${failed ? 'failed' : 'did not fail'}`)
    }
  }
}

// gatheringTests: with no ICE servers, an offer goes with its host candidates once they settle, before the
// browser calls gathering complete (Chromium: 120 to 140 ms after them); a connection made at the same time
// that waits for complete, as the offers did before, is the yardstick.
async function gatheringTests(check: Check): Promise<void> {
  for (let k = 0; k < 3; k++) {
    const link = linkHere({})
    let channel: RTCDataChannel | undefined // kept, as a Conn keeps its own
    link.ondatachannel = (dc) => (channel = dc)
    const pc = new RTCPeerConnection()
    pc.createDataChannel('yardstick')
    const complete = new Promise<number>((resolve) => {
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve(performance.now())
    })
    const [offer] = await Promise.all([link.offer('test'), pc.createOffer().then((o) => pc.setLocalDescription(o))])
    const offered = performance.now()
    const done = await Promise.race([complete, new Promise<number>((r) => setTimeout(() => r(Infinity), 6000))])
    link.close()
    pc.close()
    channel?.close()
    check(/ typ host/.test(offer.sdp), `gathering ${k}: the offer has no host candidate: ${offer.sdp}`)
    // Once is enough (a busy machine may delay one of them), and by a margin: the two connections' own
    // gathering completes within a few milliseconds of each other.
    if (offered < done - 30) return
    if (k === 2) check(false, `gathering: the offer went ${Math.round(offered - done)} ms after gathering completed (want 30 ms before), three times`)
  }
}

// The engine's side of a service worker's stream: while a chunk is awaited it says it is alive (the service
// worker's backstop for a silent page restarts), and stops saying so once the chunk has gone. Waits are for
// messages, not fixed times, so that a busy machine's late timers make it slower, not wrong.
async function relayTests(check: Check): Promise<void> {
  const ch = new MessageChannel()
  const got: string[] = []
  ch.port2.onmessage = (m: MessageEvent) => {
    const d = m.data as { alive?: boolean; chunk?: Uint8Array; done?: boolean }
    got.push(d.alive ? 'alive' : d.chunk ? `chunk ${d.chunk.length}` : d.done ? 'done' : JSON.stringify(d))
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const arrived = async (what: string) => {
    for (const t0 = performance.now(); !got.includes(what); await sleep(10)) {
      if (performance.now() - t0 > 10000) throw new Error(`no ${what} after 10 s: ${got}`)
    }
  }
  let n = 0
  const reader = {
    next: async () => (n++ === 0 ? (await sleep(400), new Uint8Array(3)) : null),
    close: () => {},
  }
  relay(ch.port1, Promise.resolve(reader), () => {}, 25)
  ch.port2.postMessage({ next: true })
  await arrived('chunk 3')
  await sleep(150)
  const first = got.indexOf('chunk 3')
  check(first >= 2 && got.slice(0, first).every((g) => g === 'alive') && first === got.length - 1,
    `alive while the chunk is awaited, then nothing: ${got}`)
  ch.port2.postMessage({ next: true })
  await arrived('done')
  check(got.length === first + 2, `the end: ${got}`)
  ch.port1.close()
  ch.port2.close()
}
