package swarmapi

import "net/http"

// The JSON documents of the wire contract. js/src/swarmapi.ts is generated from this file: each type's
// fields, json names and comments carry over (types_test.go maps the Go types to TypeScript's).

// Manifest is what a page's engine needs to join a site version's swarm and verify what it gets
// (PathManifest).
type Manifest struct {
	Version  string `json:"version"`
	InfoHash string `json:"infoHash"`
	// Torrent is the .torrent (the info dictionary, no trackers), base64: every piece is verified against it.
	Torrent     []byte                  `json:"torrent"`
	PieceLength int64                   `json:"pieceLength"`
	Files       map[string]ManifestFile `json:"files"` // by URL path (with query)
	Tracker     string                  `json:"tracker"`
	Webseeds    []string                `json:"webseeds"`
	ICEServers  []ICEServer             `json:"iceServers"`
	Engine      string                  `json:"engine"`     // URL of the engine bundle
	FallbackMs  int64                   `json:"fallbackMs"` // take pieces from webseeds after this long without progress
	// WebseedsNow tells engines the webseeds have capacity to spare (ready helpers in a crowd): take pieces
	// from them at once rather than after FallbackMs without progress.
	WebseedsNow bool `json:"webseedsNow,omitempty"`
	// Mode is the site's crowd state: "normal", "crowd" or "ending".
	Mode string `json:"mode"`
	// Visitor policy, the operator's switches (see docs/privacy.md): Uploads "off" makes every engine
	// download-only; UploadRatio and UploadCeiling cap what one page view uploads (a multiple of what it
	// holds, and an absolute number of bytes); IgnoreGPC lets engines of browsers that send Global Privacy
	// Control or Do Not Track upload (by default they are download-only).
	Uploads       string  `json:"uploads"`
	UploadRatio   float64 `json:"uploadRatio"`
	UploadCeiling int64   `json:"uploadCeiling"`
	IgnoreGPC     bool    `json:"ignoreGPC"`
	// SeederPeerID is the hex peer ID of the gateway's WebRTC seeder, so engines can count its bytes apart.
	SeederPeerID string `json:"seederPeerId,omitempty"`
	// ServiceWorker tells the loader to install PathServiceWorker for scope / (it never displaces a site's own).
	ServiceWorker bool `json:"serviceWorker"`
	// ReportToken is this page view's: its engine sends it with its StatsReports.
	ReportToken string `json:"reportToken"`
}

// ManifestFile is one asset in the Manifest.
type ManifestFile struct {
	Index  int    `json:"index"` // in the torrent's file list (padding files included)
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"` // in the torrent's data
	Type   string `json:"type"`   // Content-Type
	SHA256 string `json:"sha256"` // hex
}

// ICEServer is a STUN or TURN server for browsers, in the shape of the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Webseeds is what PathWebseeds serves: a version's webseeds for an engine still loading. Engines ask for it,
// so that helpers that became ready after the page loaded take their load; a loading engine keeps the ready
// helpers after the crowd ends, until they are released, where a new page view's manifest names the site's
// own webseed again.
type Webseeds struct {
	Version  string   `json:"version"`
	Webseeds []string `json:"webseeds"`
	Now      bool     `json:"now,omitempty"` // as Manifest.WebseedsNow
}

// StatsReport is what a page's engine posts to PathStats: bytes by source since its previous report, and
// the report token of its page view's manifest.
type StatsReport struct {
	PeerBytes     int64  `json:"peerBytes"`    // from other browsers
	SeederBytes   int64  `json:"seederBytes"`  // from the gateway's WebRTC seeder
	WebseedBytes  int64  `json:"webseedBytes"` // over HTTP from webseeds
	UploadedBytes int64  `json:"uploadedBytes"`
	Token         string `json:"token"`
}

// Job is what PathJob serves: what a recruited helper needs to help with a version. The content is public;
// the signed help request names the infohash that the helper checks the info dictionary against.
type Job struct {
	Version   string             `json:"version"`
	InfoBytes []byte             `json:"info"`  // the bencoded info dictionary, base64
	Peers     []string           `json:"peers"` // BitTorrent peers (host:port) that hold the version
	Files     map[string]JobFile `json:"files"` // by path in the version
	// First lists paths of the version's files in the order the site's pages need them: the heavy elements
	// of its most viewed pages, in document order, most viewed page first. A helper fetches these first; in a
	// crowd's first seconds it is the peer that holds what no browser has yet, so what it has first is what
	// the crowd can trade first.
	First []string `json:"first,omitempty"`
}

// JobFile is a file's metadata in a Job.
type JobFile struct {
	Type   string `json:"type"`   // Content-Type
	SHA256 string `json:"sha256"` // hex
	// Header is the origin's end-to-end header of the stored response; the helper sends it with the file.
	Header http.Header `json:"header,omitempty"`
}
