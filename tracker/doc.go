// Package tracker implements a WebSocket BitTorrent tracker speaking the WebTorrent tracker protocol, as the
// bittorrent-tracker npm package and WebTorrent clients use it: announce with offer/answer relay between
// browsers, scrape, and a registry of swarms whose peers live as long as their sockets do.
//
// The tracker knows nothing of sites, gateways or crowds: it relays WebRTC signalling between peers that share
// an infohash. Tracker is an http.Handler; Client is a Go client for the same protocol, used by seeders that
// answer browsers' offers and by tests and benchmarks.
package tracker
