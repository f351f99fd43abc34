import http from 'node:http';

/** A lean keep-alive HTTP client for the load side (cheaper per request than fetch, so the client steals less CPU). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export type HttpResult = { status: number; body: unknown; text: string; headers: http.IncomingHttpHeaders };

export function request(
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
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return send(url, method, headers, payload).catch((err: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
    // A keep-alive socket the server closed while this process was busy (signing SAML responses
    // blocks the event loop for seconds): the request never reached the service, so it is sent
    // again once on a fresh socket (the pattern node's docs give for `request.reusedSocket`).
    if (err.reusedSocket && err.code === 'ECONNRESET') return send(url, method, headers, payload);
    throw err;
  });
}

function send(url: URL, method: string, headers: Record<string, string>, payload: string | undefined): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        if (/json/.test(String(res.headers['content-type']))) {
          try {
            body = JSON.parse(text);
          } catch {
            /* keep text */
          }
        }
        resolve({ status: res.statusCode ?? 0, body, text, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('error', (err: Error) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Throws unless the status is one of `ok`: a benchmark must not count failures as throughput. */
export function expectStatus(res: HttpResult, ok: number[], what: string): HttpResult {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}
