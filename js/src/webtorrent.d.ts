declare module 'webtorrent/dist/webtorrent.min.js' {
  const WebTorrent: any
  export default WebTorrent
}

declare module 'fsa-chunk-store' {
  const FSAChunkStore: any
  export default FSAChunkStore
}
