import { Pool } from 'undici';

/**
 * The load side's HTTP client: undici pools with keep-alive (about a third less
 * CPU per request than node:http on this machine, and the bench process shares
 * the CPUs with the service it measures). One pool per origin; `closeHttp` at the end.
 */
const pools = new Map<string, Pool>();
const poolOf = (origin: string) => {
  let pool = pools.get(origin);
  if (!pool) {
    pool = new Pool(origin, { connections: 256, keepAliveTimeout: 60_000 });
    pools.set(origin, pool);
  }
  return pool;
};

export async function closeHttp(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.close()));
  pools.clear();
}

export type HttpResult = { status: number; body: unknown; text: string; headers: Record<string, string | string[] | undefined> };

export async function request(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; json?: unknown; form?: Record<string, string> } = {},
): Promise<HttpResult> {
  const url = new URL(path, base);
  let payload: string | undefined;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.json !== undefined) {
    payload = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  } else if (opts.form) {
    payload = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await poolOf(url.origin).request({
    method: method as 'GET',
    path: `${url.pathname}${url.search}`,
    headers,
    body: payload,
    // a keep-alive socket the service closed while this process was busy is retried once by undici for idempotent
    // methods only; the bench's writes are not retried, so a failure shows up instead of being counted twice
  });
  const text = await res.body.text();
  let body: unknown = text;
  if (/json/.test(String(res.headers['content-type']))) {
    try {
      body = JSON.parse(text);
    } catch {
      /* keep text */
    }
  }
  return { status: res.statusCode, body, text, headers: res.headers };
}

/** Throws unless the status is one of `ok`: a benchmark must not count failures as throughput. */
export function expectStatus(res: HttpResult, ok: number[], what: string): HttpResult {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}
