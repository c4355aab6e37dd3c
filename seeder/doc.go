// Package seeder is the BitTorrent side that both roles share: the site's gateway seeds its versions with it,
// and a helper fetches and seeds the versions it helps with; both serve visitors' browsers over WebRTC.
//
// It owns three things. An anacrolix/torrent client is the BitTorrent engine (piece hashing, choking,
// requests); it never talks to trackers itself, runs no DHT and listens on TCP/uTP only when asked. The
// WebRTC side is ours: the seeder joins each configured WebSocket tracker as an ordinary WebTorrent client,
// announces every torrent it holds as complete, and answers each offer the tracker relays with a pion
// PeerConnection built from the injected *webrtc.API. When a browser's data channel opens, it is detached and
// handed to the engine as a net.Conn through a torrent.Listener, so browsers whose candidates hide behind
// mDNS names (every default browser) are served like any other peer.
//
// Lifecycle: New builds the engine, AddTorrent verifies files already on disk and starts seeding them, Run
// keeps the tracker sockets (re)connected until its context ends, and Close tears everything down.
package seeder
