// The info dictionary of a BitTorrent v1 torrent, with BEP 47 padding files marked, and which blocks lie wholly
// in padding.

import { decode, dict, list, num, str } from './bencode'
import { text } from './bytes'
import { BLOCK } from './wire'

export interface TorrentFile {
  path: string[] // below the torrent's name; [name] for a single-file torrent
  length: number
  offset: number // in the torrent's byte stream
  pad: boolean // a BEP 47 padding file: zeros, never fetched
}

export interface Info {
  name: string
  pieceLength: number
  pieces: Uint8Array // 20-byte SHA-1 of each piece, concatenated
  count: number // number of pieces
  length: number // of the whole byte stream, padding included
  files: TorrentFile[]
  multi: boolean // files under a directory named name (BEP 19 builds webseed URLs from that)
}

export class MetainfoError extends Error {}

// parseInfo reads an info dictionary; it throws MetainfoError when a field is missing or inconsistent.
export function parseInfo(bytes: Uint8Array): Info {
  const fail = (why: string): never => {
    throw new MetainfoError(`metainfo: ${why}`)
  }
  const d = dict(decode(bytes)) ?? fail('not a dictionary')
  const name = text.decode(str(d['name.utf-8']) ?? str(d.name) ?? fail('no name'))
  const pieceLength = num(d['piece length']) ?? fail('no piece length')
  const pieces = str(d.pieces) ?? fail('no pieces')
  if (pieceLength <= 0 || pieces.length % 20) fail('bad piece length or pieces')
  const files: TorrentFile[] = []
  let offset = 0
  const fl = list(d.files)
  for (const v of fl ?? [d]) {
    const f = dict(v) ?? fail('bad file')
    const length = num(f.length) ?? fail('no file length')
    const parts = fl ? list(f['path.utf-8']) ?? list(f.path) ?? fail('no file path') : [utf8Name(name)]
    const path = parts.map((p) => text.decode(str(p) ?? fail('bad path')))
    if (length < 0 || path.some((p) => p === '' || p === '.' || p === '..' || p.includes('/'))) fail('bad file')
    const attr = str(f.attr)
    files.push({ path, length, offset, pad: !!attr && attr.includes(0x70 /* p */) })
    offset += length
  }
  const count = pieces.length / 20
  if (Math.ceil(offset / pieceLength) !== count) fail('pieces do not cover the files')
  return { name, pieceLength, pieces, count, length: offset, files, multi: !!fl }
}

const utf8Name = (name: string): Uint8Array => new TextEncoder().encode(name)

// pieceSize is the length of piece i (the last one may be short).
export const pieceSize = (info: Info, i: number): number =>
  Math.min(info.pieceLength, info.length - i * info.pieceLength)

// padBytes counts the bytes of piece i that lie in BEP 47 padding files.
export function padBytes(info: Info, i: number): number {
  const s = i * info.pieceLength
  const e = s + pieceSize(info, i)
  let n = 0
  for (const f of info.files) if (f.pad) n += Math.max(0, Math.min(e, f.offset + f.length) - Math.max(s, f.offset))
  return n
}

// padding returns whether block b of piece i lies wholly inside a BEP 47 padding file.
export function padding(info: Info): (i: number, b: number) => boolean {
  const pads = info.files.filter((f) => f.pad)
  return (i, b) => {
    const s = i * info.pieceLength + b * BLOCK
    const e = Math.min(s + BLOCK, (i + 1) * info.pieceLength, info.length)
    return pads.some((f) => f.offset <= s && e <= f.offset + f.length)
  }
}
