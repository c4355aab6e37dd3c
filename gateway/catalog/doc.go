// Package catalog owns a site's swarmable content: the public, cacheable resources the gateway has seen (or
// was given from a directory), stored by content hash, and the site versions built from them. A version is
// one BitTorrent v1 torrent whose files are the resources at or above a size threshold, each padded (BEP 47)
// to start on a piece boundary, so that a browser fetching one asset fetches only its pieces.
package catalog
