// The shape of /.swarm/manifest.json, shared by the loader and the engine.
export interface ManifestFile {
  index: number // in the torrent's file list (padding files included)
  size: number
  offset: number
  type: string
  sha256: string
}

export interface Manifest {
  version: string
  infoHash: string
  torrent: string // base64 of the .torrent (info dictionary, no trackers): what every piece is verified against
  pieceLength: number
  files: Record<string, ManifestFile> // by URL path (with query)
  tracker: string
  webseeds: string[]
  iceServers: RTCIceServer[]
  engine: string // URL of the engine bundle
  fallbackMs: number // take pieces from webseeds after this long without progress
  webseedsNow?: boolean // the webseeds have capacity to spare (helpers in a crowd): take pieces from them at once
  mode: string
  serviceWorker: boolean // whether the loader installs /.swarm/sw.js for scope /
  uploads: string // "off": the operator made every engine download-only
  uploadRatio: number // a page view uploads at most this multiple of what it downloaded...
  uploadCeiling: number // ...and at most this many bytes
  ignoreGPC: boolean // when false, browsers sending GPC or DNT are download-only
  seederPeerId?: string // hex peer ID of the gateway's own seeder, to tell its bytes from other browsers'
  reportToken: string // this page view's token, sent with its stats reports
}

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
  stats(): EngineReport
}
