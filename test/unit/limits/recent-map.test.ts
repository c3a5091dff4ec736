// The sign-in throttle's bounded tables: least recently used forgotten first. (Why not
// lru-cache: src/limits/recent-map.ts; the cost is measured by bench/, -C workload.)
import { describe, expect, it } from 'vitest';
import { RecentMap } from '../../../src/limits/recent-map.ts';

describe('RecentMap', () => {
  it('keeps at most max entries, forgetting the least recently used', () => {
    const m = new RecentMap<string, number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    expect(m.get('a')).toBe(1); // a is now the most recent: b goes next
    m.set('d', 4);
    expect(m.size).toBe(3);
    expect(m.peek('b')).toBeUndefined();
    expect([m.peek('a'), m.peek('c'), m.peek('d')]).toEqual([1, 3, 4]);
    m.peek('c'); // peek does not refresh: c goes next
    m.set('e', 5);
    expect(m.peek('c')).toBeUndefined();
    m.set('a', 10); // replacing counts as a use
    expect(m.size).toBe(3);
    expect(m.get('a')).toBe(10);
  });
});
