// PieceStore is where verified pieces live; the engine reads them back to serve peers and callers. The
// default keeps them in memory; storage for repeat views can implement the same seam.
export interface PieceStore {
  get(index: number): Uint8Array | undefined
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
