// A typed event emitter: E maps each event name to its payload type.
export class Emitter<E> {
  private handlers: { [K in keyof E]?: ((v: E[K]) => void)[] } = {}

  // on adds a handler and returns the function that removes it.
  on<K extends keyof E>(k: K, f: (v: E[K]) => void): () => void {
    const hs = (this.handlers[k] ??= [])
    hs.push(f)
    return () => {
      const i = hs.indexOf(f)
      if (i >= 0) hs.splice(i, 1)
    }
  }

  protected emit<K extends keyof E>(k: K, v: E[K]): void {
    for (const f of this.handlers[k] ?? []) {
      try {
        f(v)
      } catch (e) {
        console.error(e)
      }
    }
  }
}
