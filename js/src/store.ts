// The engine's piece store (a PieceStore of the core, src/p2p): a page view's verified pieces live in memory
// up to a bound, and in the site's origin-private file system (OPFS), in one file per site version named by
// its infohash. Each piece is written once: in one go when the page has every file it wanted (flush), or as
// soon as memory passes its bound, after which the written pieces leave memory and are read back from the
// file when a peer or the page wants them. A later page view of the same version reads the file, verifies
// every piece in it, and downloads nothing again; the files of older versions are removed when a newer one
// is written.
//
// WebTorrent's browser store (fsa-chunk-store) wrote each piece as a file of its own, through a writable stream
// that it opened and committed per piece, while the page was still loading. In the crowd benchmark (twenty
// visitors' browsers on one 2-core machine) that cost about a fifth of the crowd's time: page-complete p50 was
// 19.0-19.6 s and p95 21.6-24.9 s with it, 13.9-16.4 s and 17.8-18.3 s with one writable per page view (pieces
// in memory alone, with no storage at all, gave 14.6-15.0 s and 18.3-20.1 s).
import { equal, sha1, type Info, type PieceStore } from './p2p'

// The directory in the site's OPFS that holds the file of the site version last stored.
const DIR = 'swarmgate'

export class PageStore implements PieceStore {
  private readonly mem = new Map<number, Uint8Array>() // in the order they came (the oldest leave first)
  private memBytes = 0
  private readonly dirty = new Set<number>() // in memory, not yet written
  private readonly written = new Set<number>() // in the file (by this page view or an earlier one)
  private file?: Promise<File | null> // the file as it is now (re-read after each write)
  private flushing: Promise<void> = Promise.resolve()
  private queued = false // a flush for memory's sake is scheduled
  private closed = false

  // name is the version's infohash (hex); max the bytes of pieces kept in memory once written; onStored is
  // told the bytes of pieces each time some are written.
  constructor(
    private readonly name: string,
    private readonly info: Info,
    private readonly max: number,
    private readonly onStored: (bytes: number) => void = () => {},
  ) {
    if (!/^[0-9a-f]{40}$/.test(name)) throw new Error("swarmgate: store: want the torrent's infohash")
  }

  private size(i: number): number {
    return Math.min(this.info.pieceLength, this.info.length - i * this.info.pieceLength)
  }

  private async dir(create: boolean): Promise<FileSystemDirectoryHandle | null> {
    if (!navigator.storage?.getDirectory) return null
    return (await navigator.storage.getDirectory()).getDirectoryHandle(DIR, { create })
  }

  private current(): Promise<File | null> {
    this.file ??= this.dir(false)
      .then(async (dir) => (dir ? (await dir.getFileHandle(this.name)).getFile() : null))
      .catch(() => null) // none yet (NotFoundError), or storage blocked
    return this.file
  }

  // load reads what an earlier page view wrote and returns the pieces that verify (each against its SHA-1),
  // kept in memory up to the bound and read back from the file beyond it.
  async load(): Promise<number[]> {
    const file = await this.current()
    const have: number[] = []
    const pl = this.info.pieceLength
    for (let i = 0; file && i < this.info.count && i * pl + this.size(i) <= file.size; i++) {
      const b = new Uint8Array(await file.slice(i * pl, i * pl + this.size(i)).arrayBuffer())
      if (!equal(await sha1(b), this.info.pieces.subarray(20 * i, 20 * i + 20))) continue
      this.written.add(i)
      have.push(i)
      if (this.memBytes + b.length <= this.max) this.keep(i, b)
    }
    return have
  }

  get(i: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const m = this.mem.get(i)
    if (m || !this.written.has(i)) return m
    return this.read(i)
  }

  private async read(i: number): Promise<Uint8Array | undefined> {
    const at = i * this.info.pieceLength
    const file = await this.current()
    if (!file || file.size < at + this.size(i)) return undefined
    return new Uint8Array(await file.slice(at, at + this.size(i)).arrayBuffer())
  }

  put(i: number, data: Uint8Array): void {
    if (this.closed || this.mem.has(i)) return
    this.keep(i, data)
    this.dirty.add(i)
    if (this.memBytes > this.max && !this.queued) {
      this.queued = true // pieces that come while it waits go in the same write
      void this.flush()
    }
  }

  private keep(i: number, data: Uint8Array): void {
    this.mem.set(i, data)
    this.memBytes += data.length
  }

  // blob is a Blob of length bytes of the torrent from offset: parts of the pieces in memory, and slices of
  // the file for those only there (a Blob holds a File slice without reading it).
  async blob(offset: number, length: number, type: string): Promise<Blob> {
    const parts: BlobPart[] = []
    const pl = this.info.pieceLength
    const end = offset + length
    for (let i = Math.floor(offset / pl); i * pl < end; i++) {
      const a = Math.max(offset, i * pl)
      const b = Math.min(end, i * pl + this.size(i))
      const m = this.mem.get(i)
      const file = m ? null : await this.current()
      if (m) parts.push(m.subarray(a - i * pl, b - i * pl) as Uint8Array<ArrayBuffer>)
      else if (file && this.written.has(i)) parts.push(file.slice(a, b))
      else throw new Error(`swarmgate: store: no piece ${i}`)
    }
    return new Blob(parts, { type })
  }

  // flush writes the pieces put since the last flush to the version's file, each once, through one writable.
  // If storage fails (full, blocked) they stay in memory only, and the next flush tries again. A page view that
  // ends before its flush has finished leaves those pieces unwritten: a later view downloads them again.
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      this.queued = false
      if (this.dirty.size === 0 || this.closed) return
      const indices = [...this.dirty].sort((a, b) => a - b)
      this.dirty.clear()
      try {
        const dir = await this.dir(true)
        if (!dir) return
        const w = await (await dir.getFileHandle(this.name, { create: true })).createWritable({ keepExistingData: true })
        let n = 0
        for (const i of indices) {
          const c = this.mem.get(i)
          if (!c) continue
          await w.write({ type: 'write', position: i * this.info.pieceLength, data: c as Uint8Array<ArrayBuffer> })
          n += c.length
        }
        await w.close()
        this.file = undefined
        for (const i of indices) this.written.add(i)
        this.onStored(n)
        this.evict()
        await this.pruneOthers(dir).catch(() => {})
      } catch {
        for (const i of indices) this.dirty.add(i)
      }
    })
    return this.flushing
  }

  // evict drops written pieces from memory, oldest first, until memory is within its bound.
  private evict(): void {
    for (const [i, c] of this.mem) {
      if (this.memBytes <= this.max) return
      if (this.dirty.has(i)) continue
      this.mem.delete(i)
      this.memBytes -= c.length
    }
  }

  // pruneOthers removes the files of other site versions: page views take the current version only, so an
  // older one's pieces would never be read again, and each would keep a copy of the site in the browser.
  private async pruneOthers(dir: FileSystemDirectoryHandle): Promise<void> {
    const others: string[] = []
    for await (const name of dir.keys()) if (name !== this.name) others.push(name)
    for (const name of others) await dir.removeEntry(name).catch(() => {}) // in use elsewhere: next time
  }

  // close writes what is left and frees memory.
  close(): Promise<void> {
    return this.flush().finally(() => {
      this.closed = true
      this.mem.clear()
      this.memBytes = 0
    })
  }
}
