/**
 * A short-lived cache of token lookups (token SHA-256 → row), so a busy SCIM
 * client does not pay a database round trip per request. Writers call
 * `invalidate` after their commit: a token rotated, disabled or deleted through
 * this process stops working at once; another instance's change is seen within
 * the TTL. A lookup that raced with an invalidation is not cached (epoch check),
 * so a stale row can never be stored after the change that replaced it.
 */
export type TokenCache<T> = {
  get(hash: string): T | undefined;
  /** Starts a lookup: pass the returned epoch to `set`. */
  epoch(): number;
  set(hash: string, value: T, epoch: number): void;
  invalidate(matches: (value: T) => boolean): void;
  /** The cached value, else what `read` finds (cached unless an invalidation ran meanwhile). */
  lookup(hash: string, read: () => Promise<T | undefined>): Promise<T | undefined>;
};

export function createTokenCache<T>(ttlMs: number, maxEntries = 10_000): TokenCache<T> {
  const entries = new Map<string, { value: T; expires: number }>();
  let epoch = 0;
  const cache: TokenCache<T> = {
    get(hash) {
      const entry = entries.get(hash);
      if (!entry) return undefined;
      if (entry.expires <= Date.now()) {
        entries.delete(hash);
        return undefined;
      }
      return entry.value;
    },
    epoch: () => epoch,
    set(hash, value, startedAt) {
      if (ttlMs <= 0 || startedAt !== epoch) return;
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(hash, { value, expires: Date.now() + ttlMs });
    },
    invalidate(matches) {
      epoch++;
      for (const [hash, entry] of entries) if (matches(entry.value)) entries.delete(hash);
    },
    async lookup(hash, read) {
      const cached = cache.get(hash);
      if (cached) return cached;
      const startedAt = epoch;
      const value = await read();
      if (value) cache.set(hash, value, startedAt);
      return value;
    },
  };
  return cache;
}
