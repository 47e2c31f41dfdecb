// The Kubernetes API server's rules for an object's metadata (apimachinery's ValidateObjectMeta
// with core's ValidateService / discovery's ValidateEndpointSlice name functions), in its wording
// and field paths, applied where the API writes an object (validateApiObject: `wdp apply`, POST
// /api/v1/apply). They are stricter than validateObject's own (a Service name is a DNS-1035
// label, label keys and values and annotation keys have their formats, annotations are counted
// in UTF-8 bytes): what the store holds and what the Kubernetes watcher applies is validated by
// validateObject alone, so a store written before these rules still loads, and nothing the API
// server accepted is dropped.
import { fieldError, type FieldError } from './types.js';
import { identify, validateObject, type Validated } from './schema.js';
import { DNS1123_LABEL, DNS1123_LABEL_FMT, DNS1123_LABEL_MSG, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_FMT, DNS1123_SUBDOMAIN_MSG } from './dns-names.js';

// apimachinery/pkg/util/validation's IsDNS1035Label (the DNS-1123 formats: dns-names.ts)
const DNS1035_LABEL_FMT = '[a-z]([-a-z0-9]*[a-z0-9])?';
const DNS1035_LABEL = new RegExp(`^${DNS1035_LABEL_FMT}$`);
// IsQualifiedName's name part; a label value is one of those or empty
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const QUALIFIED_NAME = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const LABEL_VALUE = new RegExp(`^${LABEL_VALUE_FMT}$`);

/** apimachinery's TotalAnnotationSizeLimitB: keys and values, in bytes. */
export const TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * 1024;

const maxLen = (n: number): string => `must be no more than ${n} characters`;
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  return `${msg} (e.g. ${examples.map((e) => `'${e}'`).join(' or ')}, regex used for validation is '${fmt}')`;
}
const DNS1035_LABEL_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** IsDNS1123Label's messages (empty: valid). */
export function dns1123LabelProblems(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push(maxLen(63));
  if (!DNS1123_LABEL.test(v)) out.push(DNS1123_SUBDOMAIN.test(v) ? 'must not contain dots' : regexError(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, 'my-name', '123-abc'));
  return out;
}
/** IsDNS1123Subdomain's messages. */
export function dns1123SubdomainProblems(v: string): string[] {
  const out: string[] = [];
  if (v.length > 253) out.push(maxLen(253));
  if (!DNS1123_SUBDOMAIN.test(v)) out.push(regexError(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, 'example.com'));
  return out;
}
/** IsDNS1035Label's messages. */
export function dns1035LabelProblems(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push(maxLen(63));
  if (!DNS1035_LABEL.test(v)) out.push(regexError(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, 'my-name', 'abc-123'));
  return out;
}
/** IsQualifiedName's messages (a label key, an annotation key lowercased). */
export function qualifiedNameProblems(v: string): string[] {
  const out: string[] = [];
  const parts = v.split('/');
  let name: string;
  if (parts.length === 1) name = parts[0];
  else if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (!prefix.length) out.push('prefix part must be non-empty');
    else for (const m of dns1123SubdomainProblems(prefix)) out.push(`prefix part ${m}`);
  } else {
    return [`a valid label key ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (!name.length) out.push('name part must be non-empty');
  else if (name.length > 63) out.push(`name part ${maxLen(63)}`);
  if (!QUALIFIED_NAME.test(name)) out.push(`name part ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')}`);
  return out;
}
/** IsValidLabelValue's messages. */
export function labelValueProblems(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push(maxLen(63));
  if (!LABEL_VALUE.test(v)) out.push(regexError(LABEL_VALUE_MSG, LABEL_VALUE_FMT, 'MyValue', 'my_value', '12345'));
  return out;
}

/** NameIsDNS...(name, prefix): a generateName (prefix) may end in '-' (the API server appends
 * random characters to it): apimachinery's maskTrailingDash, which puts an 'a' in place of the
 * last two characters, as it does. */
function nameProblems(kind: string, v: string, prefix: boolean): string[] {
  const s = prefix && v.length > 1 && v.endsWith('-') ? `${v.slice(0, -2)}a` : v;
  return kind === 'Service' ? dns1035LabelProblems(s) : dns1123SubdomainProblems(s);
}

function isObject(x: unknown): x is Record<string, unknown> { return typeof x === 'object' && x !== null && !Array.isArray(x); }
const quoted = (s: string): string => JSON.stringify(s);

// label and annotation keys found valid (most objects repeat a few: kubernetes.io/service-name),
// forgotten once there are many
const goodKeys = new Set<string>();
function keyValid(k: string): boolean {
  if (goodKeys.has(k)) return true;
  if (qualifiedNameProblems(k).length) return false;
  if (goodKeys.size >= 1024) goodKeys.clear();
  goodKeys.add(k);
  return true;
}

/** Whether `md` passes every rule objectMetaErrors checks (the common case: no message made).
 * `modelChecked`: validateObject accepted the object, so a Service's or EndpointSlice's name is a
 * DNS-1123 subdomain of at most 253 characters and its namespace a DNS-1123 label already
 * (schema.ts's metadata): a Service name is then a DNS-1035 label when it is at most 63
 * characters, starts with a letter and has no dot. */
function metaValid(kind: string, md: Record<string, unknown>, modelChecked: boolean): boolean {
  const gen = md.generateName;
  if (typeof gen === 'string' && gen) return false; // (rare: the detailed pass)
  const name = md.name;
  if (modelChecked && kind !== 'NodeConfig') {
    if (kind === 'Service') {
      const n = name as string, c = n.charCodeAt(0);
      if (n.length > 63 || c < 97 || c > 122 || n.includes('.')) return false;
    }
  } else {
    if (typeof name === 'string' && !(kind === 'Service' ? name.length <= 63 && DNS1035_LABEL.test(name) : name.length <= 253 && DNS1123_SUBDOMAIN.test(name))) return false;
    const ns = md.namespace;
    if (kind !== 'NodeConfig' && typeof ns === 'string' && ns && !(ns.length <= 63 && DNS1123_LABEL.test(ns))) return false;
  }
  const labels = md.labels;
  if (isObject(labels)) {
    for (const k in labels) {
      const v = labels[k];
      if (!keyValid(k) || (typeof v === 'string' && !(v.length <= 63 && LABEL_VALUE.test(v)))) return false;
    }
  }
  const ann = md.annotations;
  if (isObject(ann)) {
    let units = 0;
    for (const k in ann) {
      if (!keyValid(k.toLowerCase())) return false;
      const v = ann[k];
      units += k.length + (typeof v === 'string' ? v.length : 0);
    }
    if (units * 3 > TOTAL_ANNOTATION_SIZE_LIMIT_B && annotationUtf8Bytes(ann) > TOTAL_ANNOTATION_SIZE_LIMIT_B) return false;
  }
  return true;
}

const NONE: FieldError[] = [];

/** The API server's refusals of `raw`'s metadata (its values of the wrong type are validateObject's
 * to report): names, namespace, generateName, labels, annotations. `modelChecked`: validateObject
 * accepted `raw` (metaValid). */
export function objectMetaErrors(raw: unknown, modelChecked = false): FieldError[] {
  if (!isObject(raw) || !isObject(raw.metadata)) return NONE;
  const kind = raw.kind;
  if (kind !== 'Service' && kind !== 'EndpointSlice' && kind !== 'NodeConfig') return NONE;
  const md = raw.metadata;
  if (metaValid(kind, md, modelChecked)) return NONE;
  const id = identify(raw);
  const out: FieldError[] = [];
  const err = (field: string, reason: string, detail: string): void => { out.push(fieldError(id.kind, id.namespace, id.name, field, reason, detail)); };
  const gen = md.generateName;
  if (typeof gen === 'string' && gen) for (const m of nameProblems(id.kind, gen, true)) err('metadata.generateName', 'FieldValueInvalid', `Invalid value: ${quoted(gen)}: ${m}`);
  const name = md.name;
  if (typeof name === 'string') {
    // wdp does not generate names (it is not an API server): a generateName alone names nothing
    if (!name) err('metadata.name', 'FieldValueRequired', typeof gen === 'string' && gen ? 'Required value: wdp does not generate names (metadata.generateName): set metadata.name' : 'Required value: name or generateName is required');
    else for (const m of nameProblems(id.kind, name, false)) err('metadata.name', 'FieldValueInvalid', `Invalid value: ${quoted(name)}: ${m}`);
  }
  // (a NodeConfig is cluster-scoped: the API server clears a namespace given to one)
  const ns = md.namespace;
  if (id.kind !== 'NodeConfig' && typeof ns === 'string' && ns) for (const m of dns1123LabelProblems(ns)) err('metadata.namespace', 'FieldValueInvalid', `Invalid value: ${quoted(ns)}: ${m}`);
  const labels = md.labels;
  if (isObject(labels)) {
    for (const k in labels) {
      for (const m of qualifiedNameProblems(k)) err('metadata.labels', 'FieldValueInvalid', `Invalid value: ${quoted(k)}: ${m}`);
      const v = labels[k];
      if (typeof v === 'string') for (const m of labelValueProblems(v)) err('metadata.labels', 'FieldValueInvalid', `Invalid value: ${quoted(v)}: ${m}`);
    }
  }
  const ann = md.annotations;
  if (isObject(ann)) {
    let units = 0;
    for (const k in ann) {
      // "the rule is QualifiedName except that case doesn't matter"
      for (const m of qualifiedNameProblems(k.toLowerCase())) err('metadata.annotations', 'FieldValueInvalid', `Invalid value: ${quoted(k)}: ${m}`);
      const v = ann[k];
      units += k.length + (typeof v === 'string' ? v.length : 0);
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: counted exactly only when that could exceed the limit
    if (units * 3 > TOTAL_ANNOTATION_SIZE_LIMIT_B && annotationUtf8Bytes(ann) > TOTAL_ANNOTATION_SIZE_LIMIT_B) {
      err('metadata.annotations', 'FieldValueTooLong', `Too long: must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT_B} bytes`);
    }
  }
  return out;
}

function annotationUtf8Bytes(ann: Record<string, unknown>): number {
  let n = 0;
  for (const k in ann) { const v = ann[k]; n += Buffer.byteLength(k) + (typeof v === 'string' ? Buffer.byteLength(v) : 0); }
  return n;
}

/** validateObject and the API server's metadata rules (objectMetaErrors): the API's verdict on an
 * object it is asked to write. Where both find the same field wrong, the API server's message is
 * the one given. */
export function validateApiObject(raw: unknown): Validated {
  const r = validateObject(raw);
  const meta = objectMetaErrors(raw, r.ok);
  if (!meta.length) return r;
  if (r.ok) return { ok: false, errors: meta };
  const fields = new Set(meta.map((e) => e.field));
  return { ok: false, errors: [...meta, ...r.errors.filter((e) => !fields.has(e.field))] };
}
