// The engine's side of a service worker's stream (sw.ts's messages after 'accepted'): each {next} gets the
// reader's next chunk (transferred), {done} at the end, or {error} once the engine cannot go on (the service
// worker then takes the rest over HTTP); {close} ends it early. While a chunk is awaited, {alive} every
// ALIVE_MS tells the service worker that this side still answers: an image's pieces come in no order, so its
// first chunk may wait for most of the image, longer than the service worker's backstop for a silent page
// (the engine's own stall rule, no progress at all, still ends the stream). It runs where the engine's core runs: in the
// core's worker the page hands the service worker's port over (thread.ts), and the bytes never cross the
// page's main thread, which in a crowd is busy rendering. If that worker dies mid-stream, the page tells the
// service worker (thread.ts's fail, sw.ts's 'gone'), which takes the rest over HTTP.
import type { Reader, Via } from './manifest'

// ALIVE_MS is how often a stream with a chunk awaited says it is alive (well within sw.ts's CHUNK_MS).
export const ALIVE_MS = 10000

export function relay(port: MessagePort, reader: Promise<Reader>, via: (v: Via) => void, aliveMs = ALIVE_MS): void {
  reader.catch(() => {}) // the first next() reports it
  let closed = false // the response was cancelled (a video seeks, the page goes away): not a failure
  let sent = false
  port.onmessage = (m: MessageEvent) => {
    const d = m.data as { next?: boolean; close?: boolean } | null
    if (d?.close) {
      closed = true
      port.close()
      via('end')
      return void reader.then((r) => r.close(), () => {})
    }
    if (!d?.next) return
    const alive = setInterval(() => closed || port.postMessage({ alive: true }), aliveMs)
    reader
      .then((r) => r.next())
      .finally(() => clearInterval(alive))
      .then(
        (chunk) => {
          if (!chunk) {
            via('end')
            return port.postMessage({ done: true })
          }
          if (!sent) via('p2p')
          sent = true
          port.postMessage({ chunk }, [chunk.buffer as ArrayBuffer])
        },
        (err: unknown) => {
          if (closed) return
          via('http')
          port.postMessage({ error: String(err) })
        },
      )
  }
}
