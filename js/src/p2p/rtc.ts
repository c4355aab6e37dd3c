// WebRTC connections as WebTorrent makes them: one reliable, ordered data channel per peer connection, and
// session descriptions sent whole once ICE gathering is complete (no trickle), since the tracker relays one
// offer and one answer.

import { hex, randomBytes } from './bytes'

// GATHER_MS bounds ICE gathering: host candidates take milliseconds and STUN a round trip, but a STUN or
// TURN server that never answers would hold the offer forever. What was gathered by then is sent (as
// WebTorrent's simple-peer does after its 5 s).
const GATHER_MS = 5000
// OPEN_MS is how long a connection may take from the remote description to an open data channel before it
// is given up: ICE checks plus DTLS take well under a second on working paths.
export const OPEN_MS = 15000

export interface Description {
  type: 'offer' | 'answer'
  sdp: string
}

// Conn is one peer connection on its way to an open data channel.
export class Conn {
  readonly pc: RTCPeerConnection
  dc?: RTCDataChannel
  peerId?: Uint8Array // the remote peer's, as the tracker named it
  closed = false
  failed = false // ICE or DTLS failed (else it was closed, or timed out)
  onclose?: () => void
  // early holds data-channel messages received before onopen's callee set its own handler; it must take
  // them first. (A peer's handshake was lost that way in about one engine-to-engine connection in ten.)
  early: ArrayBuffer[] = []
  private timer?: ReturnType<typeof setTimeout>
  private wake?: () => void // ends a wait for ICE gathering

  // onopen runs once with the open data channel (binaryType arraybuffer); it is not called once the
  // connection is closed.
  constructor(config: RTCConfiguration, public onopen: (c: Conn, dc: RTCDataChannel) => void) {
    this.pc = new RTCPeerConnection(config)
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState
      this.failed ||= s === 'failed'
      if (s === 'failed' || s === 'closed') this.close()
    }
  }

  // offer makes the data channel and returns the complete offer.
  async offer(): Promise<Description> {
    this.bind(this.pc.createDataChannel(hex(randomBytes(20))))
    await this.pc.setLocalDescription(await this.pc.createOffer())
    return this.gathered()
  }

  // answer takes a remote offer and returns the complete answer; the data channel arrives from the offerer.
  async answer(offer: Description): Promise<Description> {
    this.pc.ondatachannel = (e) => this.bind(e.channel)
    await this.pc.setRemoteDescription(offer)
    this.deadline()
    await this.pc.setLocalDescription(await this.pc.createAnswer())
    return this.gathered()
  }

  // accept takes the answer to our offer.
  async accept(answer: Description): Promise<void> {
    this.deadline()
    await this.pc.setRemoteDescription(answer)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.timer)
    this.wake?.()
    try {
      this.dc?.close()
      this.pc.close()
    } catch {}
    this.onclose?.()
  }

  // deadline closes the connection unless its data channel opens within ms.
  deadline(ms = OPEN_MS): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.close(), ms)
  }

  private bind(dc: RTCDataChannel): void {
    if (this.dc) return dc.close()
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

  private async gathered(): Promise<Description> {
    const pc = this.pc
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, GATHER_MS)
        this.wake = () => {
          clearTimeout(t)
          resolve()
        }
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') this.wake?.()
        })
      })
    }
    const d = pc.localDescription
    if (!d || this.closed) throw new Error('rtc: closed while gathering')
    return { type: d.type as Description['type'], sdp: d.sdp }
  }
}
