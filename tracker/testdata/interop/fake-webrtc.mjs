// A signalling-only stand-in for `webrtc-polyfill`, enough for simple-peer (as bittorrent-tracker's client
// uses it) to create offers and answers, but never to connect. Its session descriptions are marked with the
// `owner` given in the RTCPeerConnection configuration (bittorrent-tracker passes its `rtcConfig` option
// through), and every description made or received is logged, so a test can check that the tracker relayed
// each one verbatim between the right peers.

export const log = { made: [], received: [] } // { owner, type, sdp }

let serial = 0

export class RTCSessionDescription {
  constructor ({ type, sdp }) {
    this.type = type
    this.sdp = sdp
  }
}

export class RTCIceCandidate {
  constructor (init = {}) {
    Object.assign(this, init)
  }
}

class FakeDataChannel {
  constructor (label) {
    this.label = label
    this.readyState = 'connecting'
    this.bufferedAmount = 0
    this.binaryType = 'arraybuffer'
  }

  send () { throw new Error('fake-webrtc: data channels never open') }
  close () { this.readyState = 'closed' }
}

export class RTCPeerConnection {
  constructor (config = {}) {
    this.owner = config.owner || 'unknown'
    this.localDescription = null
    this.remoteDescription = null
    this.signalingState = 'stable'
    this.iceConnectionState = 'new'
    this.iceGatheringState = 'new'
    this.connectionState = 'new'
  }

  createDataChannel (label) { return new FakeDataChannel(label) }

  _describe (type) {
    serial++
    const sdp = `v=0\r\no=${this.owner} ${serial} 1 IN IP4 0.0.0.0\r\ns=fake-webrtc ${type} from ${this.owner}\r\nt=0 0\r\n`
    log.made.push({ owner: this.owner, type, sdp })
    return { type, sdp }
  }

  async createOffer () { return this._describe('offer') }
  async createAnswer () { return this._describe('answer') }

  async setLocalDescription (desc) {
    this.localDescription = new RTCSessionDescription(desc)
    this.signalingState = desc.type === 'offer' ? 'have-local-offer' : 'stable'
    // No candidates to gather: end gathering at once, as a browser with trickle off would after gathering.
    setTimeout(() => {
      this.iceGatheringState = 'complete'
      this.onicecandidate?.({ candidate: null })
    }, 0)
  }

  async setRemoteDescription (desc) {
    this.remoteDescription = new RTCSessionDescription(desc)
    this.signalingState = desc.type === 'offer' ? 'have-remote-offer' : 'stable'
    log.received.push({ owner: this.owner, type: desc.type, sdp: desc.sdp })
  }

  async addIceCandidate () {}
  async getStats () { return new Map() }
  removeTrack () {}

  close () {
    this.signalingState = 'closed'
    this.iceConnectionState = 'closed'
    this.connectionState = 'closed'
  }
}

export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate }
