// The loader's and the engine's types. What crosses the wire (the manifest, the webseed list, stats reports)
// is generated from the Go package swarmapi into swarmapi.ts.
export type { Manifest, ManifestFile, StatsReport, Webseeds } from './swarmapi'
export type { Head } from './p2p/head'

export interface EngineStats {
  peerBytes: number // from other browsers
  seederBytes: number // from the gateway's WebRTC seeder
  webseedBytes: number // over HTTP from webseeds
  uploadedBytes: number
  peers: number
  droppedPeers: number
  files: number
  storedBytes: number // of this page view's pieces, written to the browser's storage for later page views
}

// What stats() returns: the byte counts above, and (as non-enumerable properties, so that the counts stay a
// flat map of numbers for code that sums or serializes them) the page's mode and the upload caps' state.
export interface EngineReport extends EngineStats {
  readonly mode: Mode['mode']
  readonly reason: string
  readonly uploadCapped: boolean // this page view reached an upload cap and serves no one
  readonly capReason: string // "ratio" or "ceiling" while capped, else ""
  readonly thread: 'worker' | 'page' // where the engine's core runs (thread.ts)
}

// The effective mode of a page view. "p2p": downloads from peers and serves them; "download-only": downloads
// from peers, serves no one; "off": no engine, plain HTTP. reason says which switch decided it (empty for
// p2p): see docs/privacy.md.
export interface Mode {
  mode: 'p2p' | 'download-only' | 'off'
  reason: string
}

// The page's policy, owned by the loader: the engine asks it before serving and re-checks when told.
export interface Policy {
  mode(): Mode
  watch(f: () => void): void
}

export interface Engine {
  // Resolves to an object URL holding the verified bytes of the file at a URL path. Files with a higher
  // priority come first (the loader: 2 for images in the first viewport, 1 for other images, 0 for media).
  url(path: string, priority?: number): Promise<string>
  // Streams bytes [start, end) of the file at a URL path to a service worker's response on port (sw.ts's
  // messages after 'accepted') as its pieces are verified, in order: the part ahead of the reader comes first,
  // and is due like a waited-for file while the reader waits. via hears where the bytes came from (see Via).
  // Throws at once for a path the swarm does not have or a range outside it.
  serve(port: MessagePort, path: string, start: number, end: number, priority: number, via: (v: Via) => void): void
  stats(): EngineReport
}

// Via is what a stream tells its page: its first bytes came from the engine ('p2p'), the engine failed and the
// service worker takes the rest over HTTP ('http'), or the stream is over ('end').
export type Via = 'p2p' | 'http' | 'end'

// Reader yields a stream's verified bytes: each call the next chunk (at most a piece), null at the end. It
// rejects when the stream cannot go on (no progress from peers or webseeds, the visitor opted out): the
// caller takes the rest elsewhere. close ends it early (the response was cancelled).
export interface Reader {
  next(): Promise<Uint8Array | null>
  close(): void
}
