// Whether this page view takes part in the swarm, and whether it uploads: the operator's switch (in the
// manifest), the page's (attributes on the script tag), the visitor's (stored in localStorage by the
// window.swarmgate API) and what the browser says about its connection, its battery and its user's privacy
// preferences. The loader owns the one policy of a page; the engine asks it before serving any peer and is
// told when it may have changed. docs/privacy.md documents every switch and reason.
import type { Manifest, Mode, Policy } from './manifest'

// The localStorage key of the visitor's choice: "off" (no engine: plain HTTP) or "download-only".
export const CHOICE_KEY = 'swarmgate'
// Below this battery level, a browser that is not charging stops uploading.
const LOW_BATTERY = 0.2

export function storedChoice(): string | null {
  try {
    return localStorage.getItem(CHOICE_KEY)
  } catch {
    return null // storage blocked: no choice was stored
  }
}

// What browsers tell of the connection and the battery (Network Information and Battery Status APIs; not in
// every browser, nor in TypeScript's DOM types).
interface Connection extends EventTarget {
  saveData?: boolean
  type?: string
  effectiveType?: string
}
interface Battery extends EventTarget {
  charging: boolean
  level: number
}
interface Nav {
  connection?: Connection
  getBattery?: () => Promise<Battery>
  globalPrivacyControl?: boolean
  doNotTrack?: string | null
}

export interface PagePolicy extends Policy {
  // Settles once the browser's battery state is known (or cannot be), so no upload precedes it.
  ready: Promise<void>
  setManifest(m: Manifest): void
  changed(): void
}

export function pagePolicy(script: HTMLScriptElement | null): PagePolicy {
  const nav = navigator as Navigator & Nav
  const conn = nav.connection
  let manifest: Manifest | undefined
  let batteryLow = false
  const watchers: (() => void)[] = []
  const changed = () => watchers.forEach(f => f())
  conn?.addEventListener?.('change', changed)
  addEventListener('storage', changed) // the visitor's choice, made in another tab
  const ready: Promise<void> = nav.getBattery
    ? nav.getBattery().then((b) => {
        const check = () => {
          batteryLow = !b.charging && b.level < LOW_BATTERY
          changed()
        }
        b.addEventListener('chargingchange', check)
        b.addEventListener('levelchange', check)
        check()
      }, () => {})
    : Promise.resolve()

  const mode = (): Mode => {
    const page = script?.dataset ?? {}
    const choice = storedChoice()
    const is = (mode: Mode['mode'], reason: string): Mode => ({ mode, reason })
    if (page.swarm === 'off') return is('off', 'page')
    if (choice === 'off') return is('off', 'visitor')
    if (typeof RTCPeerConnection !== 'function') return is('off', 'no-webrtc')
    if (manifest?.uploads === 'off') return is('download-only', 'operator')
    if (page.upload === 'off') return is('download-only', 'page')
    if (choice === 'download-only') return is('download-only', 'visitor')
    if (!manifest?.ignoreGPC) {
      if (nav.globalPrivacyControl === true) return is('download-only', 'gpc')
      if (nav.doNotTrack === '1') return is('download-only', 'dnt')
    }
    if (conn?.saveData) return is('download-only', 'save-data')
    if (conn?.type === 'cellular') return is('download-only', 'cellular')
    if (/2g/.test(conn?.effectiveType ?? '')) return is('download-only', 'slow-network') // "slow-2g" and "2g"
    if (batteryLow) return is('download-only', 'battery')
    return is('p2p', '')
  }

  return {
    mode,
    ready,
    watch: f => void watchers.push(f),
    setManifest: m => {
      manifest = m
      changed()
    },
    changed,
  }
}
