// The engine's piece store (an abstract-chunk-store, as WebTorrent takes): a page view's pieces live in memory,
// and are written to the site's origin-private file system (OPFS) in one go once the page has every file it
// wanted (flush), into one file per site version (the files of older versions are removed then). A later page
// view of the same version reads its pieces from that file, verifies them as WebTorrent verifies any stored
// piece, and downloads nothing again.
//
// WebTorrent's own browser store (fsa-chunk-store) writes each piece as a file of its own, through a writable
// stream that it opens and commits per piece, while the page is still loading. In the crowd benchmark (twenty
// visitors' browsers on one 2-core machine) that cost about a fifth of the crowd's time: page-complete p50 was
// 19.0-19.6 s and p95 21.6-24.9 s with it, 13.9-16.4 s and 17.8-18.3 s with this store (pieces in memory
// alone, with no storage at all, gave 14.6-15.0 s and 18.3-20.1 s). One writable per page view, once the page
// is complete, keeps the returning visitor's cache and takes the writes off the page's critical path.

// The directory in the site's OPFS that holds the file of the site version last stored, named by its infohash.
const DIR = 'swarmgate'

type Callback<T> = (err: Error | null, value?: T) => void

export interface StoreOptions {
  length?: number
  torrent?: { infoHash: string }
  // Called with the store once it is made, so that the engine can tell it when to flush.
  onStore?: (s: PageStore) => void
  // Called with the bytes of pieces each time some are written to storage.
  onStored?: (bytes: number) => void
}

export class PageStore {
  readonly chunkLength: number
  private readonly length: number
  private readonly name: string
  private readonly chunks: (Uint8Array | undefined)[] = []
  private readonly dirty = new Set<number>()
  private stored?: Promise<File | null> // what an earlier page view wrote (null: nothing, or no OPFS)
  private flushing: Promise<void> = Promise.resolve()
  private closed = false
  private readonly onStored: (bytes: number) => void

  constructor(chunkLength: number, opts: StoreOptions = {}) {
    this.chunkLength = Number(chunkLength)
    if (!(this.chunkLength > 0)) throw new Error('swarmgate: store: chunk length must be positive')
    this.length = Number(opts.length)
    if (!(this.length > 0)) throw new Error('swarmgate: store: length must be positive')
    this.name = opts.torrent?.infoHash ?? ''
    if (!/^[0-9a-f]{40}$/.test(this.name)) throw new Error('swarmgate: store: want the torrent\'s infohash')
    this.onStored = opts.onStored ?? (() => {})
    opts.onStore?.(this)
  }

  private chunkSize(index: number): number {
    return Math.min(this.chunkLength, this.length - index * this.chunkLength)
  }

  private async dir(create: boolean): Promise<FileSystemDirectoryHandle | null> {
    if (!navigator.storage?.getDirectory) return null
    const root = await navigator.storage.getDirectory()
    return root.getDirectoryHandle(DIR, { create })
  }

  // The file an earlier page view wrote, read once: pieces this page view writes stay in memory too.
  private earlier(): Promise<File | null> {
    this.stored ??= (async () => {
      try {
        const dir = await this.dir(false)
        return dir ? await (await dir.getFileHandle(this.name)).getFile() : null
      } catch {
        return null // none yet (NotFoundError), or storage blocked
      }
    })()
    return this.stored
  }

  put(index: number, buf: Uint8Array, cb: Callback<void> = () => {}): void {
    if (this.closed) return queueMicrotask(() => cb(new Error('swarmgate: store is closed')))
    if (buf.length !== this.chunkSize(index)) {
      return queueMicrotask(() => cb(new Error(`swarmgate: store: piece ${index} has ${buf.length} bytes`)))
    }
    this.chunks[index] = buf
    this.dirty.add(index)
    queueMicrotask(() => cb(null))
  }

  get(index: number, opts: { offset?: number, length?: number } | Callback<Uint8Array> | null, cb?: Callback<Uint8Array>): void {
    if (typeof opts === 'function') return this.get(index, null, opts)
    const done = cb ?? (() => {})
    const size = this.chunkSize(index)
    const from = opts?.offset ?? 0
    const to = opts?.length ? from + opts.length : size
    if (this.closed) return queueMicrotask(() => done(new Error('swarmgate: store is closed')))
    if (from < 0 || to > size || from > to) return queueMicrotask(() => done(new Error('swarmgate: store: bad range')))
    const mem = this.chunks[index]
    if (mem) return queueMicrotask(() => done(null, mem.subarray(from, to)))
    const at = index * this.chunkLength
    this.earlier().then(async file => {
      if (!file || file.size < at + size) throw new Error(`swarmgate: store: no piece ${index}`)
      return new Uint8Array(await file.slice(at + from, at + to).arrayBuffer())
    }).then(b => done(null, b), err => done(err))
  }

  // blob is a Blob of length bytes of the torrent from offset, made straight from the pieces in memory (one
  // copy, into the Blob), or null when one of them is not there (a returning visitor's piece, verified from
  // storage: read the bytes through WebTorrent instead).
  blob(offset: number, length: number, type: string): Blob | null {
    const parts: Uint8Array[] = []
    const end = offset + length
    for (let i = Math.floor(offset / this.chunkLength); i * this.chunkLength < end; i++) {
      const c = this.chunks[i]
      if (!c) return null
      const at = i * this.chunkLength
      parts.push(c.subarray(Math.max(offset - at, 0), Math.min(end - at, c.length)))
    }
    return new Blob(parts as BlobPart[], { type })
  }

  // flush writes the pieces put since the last flush to the version's file. If storage fails (full, blocked)
  // they stay in memory only, and the next flush tries again. A page view that ends before its flush has
  // finished leaves those pieces unwritten: a later view downloads them again.
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.dirty.size === 0) return
      const indices = [...this.dirty].sort((a, b) => a - b)
      this.dirty.clear()
      try {
        const dir = await this.dir(true)
        if (!dir) return
        const w = await (await dir.getFileHandle(this.name, { create: true })).createWritable({ keepExistingData: true })
        let n = 0
        for (const i of indices) {
          const c = this.chunks[i]
          if (!c) continue
          await w.write({ type: 'write', position: i * this.chunkLength, data: c })
          n += c.length
        }
        await w.close()
        this.onStored(n)
        await this.pruneOthers(dir).catch(() => {})
      } catch {
        for (const i of indices) this.dirty.add(i)
      }
    })
    return this.flushing
  }

  // pruneOthers removes the files of other site versions: page views take the current version only, so an
  // older one's pieces would never be read again, and each would keep a copy of the site in the browser.
  private async pruneOthers(dir: FileSystemDirectoryHandle): Promise<void> {
    const others: string[] = []
    for await (const name of (dir as any).keys() as AsyncIterable<string>) {
      if (name !== this.name) others.push(name)
    }
    for (const name of others) await dir.removeEntry(name).catch(() => {}) // in use elsewhere: next time
  }

  close(cb: Callback<void> = () => {}): void {
    if (this.closed) return queueMicrotask(() => cb(null))
    this.flush().finally(() => {
      this.closed = true
      this.chunks.length = 0
      cb(null)
    })
  }

  destroy(cb: Callback<void> = () => {}): void {
    this.closed = true
    this.chunks.length = 0
    this.dirty.clear()
    this.flushing.then(() => this.dir(false)).then(dir => dir?.removeEntry(this.name)).catch(() => {})
      .finally(() => cb(null))
  }
}
