import { scimError } from './errors.js';
import { DEFAULT_COUNT, MAX_RESULTS } from './schema.js';

/**
 * scimmy's ListResponse slices the array it is given by `startIndex` again unless
 * `startIndex > length` or `length + startIndex - 1 === totalResults`. This window
 * (from STYLE.md, checked there over every total 0–40 × startIndex 1–45 × count 0–40)
 * tells which rows to fetch so that ListResponse ends up with exactly the page.
 */
export function pageWindow(startIndex: number, count: number, total: number) {
  if (startIndex <= 1 || startIndex > count || startIndex > total) return { offset: startIndex - 1, limit: count };
  const limit = startIndex - 1 + count; // overlapping window: fetch from row 0 and let scimmy slice
  return { offset: 0, limit: limit + startIndex - 1 === total ? limit + 1 : limit };
}

/** `startIndex` (1-based, values < 1 mean 1) and `count` (0 allowed, capped at MAX_RESULTS) from the query string. */
export function pageParams(query: Record<string, unknown>): { startIndex: number; count: number } {
  const int = (name: string, fallback: number) => {
    const raw = query[name];
    if (raw === undefined || raw === '') return fallback;
    if (typeof raw !== 'string' || !/^-?\d{1,9}$/.test(raw.trim())) throw scimError(400, `${name} must be an integer`, 'invalidValue');
    return Number(raw);
  };
  return {
    startIndex: Math.max(1, int('startIndex', 1)),
    count: Math.min(MAX_RESULTS, Math.max(0, int('count', DEFAULT_COUNT))),
  };
}
