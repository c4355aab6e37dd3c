// Drives the real bittorrent-tracker npm client against a tracker: node client.mjs <ws-url>.
//
// Three clients take part, as two visitors would: the seeder's page holds two torrents (clients "seeder" and
// "seeder2", one peer ID, one shared socket, as a WebTorrent client multiplexes its torrents), and a leecher
// joins the first torrent from a socket of its own. WebRTC is faked (fake-webrtc.mjs): offers and answers are
// real simple-peer signalling, but no connection is ever made.
//
// The script runs in steps. After each it prints one JSON line, {step, ...observations}, and waits for a line
// "next" on stdin, so that the Go test can compare the tracker's own counters with what the client saw before
// anything else happens. It judges nothing itself: the Go test holds the expectations.
import { register } from 'node:module'
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'

register('./hooks.mjs', import.meta.url)
const { default: Client } = await import('bittorrent-tracker/client')
const fake = await import('./fake-webrtc.mjs')

const STEP_TIMEOUT = 10_000 // ms to wait for one tracker reply; loopback replies take a few ms

const url = process.argv[2]
if (!url) fail('usage: node client.mjs <ws-url>')

const hex = s => createHash('sha1').update(s).digest('hex') // deterministic, and full of bytes >= 0x80
const ids = {
  infoHash1: hex('interop torrent 1'),
  infoHash2: hex('interop torrent 2'),
  seeder: hex('interop seeder peer'),
  leecher: hex('interop leecher peer')
}
const LENGTH = 3 * 1024 * 1024

const warnings = []
const peers = {} // client name -> peer IDs (hex) of the 'peer' events it emitted
let left = {} // client name -> what it announces as `left`

function newClient (name, { announce, infoHash, peerId }) {
  const c = new Client({
    announce,
    infoHash,
    peerId,
    port: 6881, // required in Node, unused by WebSocket trackers
    rtcConfig: { owner: name }, // passed to fake-webrtc's RTCPeerConnection
    getAnnounceOpts: () => ({ left: left[name] })
  })
  c.name = name
  peers[name] = []
  c.on('warning', err => warnings.push(`${name}: ${err.message}`))
  c.on('error', err => warnings.push(`${name} error: ${err.message}`))
  c.on('peer', p => {
    peers[name].push(p.id)
    p.on('error', () => {}) // fake peers never connect; their errors are not the tracker's
  })
  return c
}

// waitFor resolves with the next `event` of `emitter`, bounded by STEP_TIMEOUT. Call it before the action
// that causes the event.
function waitFor (emitter, event, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, on)
      reject(new Error(`timed out after ${STEP_TIMEOUT} ms waiting for ${what}`))
    }, STEP_TIMEOUT)
    function on (data) {
      clearTimeout(timer)
      resolve(data)
    }
    emitter.once(event, on)
  })
}

const update = d => ({ infoHash: d.infoHash, complete: d.complete, incomplete: d.incomplete, interval: d.interval, announce: d.announce })

// scrape asks `client` for the given torrents and collects one 'scrape' event per torrent.
function scrape (client, infoHashes) {
  return new Promise((resolve, reject) => {
    const files = {}
    const timer = setTimeout(() => {
      client.removeListener('scrape', on)
      reject(new Error(`timed out waiting for scrape of ${infoHashes}`))
    }, STEP_TIMEOUT)
    function on (d) {
      files[d.infoHash] = { complete: d.complete, incomplete: d.incomplete, downloaded: d.downloaded }
      if (infoHashes.every(ih => files[ih])) {
        clearTimeout(timer)
        client.removeListener('scrape', on)
        resolve(files)
      }
    }
    client.on('scrape', on)
    client.scrape({ infoHash: infoHashes })
  })
}

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

async function checkpoint (step, data) {
  const sdp = { made: fake.log.made.splice(0), received: fake.log.received.splice(0) }
  const peerEvents = Object.fromEntries(Object.entries(peers).map(([k, v]) => [k, v.splice(0)]))
  process.stdout.write(JSON.stringify({ step, ...data, peers: peerEvents, sdp, warnings: warnings.splice(0) }) + '\n')
  const { value, done } = await stdin.next()
  if (done || value.trim() !== 'next') fail(`step ${step}: expected "next" on stdin, got ${JSON.stringify(value)}`)
}

function fail (msg) {
  process.stdout.write(JSON.stringify({ step: 'error', error: msg }) + '\n')
  process.exit(1)
}

try {
  // Separate URLs give separate sockets: bittorrent-tracker pools sockets by announce URL within a process,
  // and two visitors do not share one. The tracker serves every path.
  const seederURL = url + '/?visitor=seeder'
  const leecherURL = url + '/?visitor=leecher'
  const seeder = newClient('seeder', { announce: [seederURL], infoHash: ids.infoHash1, peerId: ids.seeder })
  const seeder2 = newClient('seeder2', { announce: [seederURL], infoHash: ids.infoHash2, peerId: ids.seeder })

  // 1. Both torrents of the seeder start, over one socket. Their offers find nobody to go to.
  left = { seeder: 0, seeder2: 0, leecher: LENGTH }
  let u1 = waitFor(seeder, 'update', 'seeder started')
  let u2 = waitFor(seeder2, 'update', 'seeder2 started')
  seeder.start()
  seeder2.start()
  await checkpoint('seeders', { ids, updates: { seeder: update(await u1), seeder2: update(await u2) } })

  // 2. The leecher starts: its offer goes to the seeder, whose answer comes back to it. (A client opens its
  // socket when it is made.)
  const leecher = newClient('leecher', { announce: [leecherURL], infoHash: ids.infoHash1, peerId: ids.leecher })
  u1 = waitFor(leecher, 'update', 'leecher started')
  let offered = waitFor(seeder, 'peer', 'the leecher\'s offer at the seeder')
  let answered = waitFor(leecher, 'peer', 'the seeder\'s answer at the leecher')
  leecher.start()
  const started = update(await u1)
  await offered
  await answered
  await checkpoint('leecher', { updates: { leecher: started } })

  // 3. The leecher scrapes both torrents in one request.
  await checkpoint('scrape', { scrape: await scrape(leecher, [ids.infoHash1, ids.infoHash2]) })

  // 4. A regular announce with offers, as the client sends on its interval.
  left.leecher = LENGTH / 2
  u1 = waitFor(leecher, 'update', 'leecher update')
  offered = waitFor(seeder, 'peer', 'the leecher\'s second offer at the seeder')
  answered = waitFor(leecher, 'peer', 'the seeder\'s second answer at the leecher')
  leecher.update()
  const updated = update(await u1)
  await offered
  await answered
  await checkpoint('update', { updates: { leecher: updated } })

  // 5. The leecher completes and becomes a seeder.
  left.leecher = 0
  u1 = waitFor(leecher, 'update', 'leecher completed')
  leecher.complete()
  const completed = update(await u1)
  await checkpoint('completed', { updates: { leecher: completed }, scrape: await scrape(leecher, [ids.infoHash1]) })

  // 6. The leecher stops and closes its socket.
  u1 = waitFor(leecher, 'update', 'leecher stopped')
  leecher.stop()
  const stopped = update(await u1)
  await new Promise(resolve => leecher.destroy(resolve))
  await checkpoint('leecher-stopped', { updates: { leecher: stopped }, scrape: await scrape(seeder, [ids.infoHash1]) })

  // 7. The seeder stops both torrents; its socket stays open until the clients are destroyed.
  u1 = waitFor(seeder, 'update', 'seeder stopped')
  u2 = waitFor(seeder2, 'update', 'seeder2 stopped')
  seeder.stop()
  seeder2.stop()
  const updates = { seeder: update(await u1), seeder2: update(await u2) }
  await checkpoint('seeders-stopped', { updates, scrape: await scrape(seeder, [ids.infoHash1, ids.infoHash2]) })

  // 8. Close everything.
  await new Promise(resolve => seeder.destroy(resolve))
  await new Promise(resolve => seeder2.destroy(resolve))
  await checkpoint('closed', {})
  process.exit(0)
} catch (err) {
  fail(err.stack || String(err))
}
