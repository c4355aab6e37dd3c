// A page's head: the first pieces of its heavy elements in one HTTP response that the page preloaded (the
// gateway's PathHead, gateway/head.go), one piece after another, each without its BEP 47 padding. The torrent
// takes them as from a webseed (Torrent's head option): every piece is verified.

// Head names the pieces in the order the response carries them; body is the response's once it has
// answered, or null when it failed.
export interface Head {
  pieces: number[]
  body: Promise<ReadableStream<Uint8Array> | null>
}

// headPieces reads such a body: the k-th piece has lengths[k] bytes in it and sizes[k] in the torrent (the
// rest is padding, zeros). It yields each piece's place in the list and its bytes, padded to its size, as soon
// as they are all in, and throws when the body ends short. Bytes past the last piece are not read.
export async function* headPieces(body: ReadableStream<Uint8Array>, lengths: number[], sizes: number[]): AsyncGenerator<[number, Uint8Array]> {
  const reader = body.getReader()
  try {
    let k = 0
    let at = 0
    let buf = new Uint8Array(sizes[0] ?? 0)
    while (k < lengths.length) {
      if (at === lengths[k]) {
        yield [k, buf]
        buf = new Uint8Array(sizes[++k] ?? 0)
        at = 0
        continue
      }
      const { value, done } = await reader.read()
      if (done) throw new Error(`head: the response ended after ${k} of ${lengths.length} pieces`)
      for (let off = 0; off < value.length && k < lengths.length; ) {
        const n = Math.min(lengths[k] - at, value.length - off)
        buf.set(value.subarray(off, off + n), at)
        at += n
        off += n
        if (at === lengths[k]) {
          yield [k, buf]
          buf = new Uint8Array(sizes[++k] ?? 0)
          at = 0
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {})
  }
}
