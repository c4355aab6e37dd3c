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

// streamRange reads bytes [start, end) of the torrent's byte stream from the webseed at base: one Range
// request per file the range touches (padding excepted), all at once. Each body chunk goes to got, with its
// place in the torrent's byte stream, as it arrives; it resolves once every byte has come.
export async function streamRange(base: string, info: Info, start: number, end: number, signal: AbortSignal,
  got: (at: number, data: Uint8Array) => void): Promise<void> {
  const parts: Promise<void>[] = []
  for (const f of info.files) {
    const a = Math.max(start, f.offset)
    const b = Math.min(end, f.offset + f.length)
    if (a >= b || f.pad) continue
    parts.push(
      (async () => {
        const url = fileURL(base, info, f)
        const res = await fetch(url, { headers: { Range: `bytes=${a - f.offset}-${b - f.offset - 1}` }, signal })
        const reader = res.body?.getReader()
        // A server that ignores Range sends the whole file with 200: the part we asked for is taken from it.
        // (Whatever a server sends, a piece is used only once it verifies.)
        if (!reader || (res.status !== 206 && res.status !== 200)) {
          void reader?.cancel()
          throw new WebseedError(`webseed: ${url}: HTTP ${res.status}`)
        }
        let skip = res.status === 200 ? a - f.offset : 0
        let at = a
        // Read to the body's end (a 206's last bytes end it; its connection can then be reused), except a
        // 200's rest, which is cancelled.
        while (res.status === 206 || at < b) {
          const { value, done } = await reader.read()
          if (done) break
          const from = Math.min(skip, value.length)
          skip -= from
          const d = value.subarray(from, from + b - at)
          if (!d.length) continue
          got(at, d)
          at += d.length
        }
        if (at < b) throw new WebseedError(`webseed: ${url}: ${at - a} bytes, want ${b - a}`)
        if (res.status === 200) void reader.cancel()
      })(),
    )
  }
  await Promise.all(parts)
}
