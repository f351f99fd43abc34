import { scimError } from './errors.js';
import { extensionAttributes, knownTopLevel, qualifyExtensionPath, resolvePath, type AttrDef } from './schema.js';

/**
 * What IdPs actually send, made RFC-shaped before scimmy sees it.
 *
 * - Entra sends booleans as the strings "True"/"False" (`active`, `primary`), in
 *   bodies and PATCH values; scimmy's boolean coercion throws on strings.
 * - Entra capitalises PATCH ops (`Replace`, `Add`, `Remove`); scimmy lower-cases them itself.
 * - Entra PATCHes `addresses[type eq "work"].locality` on users who have no work
 *   address yet; scimmy answers noTarget. We turn that into an `add` of a new element.
 */

const STRING_BOOLEAN = /^(true|false)$/i;

function coerceBoolean(value: unknown): unknown {
  return typeof value === 'string' && STRING_BOOLEAN.test(value) ? value.toLowerCase() === 'true' : value;
}

/** Converts string booleans wherever the schema says boolean, recursively through complex and multi-valued attributes. */
function normaliseAttr(attr: AttrDef, value: unknown): unknown {
  if (attr.type === 'boolean') return Array.isArray(value) ? value.map(coerceBoolean) : coerceBoolean(value);
  if (attr.type === 'complex' && attr.subAttributes) {
    const fix = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? normaliseObject(attr.subAttributes!, v as Record<string, unknown>) : v);
    return Array.isArray(value) ? value.map(fix) : fix(value);
  }
  return value;
}

function normaliseObject(attrs: AttrDef[], obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const attr = attrs.find((a) => a.name.toLowerCase() === key.toLowerCase());
    out[key] = attr ? normaliseAttr(attr, value) : value;
  }
  return out;
}

/** Normalises a whole resource body (POST/PUT) or a no-path PATCH value (whose keys may be dotted paths). */
export function normaliseBody(resource: 'User' | 'Group', body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const ext = extensionAttributes(key);
    if (ext.length && value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = normaliseObject(ext, value as Record<string, unknown>);
      continue;
    }
    const resolved = resolvePath(resource, key);
    out[key] = resolved ? normaliseAttr(resolved.sub ?? resolved.attr, value) : value;
  }
  return out;
}

/**
 * RFC 7643 §2.5: a null value is the same as an unassigned attribute. Entra sends
 * `"department": null, "manager": null, "addresses": null` for attributes it has no
 * value for (tutorial, "Example 2. Provision a user"), even where the core schema
 * has no such attribute, so nulls are dropped (in complex values too) before checking.
 */
export function withoutNulls(body: Record<string, unknown>): Record<string, unknown> {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (!value || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, strip(v)]),
    );
  };
  return strip(body) as Record<string, unknown>;
}

/**
 * Attributes the schema does not declare are refused (400 invalidSyntax) rather
 * than silently dropped, so a mapping mistake in the IdP shows up at once.
 */
export function rejectUnknownAttributes(resource: 'User' | 'Group', body: Record<string, unknown>, skip: string[] = []): void {
  const known = knownTopLevel(resource);
  const ignored = new Set(['schemas', 'id', 'meta', ...skip.map((s) => s.toLowerCase())]);
  for (const [key, value] of Object.entries(body)) {
    const lower = key.toLowerCase();
    if (ignored.has(lower)) continue;
    const def = known.get(lower);
    if (!def) throw scimError(400, `Unknown attribute "${key}" for resource type ${resource}`, 'invalidSyntax');
    const subs = def === 'extension' ? extensionAttributes(key) : def.type === 'complex' ? def.subAttributes ?? [] : [];
    if (!subs.length || value === null || typeof value !== 'object') continue;
    for (const element of Array.isArray(value) ? value : [value]) {
      if (!element || typeof element !== 'object' || Array.isArray(element)) continue;
      for (const subKey of Object.keys(element as object)) {
        const sub = subs.find((s) => s.name.toLowerCase() === subKey.toLowerCase());
        // `$ref: null` is what Entra sends next to member values; scimmy ignores nulls
        if (!sub && (element as Record<string, unknown>)[subKey] !== null) {
          throw scimError(400, `Unknown attribute "${key}.${subKey}" for resource type ${resource}`, 'invalidSyntax');
        }
      }
    }
  }
}

export type PatchOperation = { op: string; path?: string; value?: unknown };

/** Reads the Operations of a PatchOp body, checking only its envelope (scimmy checks the rest). */
export function operationsOf(body: unknown): PatchOperation[] {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw scimError(400, 'PatchOp body must be a JSON object', 'invalidSyntax');
  const { Operations, schemas } = body as { Operations?: unknown; schemas?: unknown };
  if (!Array.isArray(schemas) || !schemas.includes('urn:ietf:params:scim:api:messages:2.0:PatchOp')) {
    throw scimError(400, 'PatchOp request must declare schema urn:ietf:params:scim:api:messages:2.0:PatchOp', 'invalidSyntax');
  }
  if (Operations === undefined) return [];
  if (!Array.isArray(Operations)) throw scimError(400, 'Operations must be an array', 'invalidValue');
  return Operations.map((op, i) => {
    if (!op || typeof op !== 'object' || Array.isArray(op)) throw scimError(400, `Operation ${i + 1} must be an object`, 'invalidValue');
    const { op: name, path, value } = op as Record<string, unknown>;
    if (typeof name !== 'string' || !['add', 'remove', 'replace'].includes(name.toLowerCase())) {
      throw scimError(400, `Operation ${i + 1} has an invalid op "${String(name)}"`, 'invalidSyntax');
    }
    if (path !== undefined && (typeof path !== 'string' || !path.trim())) throw scimError(400, `Operation ${i + 1} has an invalid path`, 'invalidPath');
    return { op: name.toLowerCase(), ...(path !== undefined ? { path: (path as string).trim() } : {}), ...(value !== undefined ? { value } : {}) };
  });
}

const FILTERED_SUB_PATH = /^([A-Za-z][\w-]*)\[\s*([A-Za-z][\w-]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\](?:\.([A-Za-z][\w-]*))?$/i;

/**
 * User PATCH operations made digestible for scimmy: string booleans converted,
 * and `attr[key eq "v"].sub` on a missing element rewritten to an `add` of
 * `{ key: v, sub: value }` (an element that matches the filter afterwards).
 */
export function normaliseUserOperations(ops: PatchOperation[], current: Record<string, unknown>): PatchOperation[] {
  return ops.map((op) => {
    if (op.path === undefined) {
      return op.value && typeof op.value === 'object' && !Array.isArray(op.value)
        ? { ...op, value: normaliseBody('User', op.value as Record<string, unknown>) }
        : op;
    }
    const path = qualifyExtensionPath('User', op.path);
    const resolvedPath = path.replace(/\[[^\]]*\]/g, '');
    const resolved = resolvePath('User', resolvedPath);
    let value = op.value;
    if (resolved) value = normaliseAttr(resolved.sub ?? resolved.attr, value);
    // Entra wraps the single-valued complex `manager` in a one-element array (tutorial, Example 5)
    const target = resolved?.sub ?? resolved?.attr;
    if (target && target.type === 'complex' && !target.config.multiValued && Array.isArray(value) && value.length === 1) value = value[0];
    const m = FILTERED_SUB_PATH.exec(path);
    if (m && (op.op === 'add' || op.op === 'replace')) {
      const [, attrName, key, rawExpected, sub] = m as unknown as [string, string, string, string, string | undefined];
      const expected = JSON.parse(`"${rawExpected}"`) as string;
      const existingKey = Object.keys(current).find((k) => k.toLowerCase() === attrName.toLowerCase());
      const existing = existingKey ? current[existingKey] : undefined;
      const matches =
        Array.isArray(existing) &&
        existing.some((e) => e && typeof e === 'object' && String((e as Record<string, unknown>)[key] ?? '').toLowerCase() === expected.toLowerCase());
      if (!matches) {
        const element = sub ? { [key]: expected, [sub]: value } : { ...(value as object), [key]: expected };
        return { op: 'add', path: attrName, value: [element] };
      }
    }
    return { ...op, path, value };
  });
}

/** Paths a client may not write (RFC 7643 mutability readOnly). */
export function assertMutable(ops: PatchOperation[]): void {
  for (const op of ops) {
    const keys = op.path !== undefined ? [op.path] : op.value && typeof op.value === 'object' ? Object.keys(op.value as object) : [];
    for (const key of keys) {
      const top = key.replace(/\[.*$/, '').split('.')[0]!.toLowerCase();
      if (top === 'id' || top === 'meta' || top === 'groups') {
        throw scimError(400, `Attribute "${key}" is read-only`, 'mutability');
      }
    }
  }
}
