// HTTP byte ranges as the service worker serves them (sw.ts); a module of its own so the unit tables in
// js/testdata can check it.

// byteRange reads a Range header for a file of size bytes: [start, end), null for the whole file (no header,
// or one this worker does not serve: several ranges, other units), or 'unsatisfiable'.
export function byteRange(h: string | null, size: number): [number, number] | null | 'unsatisfiable' {
  const r = h && /^bytes=(\d*)-(\d*)$/.exec(h.trim())
  if (!r || (r[1] === '' && r[2] === '')) return null
  let start: number, end: number
  if (r[1] === '') {
    start = Math.max(0, size - Number(r[2]))
    end = size
  } else {
    start = Number(r[1])
    end = r[2] === '' ? size : Math.min(Number(r[2]) + 1, size)
  }
  return start >= size || start >= end ? 'unsatisfiable' : [start, end]
}
