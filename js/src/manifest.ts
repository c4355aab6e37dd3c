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
  mode: string
  serviceWorker: boolean
  uploads: string // "off": the operator made every engine download-only
  uploadRatio: number // a page view uploads at most this multiple of what it downloaded...
  uploadCeiling: number // ...and at most this many bytes
  ignoreGPC: boolean // when false, browsers sending GPC or DNT are download-only // whether the loader installs /.swarm/sw.js for scope /
  seederPeerId?: string // hex peer ID of the gateway's own seeder, to tell its bytes from other browsers'
}

export interface EngineStats {
  peerBytes: number // from other browsers
  seederBytes: number // from the gateway's WebRTC seeder
  webseedBytes: number // over HTTP from webseeds
  uploadedBytes: number
  peers: number
  droppedPeers: number
  files: number
}

export interface Engine {
  // Resolves to an object URL holding the verified bytes of the file at a URL path.
  url(path: string): Promise<string>
  stats(): EngineStats
}
