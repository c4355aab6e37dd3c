// Starts the bittorrent-tracker npm server as the reference tracker of swarmgate's tracker benchmark
// (package trackerload): WebSocket only (no HTTP announce, no UDP, no stats page) on loopback.
//
// Usage: node node_server.mjs [--port PORT] [--modules NODE_MODULES_DIR]
//
// It prints "bittorrent-tracker: listening on ws://127.0.0.1:PORT" once listening and runs until SIGTERM or
// SIGINT. --modules names the node_modules directory holding bittorrent-tracker, for when this script is run
// from outside the project tree; without it the package is resolved from the script's location.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

let port = 0
let modules = ''
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port') port = Number(argv[++i])
  else if (argv[i] === '--modules') modules = argv[++i]
  else {
    console.error(`node_server.mjs: unknown argument ${argv[i]}`)
    process.exit(2)
  }
}

// Import the server entry point only: the package root also loads the WebRTC client and its native module.
const { default: Server } = modules
  ? await import(pathToFileURL(join(modules, 'bittorrent-tracker', 'server.js')).href)
  : await import('bittorrent-tracker/server')

const server = new Server({ http: false, udp: false, ws: true, stats: false })
let warnings = 0
server.on('warning', () => { warnings++ })
server.on('error', err => {
  console.error(`bittorrent-tracker: ${err.message}`)
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => {
  console.log(`bittorrent-tracker: listening on ws://127.0.0.1:${server.ws.address().port}`)
})

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (warnings > 0) console.error(`bittorrent-tracker: ${warnings} warnings`)
    server.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  })
}
