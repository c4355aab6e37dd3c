// The dashboard's script: reads /.swarm/status/stream and draws. No framework, no build step.
'use strict'
const SOURCES = [
  ['origin', 'origin', '#d9480f'],
  ['gateway_http', 'gateway HTTP', '#1c7ed6'],
  ['seeder', 'gateway seeder', '#7048e8'],
  ['helpers', 'helpers', '#0ca678'],
  ['peers', 'browser peers', '#74b816'],
]
const HISTORY = 120 // seconds shown
const history = [] // {t, rate, threshold, state, bps: {source: bytes/s}}
let last = null
const $ = id => document.getElementById(id)

function fmtBytes (n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++ }
  return (i ? n.toFixed(1) : String(Math.round(n))) + ' ' + u[i]
}
function fmtAge (since) {
  const s = Math.max(0, Math.round((Date.now() - new Date(since)) / 1000))
  return s < 120 ? s + ' s' : Math.round(s / 60) + ' min'
}
function row (cells) {
  const tr = document.createElement('tr')
  for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.append(td) }
  return tr
}
function fill (id, rows, empty, cols) {
  const tb = $(id).querySelector('tbody')
  tb.replaceChildren()
  if (!rows.length) { const tr = row([empty]); tr.firstChild.colSpan = cols; tr.firstChild.className = 'empty'; tb.append(tr); return }
  for (const r of rows) tb.append(row(r))
}

function update (s) {
  const now = new Date(s.time).getTime()
  const bps = {}
  for (const [k] of SOURCES) {
    const dt = last ? (now - last.t) / 1000 : 0
    bps[k] = last && dt > 0 ? Math.max(0, ((s.bytes[k] || 0) - (last.bytes[k] || 0)) / dt) : 0
  }
  last = { t: now, bytes: s.bytes }
  history.push({ t: now, rate: s.rate, threshold: s.threshold, state: s.state, bps })
  while (history.length > HISTORY) history.shift()

  $('site').textContent = s.site || ''
  $('state').textContent = s.state
  $('state').dataset.state = s.state
  $('since').textContent = 'for ' + fmtAge(s.stateSince)
  $('rate').textContent = s.rate.toFixed(1)
  $('threshold').textContent = s.threshold.toFixed(0)
  $('offload').textContent = (100 * s.offload).toFixed(1) + ' %'
  $('latency').textContent = s.originLatencyMs.toFixed(0) + ' ms'
  $('peers').textContent = s.tracker.peers
  $('conns').textContent = s.tracker.connections
  fill('swarms', s.swarms.map(w => [w.version + (w.current ? ' (current)' : ''), w.files, fmtBytes(w.bytes), w.seeders, w.leechers]), 'no site version yet', 5)
  fill('helpers', s.helpers.map(h => [h.name, h.state + (h.state === 'ready' && !h.fetched ? ' (fetching)' : ''), h.healthy ? 'healthy' : 'failing', h.address]), 'no helpers', 4)
  fill('dns', s.dns.map(d => [d.name, d.addrs.join(', '), d.ttl + ' s']), 'no records published', 3)
  document.body.dataset.updated = String(now)
  draw()
}

function scaleCanvas (c) {
  const r = window.devicePixelRatio || 1
  const w = c.clientWidth, h = c.clientHeight
  if (c.width !== w * r) { c.width = w * r; c.height = h * r }
  const g = c.getContext('2d')
  g.setTransform(r, 0, 0, r, 0, 0)
  g.clearRect(0, 0, w, h)
  return [g, w, h]
}

function draw () {
  const n = history.length
  if (!n) return
  // Request rate with the threshold line.
  let [g, w, h] = scaleCanvas($('rateChart'))
  const maxRate = Math.max(1, ...history.map(p => Math.max(p.rate, p.threshold))) * 1.15
  const x = i => (w * (i + HISTORY - n)) / (HISTORY - 1)
  const yr = v => h - 4 - (h - 8) * v / maxRate
  g.strokeStyle = '#d9480f'; g.setLineDash([6, 4]); g.beginPath()
  history.forEach((p, i) => i ? g.lineTo(x(i), yr(p.threshold)) : g.moveTo(x(i), yr(p.threshold))); g.stroke()
  g.setLineDash([]); g.strokeStyle = '#1d1d1f'; g.lineWidth = 2; g.beginPath()
  history.forEach((p, i) => i ? g.lineTo(x(i), yr(p.rate)) : g.moveTo(x(i), yr(p.rate))); g.stroke(); g.lineWidth = 1
  $('timeline').replaceChildren(...history.map(p => { const s = document.createElement('span'); s.className = p.state; return s }))

  // Bytes per second, stacked by source.
  ;[g, w, h] = scaleCanvas($('bytesChart'))
  const totals = history.map(p => SOURCES.reduce((a, [k]) => a + p.bps[k], 0))
  const maxB = Math.max(1, ...totals) * 1.15
  const yb = v => h - 4 - (h - 8) * v / maxB
  const base = history.map(() => 0)
  for (const [k, , color] of SOURCES) {
    g.fillStyle = color; g.beginPath()
    history.forEach((p, i) => i ? g.lineTo(x(i), yb(base[i] + p.bps[k])) : g.moveTo(x(i), yb(base[i] + p.bps[k])))
    for (let i = n - 1; i >= 0; i--) g.lineTo(x(i), yb(base[i]))
    g.closePath(); g.fill()
    history.forEach((p, i) => { base[i] += p.bps[k] })
  }
  g.fillStyle = '#6e6e73'; g.font = '12px system-ui'
  g.fillText(fmtBytes(maxB / 1.15) + '/s', 4, 14)
}

$('legend').replaceChildren(...SOURCES.map(([, label, color]) => {
  const s = document.createElement('span'); const i = document.createElement('i'); i.style.background = color
  s.append(i, label); return s
}))

function connect () {
  const token = new URLSearchParams(location.search).get('token')
  const es = new EventSource('/.swarm/status/stream' + (token ? '?token=' + encodeURIComponent(token) : ''))
  es.onopen = () => { $('conn').textContent = 'live' }
  es.onmessage = ev => update(JSON.parse(ev.data))
  es.onerror = () => { $('conn').textContent = 'reconnecting…' }
}
connect()
