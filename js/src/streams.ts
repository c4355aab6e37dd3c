// What a stream (a service worker's response the engine answers, Engine.serve) asks of the swarm, and by when:
// the engine's deadline policy for streams, apart from the engine so that it can be tested alone.
import { concat, type Want } from './p2p'

// A stream has deadlines on this much ahead of what its reader has taken: the playhead's read-ahead window.
// Past it, the stream's bytes come in the swarm's own order.
export const READ_AHEAD = 2 << 20

// A byte range a stream reads from the torrent: [pos, end) is still to be read, in order.
export interface Stream {
  pos: number
  end: number
  priority: number
  waiting: number // Date.now() when the reader began waiting for pos; 0 while it is not waiting
  image?: boolean // an image's file: it shows once all of it is in
}

// What the engine knows beyond the stream itself.
export interface StreamConditions {
  crowded: boolean // the site is in a crowd or its ending: its link is full
  swarmed: boolean // a peer has sent bytes
  // due is the read-ahead window's deadline for a reader waiting since then: the fallback after it, moved on
  // while the swarm makes progress.
  due(waiting: number): number
}

// streamWants is what one stream wants (the rest of its file is wanted whole, apart, at a lower priority):
//   - its read-ahead window, in order, after files of a higher priority, due (c.due) only while the reader
//     waits: a deadline set while it does not would pass unseen, and a video whose buffer is full is not late.
//     An image's window is the rest of it, however large: it shows once all of it is in (a 2 MB image's last
//     kilobyte past a READ_AHEAD window came in the swarm's order, and the image showed with the page's last).
//     For the same reason its pieces come in no order (the picker's: rarest first, then this client's own
//     random order): visitors who arrive together and want the same image then ask the servers for different
//     pieces of it and trade them, where in order they all asked for the same piece at once;
//   - outside a crowd, until a peer has sent anything, the piece the reader waits for, due at once: the engine
//     joins the swarm only a second after it starts there (engine.ts, SIGNAL_DELAY_MS), and its first bytes
//     over WebRTC come 250 to 350 ms after that (offers, the answer through the tracker, DTLS, the wire's
//     handshake), while the site's webseed, idle then, brings a piece in one round trip; and a
//     swarm that never answers (a tracker down, no peer reachable) does not hold a stream for the fallback. Not
//     in a crowd: the site's link is full then, and the helpers' webseeds take pieces anyway. For an image, the
//     rest of its window is due at once with it: an image shows once all of it is in, and one piece at a time
//     from the webseed cost a round trip each (its first piece comes in the page's head).
export function streamWants(s: Stream, c: StreamConditions): Want[] {
  const priority = s.priority + 0.5
  const end = s.image ? s.end : Math.min(s.end, s.pos + READ_AHEAD)
  const out: Want[] = [{ start: s.pos, end, priority, deadline: s.waiting ? c.due(s.waiting) : undefined, ordered: !s.image }]
  if (s.waiting && !c.swarmed && !c.crowded) out.push({ start: s.pos, end: s.image ? end : s.pos + 1, priority, deadline: s.waiting })
  return out
}

// MAX_CHUNK is the most one chunk of a stream carries (nextChunk): a page's 2 MB image in one message once all
// of it is in.
export const MAX_CHUNK = 4 << 20

// nextChunk is what a stream can read now, as one chunk: the verified pieces in a row from its position (held
// says which are, get reads one; pl is the piece length), up to MAX_CHUNK, or undefined while the first is not
// in. Each chunk costs a round trip through the service worker and on to the page's renderer, which in a
// crowd took 2 to 3 s on a busy machine: a piece at a time, a 2 MB image whose pieces were all in showed 20 s
// later. The chunk is a copy: it is transferred, and the store keeps its pieces.
export async function nextChunk(
  s: { pos: number; end: number },
  pl: number,
  held: (i: number) => boolean,
  get: (i: number) => Uint8Array | undefined | Promise<Uint8Array | undefined>,
): Promise<Uint8Array | undefined> {
  const stop = Math.min(s.end, s.pos + MAX_CHUNK)
  const parts: Uint8Array[] = []
  let at = s.pos
  for (let i = Math.floor(at / pl); at < stop && held(i); i++) {
    const piece = await get(i)
    if (!piece) break
    const part = piece.subarray(at - i * pl, Math.min(stop - i * pl, piece.length))
    parts.push(part)
    at += part.length
  }
  return at === s.pos ? undefined : concat(parts)
}
