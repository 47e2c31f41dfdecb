// The Kubernetes API server's field validation (`?fieldValidation=`, KEP 2885): the fields of an
// object that its kind does not have, and the keys a JSON object gives twice (JSON.parse keeps
// the last), reported as its strict JSON decoder reports them (`unknown field "spec.foo"`,
// `duplicate field "metadata.name"`). What the API does with them (a Warning header, a 400, or
// nothing) is the route's (src/api/server.ts).
//
// "Unknown" is against the Kubernetes schema of Service and EndpointSlice (v1, discovery/v1; the
// fields wdp does not read — spec.selector, managedFields, ... — are known, and pruned as
// before), and against wdp's own for NodeConfig. A duplicate is found by counting: the keys an
// object's text gives (its ':' outside strings, counted by the scan that reads the body) against
// the keys JSON.parse made; only an object whose counts differ is scanned again, for the paths.
import { bodySlice, type BodyText } from '../util/body-text.js';
import { countJsonKeys, duplicateKeys } from './json-keys.js';
import { identify } from './schema.js';
import { objectLabel } from './types.js';

/** A field whose value is not walked (a scalar, a list of scalars, or free-form: fieldsV1). */
const LEAF = null;
/** A map: any key, values not walked (labels, annotations, selector). */
const MAP = 0;
type Shape = { [key: string]: Shape | typeof LEAF | typeof MAP };

const leaves = (...keys: string[]): Shape => Object.fromEntries(keys.map((k) => [k, LEAF]));

// k8s.io/api: metav1.ObjectMeta
const OBJECT_META: Shape = {
  ...leaves('name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
    'deletionTimestamp', 'deletionGracePeriodSeconds', 'finalizers'),
  labels: MAP,
  annotations: MAP,
  ownerReferences: leaves('apiVersion', 'kind', 'name', 'uid', 'controller', 'blockOwnerDeletion'),
  managedFields: leaves('manager', 'operation', 'apiVersion', 'time', 'fieldsType', 'fieldsV1', 'subresource'),
};
// core/v1 Service
const SERVICE: Shape = {
  ...leaves('apiVersion', 'kind'),
  metadata: OBJECT_META,
  spec: {
    ports: leaves('name', 'protocol', 'appProtocol', 'port', 'targetPort', 'nodePort'),
    selector: MAP,
    ...leaves('clusterIP', 'clusterIPs', 'type', 'externalIPs', 'sessionAffinity', 'loadBalancerIP', 'loadBalancerSourceRanges',
      'externalName', 'externalTrafficPolicy', 'healthCheckNodePort', 'publishNotReadyAddresses', 'ipFamilies', 'ipFamilyPolicy',
      'allocateLoadBalancerNodePorts', 'loadBalancerClass', 'internalTrafficPolicy', 'trafficDistribution'),
    sessionAffinityConfig: { clientIP: leaves('timeoutSeconds') },
  },
  status: {
    loadBalancer: { ingress: { ...leaves('ip', 'hostname', 'ipMode'), ports: leaves('port', 'protocol', 'error') } },
    conditions: leaves('type', 'status', 'observedGeneration', 'lastTransitionTime', 'reason', 'message'),
  },
};
// discovery/v1 EndpointSlice
const ENDPOINT_SLICE: Shape = {
  ...leaves('apiVersion', 'kind', 'addressType'),
  metadata: OBJECT_META,
  endpoints: {
    ...leaves('addresses', 'hostname', 'nodeName', 'zone'),
    conditions: leaves('ready', 'serving', 'terminating'),
    targetRef: leaves('kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'),
    deprecatedTopology: MAP,
    hints: { forZones: leaves('name'), forNodes: leaves('name') },
  },
  ports: leaves('name', 'protocol', 'port', 'appProtocol'),
};
// wdp.io/v1alpha1 NodeConfig (src/model/schema.ts)
const NODE_CONFIG: Shape = {
  ...leaves('apiVersion', 'kind'),
  metadata: OBJECT_META,
  spec: {
    ...leaves('nodeName', 'nodeAddresses', 'nodePortAddresses', 'nodeIPs', 'podCIDRs', 'clusterCIDRs', 'detectLocalMode', 'podPorts',
      'serviceProxyName', 'zone', 'serviceCIDRs', 'masqueradeAll'),
    masquerade: leaves('ipv4', 'ipv6'),
    hairpin: leaves('ipv4', 'ipv6'),
    neighbours: leaves('address', 'port', 'mac', 'localMac'),
    routes: leaves('prefix', 'port', 'nextHopMac', 'localMac'),
  },
};
const SHAPES: Record<string, Shape> = { Service: SERVICE, EndpointSlice: ENDPOINT_SLICE, NodeConfig: NODE_CONFIG };

/** The fields every kind's schema has (a test checks that what wdp keeps is among them). */
export function knownShape(kind: string): Shape | undefined { return SHAPES[kind]; }

function isObject(x: unknown): x is Record<string, unknown> { return typeof x === 'object' && x !== null && !Array.isArray(x); }

/** Keys of every object in `v`, nested ones included. */
export function countKeys(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) { const x = v[i]; if (typeof x === 'object' && x !== null) n += countKeys(x); }
    return n;
  }
  for (const k in v) {
    n++;
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'object' && x !== null) n += countKeys(x);
  }
  return n;
}

/** A field's path as the API server's strict decoder writes it: keys joined by '.', indices in brackets. */
function pathText(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** Walks `v` against `shape`: every key it has not into `unknown` (its path); answers the keys of
 * every object in `v`. */
function walk(v: unknown, shape: Shape, path: (string | number)[], unknown: string[]): number {
  if (Array.isArray(v)) {
    let n = 0;
    for (let i = 0; i < v.length; i++) { path.push(i); n += walk(v[i], shape, path, unknown); path.pop(); }
    return n;
  }
  if (!isObject(v)) return 0;
  let n = 0;
  for (const k in v) {
    n++;
    const x = v[k];
    const sub = Object.prototype.hasOwnProperty.call(shape, k) ? shape[k] : undefined;
    if (sub === undefined) { unknown.push(pathText([...path, k])); n += countKeys(x); }
    else if (sub === LEAF || sub === MAP) n += countKeys(x);
    else { path.push(k); n += walk(x, sub, path, unknown); path.pop(); }
  }
  return n;
}

/** An object's fields its kind does not have (their paths), and how many keys it has (every
 * nested object's too). `clean`: validation kept the object as it is — it has no field wdp does
 * not read, so none its kind does not have — and only its keys are counted. A kind wdp does not
 * take has no fields to check (validation refuses it). */
export function objectFields(raw: unknown, clean: boolean): { unknown: string[]; keys: number } {
  const unknown: string[] = [];
  const shape = clean || !isObject(raw) ? undefined : SHAPES[raw.kind as string];
  const keys = shape ? walk(raw, shape, [], unknown) : countKeys(raw);
  return { unknown, keys };
}

/** Every key a JSON text gives an object it gave already: their paths from the text's root value
 * (at most `max`). */
export function duplicatePaths(text: string, max = 100): (string | number)[][] {
  return duplicateKeys(text, max).map((d) => d.path);
}

/** One object's field problems as the API server words them, prefixed with the object. */
export interface FieldProblems { kind: string; namespace?: string; name?: string; problems: string[] }

function problemsOf(raw: unknown, unknown: readonly string[], dups: readonly (string | number)[][]): FieldProblems | null {
  if (!unknown.length && !dups.length) return null;
  const id = identify(raw);
  const problems = [...dups.map((d) => `duplicate field ${JSON.stringify(pathText(d))}`), ...unknown.map((u) => `unknown field ${JSON.stringify(u)}`)];
  return { kind: id.kind, namespace: id.namespace, name: id.name, problems };
}

/** One object of a JSON array body as it was read (src/model/json-array-reader.ts): its fields
 * and, when its text gave more keys than it has (`textKeys`), its duplicates. `cleanKeys`: the
 * object is one validation kept as it is, and has that many keys (fastPathKeys: no walk);
 * null: walked (objectFields). */
export function elementFieldProblems(raw: unknown, cleanKeys: number | null, textKeys: number, text: () => string): FieldProblems | null {
  const f = cleanKeys === null ? objectFields(raw, false) : { unknown: [], keys: cleanKeys };
  return problemsOf(raw, f.unknown, f.keys === textKeys ? [] : duplicatePaths(text()));
}

/** Whether flattenObjects (src/model/load.ts) reads `v` as a List of objects. */
function isList(v: unknown): v is { items: unknown[] } {
  return isObject(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items);
}

/** The field problems of a body parsed whole: `doc` its root value, `objs` its objects
 * (flattenObjects), `cleans[i]` whether validation kept objs[i] as it is, `json` the body's
 * text when it is JSON (YAML refuses a key twice when it is parsed). */
export function bodyFieldProblems(doc: unknown, objs: readonly unknown[], cleans: readonly boolean[], json: BodyText | null): FieldProblems[] {
  const per = new Map<unknown, { unknown: string[]; dups: (string | number)[][] }>();
  objs.forEach((o, i) => { const f = objectFields(o, cleans[i]); per.set(o, { unknown: f.unknown, dups: [] }); });
  const out: FieldProblems[] = [];
  if (json !== null) {
    // the keys of every object of the body, the Lists' own included
    const text = typeof json === 'string' ? json : bodySlice(json, 0, json.length);
    if (countKeys(doc) !== countJsonKeys(text)) {
      for (const p of duplicatePaths(text)) {
        let v = doc, at = 0;
        for (;;) {
          if (Array.isArray(v) && typeof p[at] === 'number' && at < p.length - 1) { v = v[p[at] as number]; at++; }
          else if (isList(v) && p[at] === 'items' && at < p.length - 1) { v = v.items; at++; }
          else break;
        }
        // (a List's own members are no object's: not reported, as the body read as it arrives does not see them)
        per.get(v)?.dups.push(p.slice(at));
      }
    }
  }
  for (const o of objs) {
    const e = per.get(o)!;
    const r = problemsOf(o, e.unknown, e.dups);
    if (r) out.push(r);
  }
  return out;
}

/** A problem as a line: `Service shop/web: unknown field "spec.foo"`. */
export function problemLines(p: FieldProblems): string[] {
  const label = objectLabel(p.kind, p.namespace, p.name);
  return p.problems.map((x) => `${label}: ${x}`);
}
