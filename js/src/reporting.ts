// When the engine tells the gateway what came from where (/.swarm/stats, engine.ts's report): once traffic has
// paused for REPORT_IDLE_MS (bytes that move after a file completed: endgame duplicates, uploads to later
// visitors), and at least every REPORT_EVERY_MS while it goes on. A crowd's page views move bytes without a
// pause for a minute or more; reported only when idle, the site's dashboard and metrics (and the crowd
// benchmark's timeline) saw their browser peers at the end only.

export const REPORT_IDLE_MS = 1000
export const REPORT_EVERY_MS = 10000

// Clock is the time and timers the schedule runs on (a fake one in the unit tests).
export interface Clock {
  now(): number
  after(ms: number, f: () => void): void
}

const realClock: Clock = { now: () => Date.now(), after: (ms, f) => void setTimeout(f, ms) }

// ReportSchedule calls send at those times. One timer at a time, moved on when it fires rather than at every
// block (a block is 16 KiB: hundreds of timers a second otherwise).
export class ReportSchedule {
  private traffic = 0 // when bytes last moved
  private reported: number // when a report last went, from here or elsewhere (sent)
  private armed = false

  constructor(private send: () => void, private clock: Clock = realClock) {
    this.reported = clock.now()
  }

  // moved marks bytes moving now.
  moved(): void {
    this.traffic = this.clock.now()
    if (this.armed) return
    this.armed = true
    this.clock.after(REPORT_IDLE_MS, this.check)
  }

  // sent marks a report made now (by send, or because a file completed or the page goes away).
  sent(): void {
    this.reported = this.clock.now()
  }

  private check = (): void => {
    const now = this.clock.now()
    const quiet = now - this.traffic >= REPORT_IDLE_MS
    if (quiet || now - this.reported >= REPORT_EVERY_MS) this.send()
    if (quiet) {
      this.armed = false
      return
    }
    this.clock.after(Math.min(this.traffic + REPORT_IDLE_MS, this.reported + REPORT_EVERY_MS) - now, this.check)
  }
}
