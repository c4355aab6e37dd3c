// The other half of package firefoxtest: drives Debian firefox-esr over WebDriver BiDi with puppeteer-core,
// taking one JSON request a line on stdin and answering one JSON line each on stdout.
//
//   node driver.mjs EXECUTABLE PROFILE_DIR
//   → {"id":0,"value":"firefox/153.8.0"}                            once Firefox is up (or {"id":0,"error":…})
//   ← {"id":1,"op":"newPage"}                                       → {"id":1,"value":1}  (a page in a user context of its own)
//   ← {"id":2,"op":"preload","page":1,"expr":"…"}                   runs expr in every new document before the page's scripts
//   ← {"id":3,"op":"goto","page":1,"url":"http://…","ms":30000}     resolves on the load event
//   ← {"id":4,"op":"eval","page":1,"expr":"…","ms":60000}           awaits a promise; the value comes back as JSON
//   ← {"id":5,"op":"close"}                                         closes Firefox, then exits
//   → {"event":"console","page":1,"text":"log: …"}                  the page's console and uncaught exceptions
//
// Firefox starts headless with a fresh profile and puppeteer's automation preferences only (none of them is
// under media.peerconnection: WebRTC behaves as in a visitor's default Firefox). puppeteer never downloads a
// browser here: executablePath is Debian's.
import puppeteer from 'puppeteer-core'
import readline from 'node:readline'

const [executablePath, userDataDir] = process.argv.slice(2)
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n')

let browser
try {
  browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath,
    userDataDir,
    headless: true,
    timeout: 180000, // a loaded two-core machine took up to 50 s to start Firefox
    dumpio: process.env.FIREFOXTEST_OUTPUT !== undefined,
  })
} catch (e) {
  send({ id: 0, error: `launching firefox: ${e?.message ?? e}` })
  process.exit(1)
}
send({ id: 0, value: await browser.version() })

const pages = new Map()
let nextPage = 1

// within rejects when op takes longer than ms.
function within(ms, what, op) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
  })
  return Promise.race([op, late]).finally(() => clearTimeout(timer))
}

async function handle(req) {
  const page = () => {
    const p = pages.get(req.page)
    if (!p) throw new Error(`no page ${req.page}`)
    return p
  }
  const ms = req.ms ?? 30000
  switch (req.op) {
    case 'newPage': {
      const ctx = await within(ms, 'newPage', browser.createBrowserContext())
      const p = await within(ms, 'newPage', ctx.newPage())
      const id = nextPage++
      pages.set(id, p)
      p.on('console', (m) => send({ event: 'console', page: id, text: `${m.type()}: ${m.text()}` }))
      p.on('pageerror', (e) => send({ event: 'console', page: id, text: `exception: ${e?.message ?? e}` }))
      return id
    }
    case 'preload':
      await within(ms, 'preload', page().evaluateOnNewDocument(req.expr))
      return null
    case 'goto':
      await page().goto(req.url, { timeout: ms, waitUntil: 'load' })
      return null
    case 'eval':
      return await within(ms, 'eval', page().evaluate(req.expr))
    case 'close':
      await within(ms, 'close', browser.close())
      process.exit(0)
    default:
      throw new Error(`unknown op ${req.op}`)
  }
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  let req
  try {
    req = JSON.parse(line)
  } catch (e) {
    return send({ id: -1, error: `bad request: ${e.message}` })
  }
  try {
    send({ id: req.id, value: (await handle(req)) ?? null })
  } catch (e) {
    send({ id: req.id, error: String(e?.message ?? e) })
  }
})
// The test process went away: take Firefox down with us.
lines.on('close', async () => {
  await within(10000, 'close', browser.close()).catch(() => {})
  process.exit(0)
})
