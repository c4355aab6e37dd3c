// Byte helpers shared by the engine: hex and "binary strings" (one character per byte, as the WebTorrent
// tracker protocol carries IDs), concatenation and SHA-1 through crypto.subtle.

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

export function fromHex(s: string): Uint8Array {
  const b = new Uint8Array(s.length >> 1)
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16)
  return b
}

// binary maps each byte to the code point of the same value.
export const binary = (b: Uint8Array): string => String.fromCharCode(...b)

// fromBinary is the inverse of binary; code points above 0xFF make it return undefined.
export function fromBinary(s: unknown): Uint8Array | undefined {
  if (typeof s !== 'string') return undefined
  const b = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) return undefined
    b[i] = c
  }
  return b
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  n = 0
  for (const p of parts) {
    out.set(p, n)
    n += p.length
  }
  return out
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export const sha1 = async (b: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await crypto.subtle.digest('SHA-1', b as Uint8Array<ArrayBuffer>))

export const randomBytes = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n))

export const utf8 = new TextEncoder()
export const text = new TextDecoder()
