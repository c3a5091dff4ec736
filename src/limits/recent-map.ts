// A map that keeps at most `max` entries, forgetting the least recently used first. Built on
// Map's insertion order (a use re-inserts the key), because lru-cache clears its preallocated
// arrays whenever it becomes empty: O(max) per delete of the last entry, about 0.5 ms at
// max 100,000, which the sign-in throttle paid on every connection of an otherwise idle server.

export class RecentMap<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  /** The value, without changing its place. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Sets the value as the most recently used, forgetting the least recently used beyond max. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as K);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
