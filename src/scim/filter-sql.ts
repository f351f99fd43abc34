import type { FilterNode, FilterValue, CompareOp } from './filter-parser.js';
import { scimError } from './errors.js';
import { resolvePath, type AttrDef } from './schema.js';

/**
 * Compiles a parsed filter into ONE SQL predicate over scim_users (alias `su`)
 * or scim_groups (alias `sg`): indexed columns where we have them, jsonb paths
 * into the directory's copy of the attributes otherwise, `exists` over
 * jsonb_array_elements for multi-valued attributes, and team_members for group
 * members. Strings whose schema says caseExact=false compare case-insensitively.
 * Unknown attributes and type-mismatched comparisons are `400 invalidFilter`.
 */
export type Sql = { sql: string; bindings: (string | number | boolean)[] };

type ScalarType = 'string' | 'boolean' | 'dateTime' | 'number';
type Scalar = { kind: 'scalar'; sql: string; type: ScalarType; caseExact: boolean; json?: string };
type Multi = {
  kind: 'multi';
  /** presence test of the whole collection */
  present: string;
  /** `exists (… where <cond>)`; `element` resolves sub-attributes inside it */
  exists: (alias: string, cond: string) => string;
  element: (alias: string, sub: string | undefined) => Scalar;
};
type Complex = { kind: 'complex'; json: string };
type Field = Scalar | Multi | Complex;

export type Resolver = (path: string) => Field;

const invalid = (detail: string) => scimError(400, `Invalid filter: ${detail}`, 'invalidFilter');
/** Attribute names come from scimmy's schema definitions; still, never inline anything but plain names. */
const lit = (name: string) => {
  if (!/^[A-Za-z0-9:._$-]+$/.test(name)) throw invalid(`unsupported attribute name "${name}"`);
  return `'${name}'`;
};

function scalarType(attr: AttrDef): ScalarType | 'complex' {
  switch (attr.type) {
    case 'boolean':
      return 'boolean';
    case 'dateTime':
      return 'dateTime';
    case 'integer':
    case 'decimal':
      return 'number';
    case 'complex':
      return 'complex';
    default:
      return 'string';
  }
}

/** A jsonb text expression typed for comparison. */
function jsonScalar(jsonParent: string, attr: AttrDef): Scalar {
  const text = `(${jsonParent}->>${lit(attr.name)})`;
  const type = scalarType(attr);
  if (type === 'complex') throw invalid(`"${attr.name}" is complex: compare one of its sub-attributes`);
  const sql = type === 'boolean' ? `${text}::boolean` : type === 'dateTime' ? `${text}::timestamptz` : type === 'number' ? `${text}::numeric` : text;
  return { kind: 'scalar', sql, type, caseExact: attr.config.caseExact, json: `${jsonParent}->${lit(attr.name)}` };
}

/** Elements of a multi-valued attribute stored as a jsonb array. */
function jsonMulti(json: string, attr: AttrDef): Multi {
  const arr = `(case when jsonb_typeof(${json}) = 'array' then ${json} else '[]'::jsonb end)`;
  return {
    kind: 'multi',
    present: `(jsonb_typeof(${json}) = 'array' and jsonb_array_length(${json}) > 0)`,
    exists: (alias, cond) => `exists (select 1 from jsonb_array_elements(${arr}) as ${alias}(v) where ${cond})`,
    element: (alias, subName) => {
      if (!attr.subAttributes?.length) {
        if (subName) throw invalid(`"${attr.name}" has no sub-attribute "${subName}"`);
        return { kind: 'scalar', sql: `(${alias}.v #>> '{}')`, type: 'string', caseExact: attr.config.caseExact };
      }
      // RFC 7644 §3.4.2.2: a complex multi-valued attribute without a sub-attribute means its `value`
      const sub = attr.subAttributes.find((s) => s.name.toLowerCase() === (subName ?? 'value').toLowerCase());
      if (!sub) throw invalid(`"${attr.name}" has no sub-attribute "${subName}"`);
      return jsonScalar(`${alias}.v`, sub);
    },
  };
}

/** Schema-driven resolution into the jsonb `attributes` column. */
function jsonField(resource: 'User' | 'Group', attributesColumn: string, path: string): Field {
  const resolved = resolvePath(resource, path);
  if (!resolved) throw invalid(`unknown attribute "${path}"`);
  const { attr, sub, extension } = resolved;
  const base = extension ? `${attributesColumn}->${lit(extension)}` : attributesColumn;
  const json = `${base}->${lit(attr.name)}`;
  if (attr.config.multiValued) {
    const multi = jsonMulti(json, attr);
    if (!sub) return multi;
    // `emails.value eq "x"` means: some element's value equals "x"
    return {
      kind: 'multi',
      present: multi.present,
      exists: multi.exists,
      element: (alias, s) => {
        if (s) throw invalid(`"${path}" has no sub-attribute "${s}"`);
        return multi.element(alias, sub.name);
      },
    };
  }
  if (sub) return jsonScalar(json, sub);
  if (scalarType(attr) === 'complex') return { kind: 'complex', json };
  return jsonScalar(base, attr);
}

const column = (sql: string, type: ScalarType, caseExact: boolean): Scalar => ({ kind: 'scalar', sql, type, caseExact });

export const userResolver: Resolver = (path) => {
  switch (path.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:user:/, '')) {
    case 'id':
      return column('su.id::text', 'string', true);
    case 'externalid':
      return column('su.external_id', 'string', true);
    case 'username':
      return column('su.user_name', 'string', false);
    case 'active':
      return column('su.active', 'boolean', true);
    case 'meta.created':
      return column('su.created_at', 'dateTime', true);
    case 'meta.lastmodified':
      return column('su.updated_at', 'dateTime', true);
    case 'meta.resourcetype':
      return column(`'User'`, 'string', true);
    default:
      return jsonField('User', 'su.attributes', path);
  }
};

export const groupResolver: Resolver = (path) => {
  const key = path.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:group:/, '');
  switch (key) {
    case 'id':
      return column('sg.id::text', 'string', true);
    case 'externalid':
      return column('sg.external_id', 'string', true);
    case 'displayname':
      return column('sg.display_name', 'string', false);
    case 'meta.created':
      return column('sg.created_at', 'dateTime', true);
    case 'meta.lastmodified':
      return column('sg.updated_at', 'dateTime', true);
    case 'meta.resourcetype':
      return column(`'Group'`, 'string', true);
    case 'members':
    case 'members.value':
    case 'members.display':
    case 'members.type': {
      const fixedSub = key.split('.')[1];
      const elementOf = (alias: string, sub: string | undefined): Scalar => {
        switch ((sub ?? fixedSub ?? 'value').toLowerCase()) {
          case 'value':
            return column(`${alias}.id::text`, 'string', true);
          case 'display':
            return column(`coalesce(${alias}.attributes->>'displayName', ${alias}.user_name)`, 'string', false);
          case 'type':
            return column(`'User'`, 'string', false);
          default:
            throw invalid(`members has no filterable sub-attribute "${sub}"`);
        }
      };
      return {
        kind: 'multi',
        present: `exists (select 1 from team_members tm where tm.org_id = sg.org_id and tm.team_id = sg.team_id)`,
        exists: (alias, cond) =>
          `exists (select 1 from team_members tm_${alias} join scim_users ${alias} on ${alias}.user_id = tm_${alias}.user_id and ${alias}.directory_id = sg.directory_id
                    where tm_${alias}.org_id = sg.org_id and tm_${alias}.team_id = sg.team_id and ${cond})`,
        element: (alias, sub) => {
          if (sub && fixedSub) throw invalid(`"${path}" has no sub-attribute "${sub}"`);
          return elementOf(alias, sub);
        },
      };
    }
    default:
      throw invalid(`unknown or unsupported attribute "${path}"`);
  }
};

const escapeLike = (v: string) => v.replace(/[!%_]/g, (c) => `!${c}`);

function compareScalar(field: Scalar, op: CompareOp, raw: FilterValue, out: Sql['bindings']): string {
  let value = raw;
  if (value === null) {
    if (op === 'eq') return `(${field.sql} is null)`;
    if (op === 'ne') return `(${field.sql} is not null)`;
    throw invalid(`"${op}" cannot compare with null`);
  }
  if (field.type === 'boolean') {
    // Entra sends "True"/"False" in filters too
    if (typeof value === 'string' && /^(true|false)$/i.test(value)) value = value.toLowerCase() === 'true';
    if (typeof value !== 'boolean') throw invalid('a boolean attribute compares with true or false');
    if (op !== 'eq' && op !== 'ne') throw invalid(`"${op}" is not defined for booleans`);
    out.push(value);
    return op === 'eq' ? `(${field.sql} = ?)` : `(${field.sql} is distinct from ?)`;
  }
  if (field.type === 'dateTime') {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw invalid('a dateTime attribute compares with an ISO 8601 string');
    if (['co', 'sw', 'ew'].includes(op)) throw invalid(`"${op}" is not defined for dateTime`);
    out.push(new Date(value).toISOString());
    return compareOp(field.sql, op, '?::timestamptz');
  }
  if (field.type === 'number') {
    if (typeof value !== 'number') throw invalid('a numeric attribute compares with a number');
    if (['co', 'sw', 'ew'].includes(op)) throw invalid(`"${op}" is not defined for numbers`);
    out.push(value);
    return compareOp(field.sql, op, '?');
  }
  if (typeof value !== 'string') value = String(value);
  const lhs = field.caseExact ? field.sql : `lower(${field.sql})`;
  const rhs = field.caseExact ? '?' : 'lower(?)';
  switch (op) {
    case 'co':
      out.push(`%${escapeLike(value)}%`);
      return `(${lhs} like ${rhs} escape '!')`;
    case 'sw':
      out.push(`${escapeLike(value)}%`);
      return `(${lhs} like ${rhs} escape '!')`;
    case 'ew':
      out.push(`%${escapeLike(value)}`);
      return `(${lhs} like ${rhs} escape '!')`;
    default:
      out.push(value);
      return compareOp(lhs, op, rhs);
  }
}

function compareOp(lhs: string, op: CompareOp, rhs: string): string {
  switch (op) {
    case 'eq':
      return `(${lhs} = ${rhs})`;
    case 'ne':
      return `(${lhs} is distinct from ${rhs})`;
    case 'gt':
      return `(${lhs} > ${rhs})`;
    case 'ge':
      return `(${lhs} >= ${rhs})`;
    case 'lt':
      return `(${lhs} < ${rhs})`;
    case 'le':
      return `(${lhs} <= ${rhs})`;
    default:
      throw invalid(`"${op}" is not defined here`);
  }
}

function presentScalar(field: Scalar): string {
  if (field.json) return `(${field.json} is not null and jsonb_typeof(${field.json}) <> 'null' and ${field.json} <> '""'::jsonb)`;
  return field.type === 'string' ? `(${field.sql} is not null and ${field.sql} <> '')` : `(${field.sql} is not null)`;
}

export function compileFilter(node: FilterNode, resolve: Resolver): Sql {
  const bindings: Sql['bindings'] = [];
  let aliases = 0;

  const walk = (n: FilterNode, elementScope?: { alias: string; multi: Multi }): string => {
    switch (n.kind) {
      case 'and':
      case 'or':
        return `(${walk(n.left, elementScope)} ${n.kind} ${walk(n.right, elementScope)})`;
      case 'not':
        return `(not coalesce(${walk(n.node, elementScope)}, false))`;
      case 'present':
      case 'compare': {
        if (elementScope) {
          // inside `emails[...]`: paths name sub-attributes of the element
          const field = elementScope.multi.element(elementScope.alias, n.path);
          return n.kind === 'present' ? presentScalar(field) : compareScalar(field, n.op, n.value, bindings);
        }
        const field = resolve(n.path);
        if (field.kind === 'multi') {
          if (n.kind === 'present') return field.present;
          const alias = `e${aliases++}`;
          return field.exists(alias, compareScalar(field.element(alias, undefined), n.op, n.value, bindings));
        }
        if (field.kind === 'complex') {
          if (n.kind === 'present') return `(${field.json} is not null and ${field.json} <> '{}'::jsonb)`;
          throw invalid(`"${n.path}" is complex: compare one of its sub-attributes`);
        }
        return n.kind === 'present' ? presentScalar(field) : compareScalar(field, n.op, n.value, bindings);
      }
      case 'has': {
        if (elementScope) throw invalid('value filters cannot be nested');
        const field = resolve(n.path);
        if (field.kind !== 'multi') throw invalid(`"${n.path}" is not multi-valued`);
        const alias = `e${aliases++}`;
        return field.exists(alias, walk(n.filter, { alias, multi: field }));
      }
    }
  };
  return { sql: walk(node), bindings };
}

/** `sortBy`: only single-valued attributes sort (RFC 7644 lets multi-valued ones use their primary; we refuse instead). */
export function sortExpression(sortBy: string, resolve: Resolver): string {
  let field: Field;
  try {
    field = resolve(sortBy);
  } catch {
    throw scimError(400, `Cannot sort by "${sortBy}"`, 'invalidValue');
  }
  if (field.kind !== 'scalar') throw scimError(400, `Cannot sort by "${sortBy}": not a single-valued attribute`, 'invalidValue');
  return field.type === 'string' && !field.caseExact ? `lower(${field.sql})` : field.sql;
}
