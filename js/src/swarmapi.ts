// Code generated from swarmapi/types.go by `go test ./swarmapi -update`; DO NOT EDIT.
// The JSON documents of swarmgate's wire contract (see the Go package swarmapi).

// Manifest is what a page's engine needs to join a site version's swarm and verify what it gets
// (PathManifest).
export interface Manifest {
  version: string
  infoHash: string
  // Torrent is the .torrent (the info dictionary, no trackers), base64: every piece is verified against it.
  torrent: string
  pieceLength: number
  files: Record<string, ManifestFile> // by URL path (with query)
  tracker: string
  webseeds: string[]
  iceServers: ICEServer[]
  engine: string // URL of the engine bundle
  fallbackMs: number // take pieces from webseeds after this long without progress
  // WebseedsNow tells engines the webseeds have capacity to spare (ready helpers in a crowd): take pieces
  // from them at once rather than after FallbackMs without progress.
  webseedsNow?: boolean
  // Mode is the site's crowd state: "normal", "crowd" or "ending".
  mode: string
  // Visitor policy, the operator's switches (see docs/privacy.md): Uploads "off" makes every engine
  // download-only; UploadRatio and UploadCeiling cap what one page view uploads (a multiple of what it
  // holds, and an absolute number of bytes); IgnoreGPC lets engines of browsers that send Global Privacy
  // Control or Do Not Track upload (by default they are download-only).
  uploads: string
  uploadRatio: number
  uploadCeiling: number
  ignoreGPC: boolean
  // SeederPeerID is the hex peer ID of the gateway's WebRTC seeder, so engines can count its bytes apart.
  seederPeerId?: string
  // ServiceWorker tells the loader to install PathServiceWorker for scope / (it never displaces a site's own).
  serviceWorker: boolean
  // ReportToken is this page view's: its engine sends it with its StatsReports.
  reportToken: string
}

// ManifestFile is one asset in the Manifest.
export interface ManifestFile {
  index: number // in the torrent's file list (padding files included)
  size: number
  offset: number // in the torrent's data
  type: string // Content-Type
  sha256: string // hex
}

// ICEServer is a STUN or TURN server for browsers, in the shape of the browser's RTCIceServer.
export interface ICEServer {
  urls: string[]
  username?: string
  credential?: string
}

// Webseeds is what PathWebseeds serves: a version's webseeds for an engine still loading. Engines ask for it,
// so that helpers that became ready after the page loaded take their load; a loading engine keeps the ready
// helpers after the crowd ends, until they are released, where a new page view's manifest names the site's
// own webseed again.
export interface Webseeds {
  version: string
  webseeds: string[]
  now?: boolean // as Manifest.WebseedsNow
}

// StatsReport is what a page's engine posts to PathStats: bytes by source since its previous report, and
// the report token of its page view's manifest.
export interface StatsReport {
  peerBytes: number // from other browsers
  seederBytes: number // from the gateway's WebRTC seeder
  webseedBytes: number // over HTTP from webseeds
  uploadedBytes: number
  token: string
}

// Job is what PathJob serves: what a recruited helper needs to help with a version. The content is public;
// the signed help request names the infohash that the helper checks the info dictionary against.
export interface Job {
  version: string
  info: string // the bencoded info dictionary, base64
  peers: string[] // BitTorrent peers (host:port) that hold the version
  files: Record<string, JobFile> // by path in the version
  // First lists paths of the version's files in the order the site's pages need them: the heavy elements
  // of its most viewed pages, in document order, most viewed page first. A helper fetches these first; in a
  // crowd's first seconds it is the peer that holds what no browser has yet, so what it has first is what
  // the crowd can trade first.
  first?: string[]
}

// JobFile is a file's metadata in a Job.
export interface JobFile {
  type: string // Content-Type
  sha256: string // hex
  // Header is the origin's end-to-end header of the stored response; the helper sends it with the file.
  header?: Record<string, string[]>
}
