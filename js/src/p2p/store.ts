// PieceStore is where verified pieces live; the engine reads them back to serve peers and callers. The
// default keeps them in memory; the page's store (src/store.ts) keeps them in memory up to a bound and in the
// origin-private file system beyond it, whose pieces it reads back asynchronously (get returns a Promise).
export interface PieceStore {
  get(index: number): Uint8Array | undefined | Promise<Uint8Array | undefined>
  put(index: number, data: Uint8Array): void
}

export class MemoryStore implements PieceStore {
  private pieces: (Uint8Array | undefined)[] = []
  get(index: number): Uint8Array | undefined {
    return this.pieces[index]
  }
  put(index: number, data: Uint8Array): void {
    this.pieces[index] = data
  }
}
