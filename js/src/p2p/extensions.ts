// The extension protocol (BEP 10, LTEP) as this client speaks it: its handshake, and ut_metadata (BEP 9),
// served and never asked for, so that a stock client given only a magnet link can start from us.

import { decode, dict, encode, num } from './bencode'
import { concat } from './bytes'
import type { Peer } from './peer'

// UT_METADATA is our extended message ID for ut_metadata; METADATA_BLOCK the size BEP 9 fixes for its pieces.
const UT_METADATA = 1
const METADATA_BLOCK = 1 << 14

// ltepHandshake is our LTEP handshake's payload: ut_metadata for an info dictionary of infoLength bytes, and
// how many requests we queue (reqq).
export function ltepHandshake(infoLength: number, reqq: number): Uint8Array {
  return encode({ m: { ut_metadata: UT_METADATA }, metadata_size: infoLength, v: 'swarmgate', reqq })
}

// onExtended reads peer p's LTEP handshake and answers its ut_metadata requests with pieces of info (the
// info dictionary). Malformed messages are ignored.
export function onExtended(p: Peer, info: Uint8Array, id: number, payload: Uint8Array): void {
  try {
    const d = dict(decode(payload))
    if (id === 0) p.utMetadata = num(dict(d?.m)?.ut_metadata)
    if (id !== UT_METADATA || !p.utMetadata || num(d?.msg_type) !== 0) return
    const piece = num(d?.piece) ?? -1
    const chunk = info.subarray(piece * METADATA_BLOCK, (piece + 1) * METADATA_BLOCK)
    const ok = piece >= 0 && chunk.length > 0
    const head = encode(ok ? { msg_type: 1, piece, total_size: info.length } : { msg_type: 2, piece })
    p.wire.extended(p.utMetadata, ok ? concat([head, chunk]) : head)
  } catch {}
}
