// The engine's core: BitTorrent over WebRTC data channels with WebTorrent signalling, BEP 19 webseeds and
// BEP 47 padding, on the browser's native APIs only.
export { Torrent } from './torrent'
export type { TorrentOptions, TorrentEvents, Stats, Source, WebseedMode } from './options'
export type { Want } from './picker'
export type { Head } from './head'
export { padBytes, parseInfo, type Info, type TorrentFile } from './metainfo'
export { MemoryStore, type PieceStore } from './store'
export { decode, encode, rawValue } from './bencode'
export { concat, equal, hex, fromHex, sha1 } from './bytes'
export { linkVia, serveLinks, type Connect } from './rtc'
