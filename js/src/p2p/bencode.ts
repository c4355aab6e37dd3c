// Bencode (BEP 3), as much as the engine needs: the info dictionary and LTEP handshake dictionaries. Strings
// decode to bytes; dictionary keys to JS strings (UTF-8). Integers are JS numbers: exact up to 2^53, which
// covers every length and offset a browser can hold.

export type BValue = number | Uint8Array | BValue[] | BDict
export interface BDict {
  [key: string]: BValue | undefined
}

// MAX_DEPTH bounds nesting: an info dictionary nests four deep (info → files → file → path), an LTEP
// handshake two; 32 stops a hostile peer from exhausting the stack.
const MAX_DEPTH = 32

export class BencodeError extends Error {}

// decode parses one bencoded value that must fill b exactly.
export const decode = (b: Uint8Array): BValue => parse(b).v

// rawValue returns the bytes of one value of a dictionary as they are encoded in b: a .torrent's info
// dictionary, whose SHA-1 is the infohash, say.
export const rawValue = (b: Uint8Array, key: string): Uint8Array | undefined => parse(b, key).raw

function parse(b: Uint8Array, rawKey?: string): { v: BValue; raw?: Uint8Array } {
  let pos = 0
  let raw: Uint8Array | undefined
  const fail = (why: string): never => {
    throw new BencodeError(`bencode: ${why} at ${pos}`)
  }
  const int = (end: number): number => {
    const s = String.fromCharCode(...b.subarray(pos, end))
    if (!/^(0|-?[1-9]\d*)$/.test(s)) fail('bad integer')
    pos = end + 1
    return Number(s)
  }
  const find = (c: number): number => {
    const i = b.indexOf(c, pos)
    if (i < 0) fail('truncated')
    return i
  }
  const value = (depth: number): BValue => {
    if (depth > MAX_DEPTH) fail('too deep')
    const c = b[pos]
    if (c === 0x69) {
      pos++
      return int(find(0x65))
    }
    if (c === 0x6c || c === 0x64) {
      pos++
      const list: BValue[] = []
      const dict: BDict = Object.create(null) as BDict
      while (b[pos] !== 0x65) {
        if (pos >= b.length) fail('truncated')
        if (c === 0x6c) {
          list.push(value(depth + 1))
          continue
        }
        const k = value(depth + 1)
        if (!(k instanceof Uint8Array)) fail('non-string key')
        // Keys are not checked for order: some clients send LTEP dictionaries unsorted.
        const key = new TextDecoder().decode(k as Uint8Array)
        const start = pos
        dict[key] = value(depth + 1)
        if (depth === 0 && key === rawKey) raw = b.subarray(start, pos)
      }
      pos++
      return c === 0x6c ? list : dict
    }
    if (c >= 0x30 && c <= 0x39) {
      const n = int(find(0x3a))
      if (n < 0 || pos + n > b.length) fail('truncated string')
      pos += n
      return b.subarray(pos - n, pos)
    }
    return fail('bad value')
  }
  const v = value(0)
  if (pos !== b.length) fail('trailing bytes')
  return { v, raw }
}

// Encodable is what encode accepts: BValue, and JS strings (encoded as UTF-8) anywhere a string may go.
export type Encodable = number | string | Uint8Array | Encodable[] | { [key: string]: Encodable | undefined }

// encode bencodes v; dictionary entries whose value is undefined are left out, keys are sorted.
export function encode(v: Encodable): Uint8Array {
  const out: number[] = []
  const enc = new TextEncoder()
  const put = (s: string) => {
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i))
  }
  const bytes = (b: Uint8Array) => {
    put(`${b.length}:`)
    for (const x of b) out.push(x)
  }
  const walk = (v: Encodable): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new BencodeError(`bencode: ${v} is not an integer`)
      put(`i${v}e`)
    } else if (typeof v === 'string') bytes(enc.encode(v))
    else if (v instanceof Uint8Array) bytes(v)
    else if (Array.isArray(v)) {
      put('l')
      v.forEach(walk)
      put('e')
    } else {
      put('d')
      for (const k of Object.keys(v).sort()) {
        const x = v[k]
        if (x === undefined) continue
        bytes(enc.encode(k))
        walk(x)
      }
      put('e')
    }
  }
  walk(v)
  return new Uint8Array(out)
}

// Accessors that read a decoded value as the type a field should have, or undefined.
export const dict = (v: BValue | undefined): BDict | undefined =>
  v !== undefined && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v) ? v : undefined
export const num = (v: BValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined)
export const str = (v: BValue | undefined): Uint8Array | undefined => (v instanceof Uint8Array ? v : undefined)
export const list = (v: BValue | undefined): BValue[] | undefined => (Array.isArray(v) ? v : undefined)
