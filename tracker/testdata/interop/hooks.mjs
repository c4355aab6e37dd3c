// Module resolution hook for client.mjs: bittorrent-tracker's client imports `webrtc-polyfill`, whose
// native module is not built (npm ran with --ignore-scripts). Resolve it to fake-webrtc.mjs instead.
export async function resolve (specifier, context, nextResolve) {
  if (specifier === 'webrtc-polyfill') {
    return { url: new URL('./fake-webrtc.mjs', import.meta.url).href, shortCircuit: true }
  }
  return nextResolve(specifier, context)
}
