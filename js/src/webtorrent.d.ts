declare module 'webtorrent/dist/webtorrent.min.js' {
  const WebTorrent: any
  export default WebTorrent
}
