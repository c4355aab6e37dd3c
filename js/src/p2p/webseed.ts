// BEP 19 webseeds: the torrent's bytes over HTTP Range requests to url-list URLs. A URL ending in "/" gets
// the torrent's name appended, and for a multi-file torrent each file is at <url>/<name>/<path>. Padding
// files (BEP 47) are zeros and are never requested.

import type { Info, TorrentFile } from './metainfo'

export class WebseedError extends Error {}

// fileURL is where a webseed serves one file of the torrent.
export function fileURL(base: string, info: Info, f: TorrentFile): string {
  const enc = (parts: string[]) => parts.map(encodeURIComponent).join('/')
  if (!info.multi) return base.endsWith('/') ? base + enc([info.name]) : base
  return base + (base.endsWith('/') ? '' : '/') + enc([info.name, ...f.path])
}

// fetchRange reads bytes [start, end) of the torrent's byte stream from the webseed at base, one Range
// request per file the range touches.
export async function fetchRange(base: string, info: Info, start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
  const out = new Uint8Array(end - start)
  const parts: Promise<void>[] = []
  for (const f of info.files) {
    const a = Math.max(start, f.offset)
    const b = Math.min(end, f.offset + f.length)
    if (a >= b || f.pad) continue
    parts.push(
      (async () => {
        const url = fileURL(base, info, f)
        const res = await fetch(url, {
          headers: { Range: `bytes=${a - f.offset}-${b - f.offset - 1}` },
          signal,
        })
        let body = new Uint8Array(await res.arrayBuffer())
        // A server that ignores Range sends the whole file with 200: take the part we asked for.
        if (res.status === 200 && body.length === f.length) body = body.subarray(a - f.offset, b - f.offset)
        else if (res.status !== 206) throw new WebseedError(`webseed: ${url}: HTTP ${res.status}`)
        if (body.length !== b - a) throw new WebseedError(`webseed: ${url}: ${body.length} bytes, want ${b - a}`)
        out.set(body, a - start)
      })(),
    )
  }
  await Promise.all(parts)
  return out
}
