/**
 * Return URLs: where the browser goes after a sign-in, with the one-time code. Only URLs
 * the admin listed are accepted (same scheme, host, port and path; the query may differ so
 * the product can carry its own state), so `returnTo` can never become an open redirect.
 */
export function isAcceptableReturnUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const u = new URL(value);
  return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && value.length <= 2048;
}

export function matchReturnUrl(returnTo: string, allowed: readonly string[]): string | null {
  if (!isAcceptableReturnUrl(returnTo)) return null;
  const wanted = new URL(returnTo);
  wanted.hash = '';
  for (const entry of allowed) {
    if (!URL.canParse(entry)) continue;
    const a = new URL(entry);
    if (a.origin === wanted.origin && a.pathname === wanted.pathname) return wanted.toString();
  }
  return null;
}

/** The return URL with `code` added (replacing any `code` the product put there). */
export function withCode(returnTo: string, code: string): string {
  const u = new URL(returnTo);
  u.searchParams.set('code', code);
  return u.toString();
}
