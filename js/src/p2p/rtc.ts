// WebRTC connections as WebTorrent makes them: one reliable, ordered data channel per peer connection, and
// session descriptions sent whole once ICE gathering is complete (no trickle), since the tracker relays one
// offer and one answer.
//
// A Conn drives its RTCPeerConnection through a Link. The peer connection may live in this realm (linkHere),
// or, for a core that runs in a worker (where browsers have no RTCPeerConnection), in the page that started
// the worker (linkVia, served there by serveLinks): the page then makes the connection and transfers its data
// channel to the worker, so that the channel's messages are delivered to the worker's thread and never touch
// the page's main thread.

import { hex, randomBytes } from './bytes'

// GATHER_MS bounds ICE gathering: host candidates take milliseconds and STUN a round trip, but a STUN or
// TURN server that never answers would hold the offer forever. What was gathered by then is sent (as
// WebTorrent's simple-peer does after its 5 s).
const GATHER_MS = 5000
// SETTLE_MS: once a candidate that can connect is in (a UDP one; server-reflexive when STUN servers are
// configured, since across the internet a host candidate, hidden behind an mDNS name, reaches no one; relayed
// when a TURN server is, for peers behind NATs that only a relay gets through), the description goes after
// this long without another candidate, without waiting for gathering to complete: Chromium 156 gives its host
// candidates within a few milliseconds and calls gathering complete 120 to 140 ms after them.
const SETTLE_MS = 40
// OPEN_MS is how long a connection may take from the remote description to an open data channel before it
// is given up: ICE checks plus DTLS take well under a second on working paths.
export const OPEN_MS = 15000

export interface Description {
  type: 'offer' | 'answer'
  sdp: string
}

// Link is one RTCPeerConnection as a Conn uses it. ondatachannel gets its data channel (the one offer made,
// or the remote offerer's) and onend its end: failed (ICE or DTLS) or closed.
export interface Link {
  offer(label: string): Promise<Description> // makes the data channel; the complete offer
  answer(offer: Description): Promise<Description> // the complete answer
  accept(answer: Description): Promise<void>
  close(): void
  ondatachannel?: (dc: RTCDataChannel) => void
  onend?: (failed: boolean) => void
}

// Connect makes a Link for one peer connection with the caller's configuration (its ICE servers).
export type Connect = (config: RTCConfiguration) => Link

// linkHere makes the peer connection in this realm.
export const linkHere: Connect = (config) => {
  const pc = new RTCPeerConnection(config)
  let wake: (() => void) | undefined // ends a wait for ICE gathering
  let closed = false
  // Candidates are watched from the start, so that none comes before the wait does (gathered).
  const urls = (config.iceServers ?? []).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]))
  const want = urls.some((u) => /^turns?:/i.test(u)) ? ['relay'] : urls.length ? ['srflx', 'relay'] : ['host', 'srflx', 'relay']
  let usable = false
  let settle: ReturnType<typeof setTimeout> | undefined
  pc.addEventListener('icecandidate', (e) => {
    const c = e.candidate?.candidate
    if (!c) return
    const typ = / typ (\w+)/.exec(c)?.[1]
    usable ||= / udp /i.test(c) && want.includes(typ ?? '')
    if (!usable) return
    clearTimeout(settle)
    settle = setTimeout(() => wake?.(), SETTLE_MS)
  })
  const link: Link = {
    async offer(label) {
      link.ondatachannel?.(pc.createDataChannel(label))
      await pc.setLocalDescription(await pc.createOffer())
      return gathered()
    },
    async answer(offer) {
      pc.ondatachannel = (e) => link.ondatachannel?.(e.channel)
      await pc.setRemoteDescription(offer)
      await pc.setLocalDescription(await pc.createAnswer())
      return gathered()
    },
    accept: (answer) => pc.setRemoteDescription(answer),
    close() {
      if (closed) return
      closed = true
      wake?.()
      try {
        pc.close()
      } catch {}
    },
  }
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState
    if (s === 'failed' || s === 'closed') link.onend?.(s === 'failed')
  }
  const gathered = async (): Promise<Description> => {
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, GATHER_MS)
        wake = () => {
          clearTimeout(t)
          clearTimeout(settle)
          resolve()
        }
        // Settled while the description was being set (candidates came first): go once quiet again.
        if (usable) settle = setTimeout(() => wake?.(), SETTLE_MS)
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') wake?.()
        })
      })
    }
    const d = pc.localDescription
    if (!d || closed) throw new Error('rtc: closed while gathering')
    return { type: d.type as Description['type'], sdp: d.sdp }
  }
  return link
}

// What crosses the port between linkVia (the worker) and serveLinks (the page), by link ID:
//   worker → page  {id, op: 'offer', config, label} | {id, op: 'answer', config, offer} | {id, op: 'accept', answer}
//                  | {id, op: 'close'}
//   page → worker  {id, dc} (the data channel, transferred) | {id, desc} | {id, error} | {id, end: failed}
type Request =
  | { id: number; op: 'offer'; config: RTCConfiguration; label: string }
  | { id: number; op: 'answer'; config: RTCConfiguration; offer: Description }
  | { id: number; op: 'accept'; answer: Description }
  | { id: number; op: 'close' }
interface Reply {
  id: number
  dc?: RTCDataChannel
  desc?: Description
  accepted?: boolean
  error?: string
  end?: boolean
}

// linkVia makes peer connections in the realm at the other end of port, where serveLinks answers.
export function linkVia(port: MessagePort): Connect {
  let next = 0
  const links = new Map<number, { link: Link; wait?: (r: Reply) => void }>()
  port.onmessage = (e: MessageEvent<Reply>) => {
    const r = e.data
    const l = links.get(r.id)
    if (!l) return r.dc?.close()
    if (r.dc) l.link.ondatachannel?.(r.dc)
    else if (r.end !== undefined) {
      links.delete(r.id)
      l.wait?.({ id: r.id, error: 'rtc: connection ended' })
      l.link.onend?.(r.end)
    } else l.wait?.(r)
  }
  return (config) => {
    const id = next++
    const entry: { link: Link; wait?: (r: Reply) => void } = { link: undefined as unknown as Link }
    const ask = (req: Request): Promise<Reply> =>
      new Promise((resolve, reject) => {
        if (!links.has(id)) return reject(new Error('rtc: closed'))
        entry.wait = (r) => {
          entry.wait = undefined
          if (r.error !== undefined) reject(new Error(r.error))
          else resolve(r)
        }
        port.postMessage(req)
      })
    const desc = (r: Reply) => {
      if (!r.desc) throw new Error('rtc: no description')
      return r.desc
    }
    entry.link = {
      offer: async (label) => desc(await ask({ id, op: 'offer', config, label })),
      answer: async (offer) => desc(await ask({ id, op: 'answer', config, offer })),
      accept: async (answer) => void (await ask({ id, op: 'accept', answer })),
      close() {
        if (!links.delete(id)) return
        entry.wait?.({ id, error: 'rtc: closed while gathering' })
        port.postMessage({ id, op: 'close' } satisfies Request)
      },
    }
    links.set(id, entry)
    return entry.link
  }
}

// serveLinks makes the peer connections that linkVia asks for at the other end of port, with connect, and
// transfers each data channel there as it is made (a channel can be transferred only before it is used).
export function serveLinks(port: MessagePort, connect: Connect = linkHere): void {
  const links = new Map<number, Link>()
  const reply = (r: Reply, transfer: Transferable[] = []) => port.postMessage(r, transfer)
  port.onmessage = (e: MessageEvent<Request>) => {
    const r = e.data
    if (r.op === 'close') {
      links.get(r.id)?.close()
      links.delete(r.id)
      return
    }
    let link = links.get(r.id)
    if (!link) {
      if (r.op === 'accept') return reply({ id: r.id, error: 'rtc: no such connection' })
      const made = (link = connect(r.config))
      links.set(r.id, made)
      made.ondatachannel = (dc) => reply({ id: r.id, dc }, [dc])
      // A failed connection is closed here: the other end's link is gone once it hears of the end, and its
      // close asks nothing of this side.
      made.onend = (failed) => {
        if (!links.delete(r.id)) return
        reply({ id: r.id, end: failed })
        made.close()
      }
    }
    const answered =
      r.op === 'offer' ? link.offer(r.label) : r.op === 'answer' ? link.answer(r.offer) : link.accept(r.answer).then(() => undefined)
    answered.then(
      (desc) => reply({ id: r.id, desc: desc ?? undefined, accepted: true }),
      (err: unknown) => reply({ id: r.id, error: String(err instanceof Error ? err.message : err) }),
    )
  }
}

// Conn is one peer connection on its way to an open data channel.
export class Conn {
  private readonly link: Link
  dc?: RTCDataChannel
  peerId?: Uint8Array // the remote peer's, as the tracker named it
  closed = false
  failed = false // ICE or DTLS failed (else it was closed, or timed out)
  onclose?: () => void
  // early holds data-channel messages received before onopen's callee set its own handler; it must take
  // them first. (A peer's handshake was lost that way in about one engine-to-engine connection in ten.)
  early: ArrayBuffer[] = []
  private timer?: ReturnType<typeof setTimeout>

  // onopen runs once with the open data channel (binaryType arraybuffer); it is not called once the
  // connection is closed.
  constructor(
    config: RTCConfiguration,
    public onopen: (c: Conn, dc: RTCDataChannel) => void,
    connect: Connect = linkHere,
  ) {
    this.link = connect(config)
    this.link.ondatachannel = (dc) => this.bind(dc)
    this.link.onend = (failed) => {
      this.failed ||= failed
      this.close()
    }
  }

  // offer makes the data channel and returns the complete offer.
  offer(): Promise<Description> {
    return this.link.offer(hex(randomBytes(20)))
  }

  // answer takes a remote offer and returns the complete answer; the data channel arrives from the offerer.
  answer(offer: Description): Promise<Description> {
    this.deadline()
    return this.link.answer(offer)
  }

  // accept takes the answer to our offer.
  async accept(answer: Description): Promise<void> {
    this.deadline()
    await this.link.accept(answer)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.timer)
    try {
      this.dc?.close()
    } catch {}
    this.link.close()
    this.onclose?.()
  }

  // deadline closes the connection unless its data channel opens within ms.
  deadline(ms = OPEN_MS): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.close(), ms)
  }

  private bind(dc: RTCDataChannel): void {
    if (this.dc || this.closed) return dc.close()
    this.dc = dc
    dc.binaryType = 'arraybuffer'
    // Whatever arrives before the channel's owner listens is kept for it (see early).
    dc.onmessage = (e: MessageEvent<ArrayBuffer>) => this.early.push(e.data)
    const open = () => {
      clearTimeout(this.timer)
      if (!this.closed) this.onopen(this, dc)
    }
    if (dc.readyState === 'open') open()
    else dc.onopen = open
  }
}
