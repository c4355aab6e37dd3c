// A bitfield as the wire carries it: bit 7 of byte 0 is piece 0.
export class Bits {
  readonly bytes: Uint8Array
  count = 0 // bits set

  constructor(readonly size: number, from?: Uint8Array) {
    this.bytes = new Uint8Array((size + 7) >> 3)
    if (from) {
      for (let i = 0; i < size; i++) if (from[i >> 3] & (0x80 >> (i & 7))) this.set(i)
    }
  }

  get(i: number): boolean {
    return !!(this.bytes[i >> 3] & (0x80 >> (i & 7)))
  }

  // set marks i and reports whether it was new.
  set(i: number): boolean {
    if (i < 0 || i >= this.size || this.get(i)) return false
    this.bytes[i >> 3] |= 0x80 >> (i & 7)
    this.count++
    return true
  }

  full(): boolean {
    return this.count === this.size
  }

  fill(): void {
    for (let i = 0; i < this.size; i++) this.set(i)
  }
}
