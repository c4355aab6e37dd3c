// The CPU benchmark's worker (cpu.html, engine "worker"): our core in a dedicated worker, as the page engine
// runs it. The page makes the peer connections (serveLinks) and transfers each data channel here, so that
// the channels' messages, their parsing, the copies and the hashing all stay off the page's main thread.
// Requests come as {op, ...} and each gets one reply: the result, or {error}.
import * as mod from '/p2p.js'

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
const sha256 = async (b) => hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)))

let core
const ops = {
  // run: the same download as cpu.html's in-page engine, its peer connections made by the page.
  async run ({ a, port }) {
    let received = 0
    const peers = []
    core = await mod.Torrent.create({ info: b64(a.info), infoHash: mod.fromHex(a.infoHash), trackers: a.trackers, connect: mod.linkVia(port) })
    core.on('download', (e) => { received += e.bytes })
    core.on('peer', (e) => e.open && peers.push(e.id))
    await new Promise((resolve) => (core.done ? resolve() : core.on('done', resolve)))
    const s = core.getStats()
    if (s.webseedBytes !== 0) throw new Error(`${s.webseedBytes} bytes from webseeds`)
    return { bytes: s.peerBytes, received, peers }
  },
  async files () {
    const out = {}
    for (const f of core.info.files) if (!f.pad) out[f.path.join('/')] = await sha256(core.read(f.offset, f.offset + f.length))
    return { files: out }
  },
  async stop () {
    core?.destroy()
    return true
  },
}

onmessage = async (e) => {
  try {
    postMessage(await ops[e.data.op](e.data))
  } catch (err) {
    postMessage({ error: String((err && err.stack) || err) })
  }
}
