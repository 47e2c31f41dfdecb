// A bounded, seeded fuzzer of a real `wdp start` daemon's control API (test/fuzz-api*.test.js,
// bench/fuzz-api.mjs). Each case is a request mutated from a valid one (Services, EndpointSlices,
// NodeConfig, ports, CNI GC, trace bodies; JSON and YAML texts; content types; query parameters;
// chunked bodies cut short). After each one the invariants of the project's input rule are
// checked:
//   * the daemon answers (healthz) within a bound;
//   * the answer is 2xx, or a 4xx whose Status message is a clear sentence (never a 5xx for
//     client input, never a JavaScript error's text);
//   * a refused change (or a dry run) changed nothing: the state read before equals the one after;
//   * an accepted apply round-trips: each object applied is listed, and applying what GET returns
//     again is `unchanged`;
//   * a restart (every `restartEvery` cases, SIGTERM or SIGKILL) restores exactly the state
//     acknowledged before it.
// Everything is drawn from one seeded generator: a failure names its seed and case index, and
// `caseAt(seed, i)` rebuilds the request.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as yamlStringify } from 'yaml';
import { contentTypeProblem } from '../../dist/src/api/request-guards.js';
import { mulberry32 } from '../../dist/src/util/rng.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'wdp.js');

/** mulberry32: a small seeded generator. */
export function rng(seed) {
  const next = mulberry32(seed);
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
  return r;
}

// ---- the daemon ------------------------------------------------------------------------------

/** A `wdp start` process in network namespace `ns`, its API on a unix socket in `dir`. */
export class FuzzDaemon {
  constructor(ns, dir) {
    this.ns = ns;
    this.dir = dir;
    this.sock = join(dir, 'api.sock');
    this.log = '';
    this.errors = [];
    this.child = null;
    mkdirSync(dir, { recursive: true });
    this.configFile = join(dir, 'wdp.yaml');
    writeFileSync(this.configFile, [
      'node: {name: fz, addresses: [192.168.50.2, fd00:50::2]}',
      'ports:',
      '  - {name: p0, type: tap, ifname: fz0, role: pod, gateways: [10.244.0.1, fd00:244::1]}',
      `api: {listen: "unix:${this.sock}", healthz: "off"}`,
      `stateDir: ${join(dir, 'state')}`,
      'logLevel: warn',
      '',
    ].join('\n'));
  }

  async start() {
    this.log = '';
    const child = spawn('ip', ['netns', 'exec', this.ns, process.execPath, BIN, 'start', '--config', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const add = (d) => {
      this.log = (this.log + d).slice(-20000);
      // what the daemon logs at error level or above (pino's 50, 60), or outside its logger
      for (const line of String(d).split('\n')) if (line.trim() && (/"level":(5|6)0/.test(line) || !line.startsWith('{'))) this.errors.push(line.slice(0, 800));
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    this.exited = exited;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon exited at start: ${this.log}`);
      const r = await this.req('GET', '/healthz', undefined, {}, 2000).catch(() => null);
      if (r && r.status === 200) return;
      if (Date.now() > deadline) throw new Error(`daemon not ready in 60 s: ${this.log}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** Stops it with `signal` and waits for the exit (SIGKILL after 30 s). */
  async stop(signal = 'SIGTERM') {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // `ip netns exec` execs node: the child's pid is the daemon's
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(t);
  }

  alive() { return this.child && this.child.exitCode === null && this.child.signalCode === null; }

  /** One request: { status, text, json, headers } or throws on a transport error / timeout. */
  req(method, path, body, headers = {}, timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const h = { ...headers };
      if (body !== undefined && h['content-length'] === undefined && h['transfer-encoding'] === undefined) h['content-length'] = Buffer.byteLength(body);
      // where a failed request got to (a transport error names it: written, answered, after how long)
      const t0 = Date.now();
      let stage = 'connecting';
      const fail = (e) => { e.message = `${e.message} (${stage}, after ${Date.now() - t0} ms)`; reject(e); };
      const rq = request({ socketPath: this.sock, method, path, headers: h, timeout: timeoutMs, agent: false }, (res) => {
        stage = `answered ${res.statusCode}`;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json; try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode, text, json, headers: res.headers });
        });
        res.on('error', fail);
      });
      rq.on('socket', (sock) => sock.once('connect', () => { stage = 'writing'; }));
      rq.on('finish', () => { stage = 'written, no answer yet'; });
      rq.on('timeout', () => rq.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      rq.on('error', fail);
      if (body !== undefined) rq.end(body); else rq.end();
    });
  }

  /** A chunked body cut short: the head, part of the body, then the connection closed. */
  cutShort(path, type, text, cut) {
    return new Promise((resolve) => {
      const s = connect(this.sock, () => {
        const part = Buffer.from(text).subarray(0, cut);
        s.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n${part.length.toString(16)}\r\n`);
        s.write(part);
        setTimeout(() => { s.destroy(); resolve(); }, 20);
      });
      s.on('error', () => resolve());
    });
  }
}

// ---- valid objects -----------------------------------------------------------------------------

const NAMES = ['a', 'b', 'c', 'd'];
export function validService(r) {
  const name = r.pick(NAMES);
  const i = NAMES.indexOf(name);
  const type = r.pick(['ClusterIP', 'NodePort', 'LoadBalancer']);
  const spec = {
    type,
    clusterIP: `10.96.0.${10 + i}`,
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, ...(type !== 'ClusterIP' ? { nodePort: 30000 + i } : {}) },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns', ...(type !== 'ClusterIP' ? { nodePort: 30100 + i } : {}) }],
  };
  if (r.chance(0.3)) { spec.sessionAffinity = 'ClientIP'; spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 60 } }; }
  if (r.chance(0.2)) spec.externalIPs = [`192.0.2.${10 + i}`];
  if (r.chance(0.2)) { spec.externalTrafficPolicy = 'Local'; spec.internalTrafficPolicy = 'Cluster'; }
  const o = { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'fz', name, labels: { app: name }, annotations: { note: 'x' } }, spec };
  if (type === 'LoadBalancer') { o.status = { loadBalancer: { ingress: [{ ip: `198.51.100.${10 + i}` }] } }; if (r.chance(0.3)) spec.loadBalancerSourceRanges = ['10.0.0.0/8']; }
  return o;
}

export function validSlice(r) {
  const svc = r.pick(NAMES);
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { namespace: 'fz', name: `${svc}-${r.int(2)}`, labels: { 'kubernetes.io/service-name': svc } },
    endpoints: Array.from({ length: 1 + r.int(3) }, (_, k) => ({ addresses: [`10.244.${1 + NAMES.indexOf(svc)}.${10 + k}`], conditions: { ready: r.chance(0.8) }, nodeName: r.pick(['fz', 'other']) })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }],
  };
}

export function validNodeConfig(r) {
  return {
    apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'fz' },
    spec: {
      nodeName: 'fz', nodeAddresses: ['192.168.50.2', 'fd00:50::2'],
      neighbours: r.chance(0.5) ? [{ address: '10.244.1.10', port: 0, mac: '02:42:0a:f4:01:0a', localMac: '02:00:00:00:00:01' }] : [],
      routes: [{ prefix: '10.244.0.0/16', port: 0, nextHopMac: '02:00:00:00:10:01', localMac: '02:00:00:00:00:00' }],
      serviceCIDRs: ['10.96.0.0/12'], clusterCIDRs: ['10.244.0.0/16'], zone: 'z1',
      ...(r.chance(0.3) ? { masquerade: { ipv4: '192.168.50.2' } } : {}),
    },
  };
}

const validPort = (r) => ({ name: `q${r.int(3)}`, type: 'tap', ifname: `fzq${r.int(3)}`, role: 'pod', gateways: ['10.245.0.1'], pods: [{ ip: `10.245.0.${10 + r.int(5)}` }] });
const validGc = (r) => ({ network: 'fznet', validAttachments: [{ containerID: 'c'.repeat(12), ifname: 'eth0' }].slice(0, r.int(2)) });
const validTrace = (r) => ({ src: '10.0.0.2', dst: `10.96.0.${10 + r.int(4)}`, proto: r.pick(['TCP', 'UDP']), sport: 40000, dport: r.pick([80, 53]) });

// ---- mutations -----------------------------------------------------------------------------------

const NASTY_STRINGS = [
  '', ' ', '-1', 'NaN', 'Infinity', '1e309', '0x50', '80abc', '٣', '８０', 'null', 'true', '__proto__', 'constructor',
  '\u0000', 'a\u0000b', '\u202etxt', 'é', '😀', '\ud800', 'a\nb', 'a\r\nb', '../../etc', '%00', 'A'.repeat(64), 'a'.repeat(254), 'x'.repeat(70_000),
  '10.96.0.10', '10.96.0.010', '::ffff:10.96.0.10', 'fe80::1%eth0', '999.1.1.1', '10.0.0.0/8', '10.96.0.10 ', ' 10.96.0.10',
  'TCP', 'tcp', 'ICMP', 'ClusterIP', 'Local', 'None', 'fz', 'default', 'kube-system', 'UPPER', 'a.b', 'a_b',
];
const NASTY_NUMBERS = [0, -1, 1, 65535, 65536, 2147483647, 2147483648, 4294967296, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 1.5, 1e-9, 1e300, -0];

function nastyValue(r, depth = 0) {
  switch (r.int(10)) {
    case 0: return null;
    case 1: return r.pick(NASTY_STRINGS);
    case 2: return r.pick(NASTY_NUMBERS);
    case 3: return r.chance(0.5);
    case 4: return [];
    case 5: return {};
    case 6: return depth < 2 ? [nastyValue(r, depth + 1), nastyValue(r, depth + 1)] : 'x';
    case 7: return depth < 2 ? { [r.pick(['name', 'ip', 'port', 'x', '__proto__'])]: nastyValue(r, depth + 1) } : 0;
    case 8: { let v = 'deep'; for (let k = 0; k < 10 + r.int(40); k++) v = r.chance(0.5) ? [v] : { k: v }; return v; }
    default: return String(r.pick(NASTY_NUMBERS));
  }
}

/** Every path to a value in `o` (objects and arrays). */
function paths(o, prefix = [], out = []) {
  out.push(prefix);
  if (o && typeof o === 'object') for (const k of Object.keys(o)) paths(o[k], [...prefix, k], out);
  return out;
}

function setAt(o, path, v) {
  if (!path.length) return v;
  let cur = o;
  for (let i = 0; i < path.length - 1; i++) cur = cur[path[i]];
  cur[path[path.length - 1]] = v;
  return o;
}

function deleteAt(o, path) {
  if (!path.length) return o;
  let cur = o;
  for (let i = 0; i < path.length - 1; i++) cur = cur[path[i]];
  if (Array.isArray(cur)) cur.splice(Number(path[path.length - 1]), 1); else delete cur[path[path.length - 1]];
  return o;
}

/** One structural mutation of a JSON value. */
export function mutateValue(r, o) {
  const ps = paths(o);
  const p = r.pick(ps);
  switch (r.int(8)) {
    case 0: case 1: case 2: return setAt(o, p, nastyValue(r));
    case 3: return deleteAt(o, p);
    case 4: { // an unknown field, or a known one at the wrong level
      const objs = ps.filter((q) => { let c = o; for (const k of q) c = c[k]; return c && typeof c === 'object' && !Array.isArray(c); });
      const q = r.pick(objs);
      if (!q) return o;
      let c = o; for (const k of q) c = c[k];
      c[r.pick(['extra', 'ports', 'spec', 'metadata', 'kind', 'items', 'apiVersion', 'port'])] = nastyValue(r);
      return o;
    }
    case 5: { // an array grown a lot
      const arrs = ps.filter((q) => { let c = o; for (const k of q) c = c[k]; return Array.isArray(c) && c.length; });
      const q = r.pick(arrs);
      if (!q) return o;
      let c = o; for (const k of q) c = c[k];
      const base = c[0];
      // (thousands of small entries; a body stays within tens of MB)
      const n = Math.min(r.pick([2, 10, 1000, 3000]), Math.max(2, Math.floor(20_000_000 / ((JSON.stringify(base) ?? '').length + 1))));
      const grown = Array.from({ length: n }, (_, k) => {
        const x = JSON.parse(JSON.stringify(base));
        if (x && typeof x === 'object' && 'port' in x && typeof x.port === 'number') { x.port = 1 + (k % 65535); if (x.name) x.name = `p${k}`; if ('nodePort' in x) x.nodePort = 30000 + (k % 2768); }
        return x;
      });
      return setAt(o, q, grown);
    }
    case 6: return setAt(o, p, r.chance(0.5) ? [JSON.parse(JSON.stringify(o))] : { items: [] }); // arrays where objects are expected
    default: { // the type of a scalar swapped
      let c = o; for (const k of p) c = c[k];
      return setAt(o, p, typeof c === 'number' ? String(c) : typeof c === 'string' && /^\d+$/.test(c) ? Number(c) : typeof c === 'string' ? [c] : c === null ? 0 : nastyValue(r));
    }
  }
}

/** One mutation of a body's text. */
function mutateText(r, s) {
  const at = r.int(s.length + 1);
  switch (r.int(8)) {
    case 0: return s.slice(0, at);
    case 1: return s.slice(0, at) + r.pick(['{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', '\ufeff', '\n', '- ', '&a ', '*a', '!!binary ', '<<: ', '%YAML 1.1\n']) + s.slice(at);
    case 2: return s.slice(0, at) + s.slice(at + 1 + r.int(8));
    case 3: return '\ufeff' + s;
    case 4: return s + r.pick(['\n---\n', '\n...\n', ' ', '\n', 'garbage', '\u0000']);
    case 5: { // a duplicate key (JSON: the first "key": of the text given twice)
      const m = /"([a-zA-Z]+)":/.exec(s.slice(at)) ?? /"([a-zA-Z]+)":/.exec(s);
      if (!m) return s;
      const i = s.indexOf(m[0], m.index);
      return s.slice(0, i) + `"${m[1]}":null,` + s.slice(i);
    }
    case 6: return s.replace(/[0-9]/, r.pick(['-', '9999999999999999999999', '1e400', '0x1', 'NaN']));
    default: return s;
  }
}

const YAML_TRICKS = [
  (y) => y.replace(/^(\s*)name: (.*)$/m, '$1name: $2\n$1name: dup'),
  (y) => `x: &x ${'[1,2,3]'}\n` + y,
  (y) => y.replace(/port: (\d+)/, 'port: !!str $1'),
  (y) => y.replace(/port: (\d+)/, 'port: !!float $1'),
  (y) => y.replace(/port: (\d+)/, 'port: 0o120'),
  (y) => y.replace(/port: (\d+)/, 'port: 0x50'),
  (y) => y.replace(/port: (\d+)/, 'port: .nan'),
  (y) => y.replace(/port: (\d+)/, 'port: .inf'),
  (y) => y.replace(/port: (\d+)/, 'port: 8_0'),
  (y) => y.replace(/name: (.*)$/m, 'name: !!binary aGVsbG8='),
  (y) => y.replace(/name: (.*)$/m, 'name: !!timestamp 2001-12-14'),
  (y) => y.replace(/name: (.*)$/m, 'name: !foo bar'),
  (y) => y.replace(/name: (.*)$/m, 'name: !!js/function "x"'),
  (y) => y.replace(/ready: (\w+)/, 'ready: yes'),
  (y) => y.replace(/ready: (\w+)/, 'ready: "true"'),
  (y) => y.replace(/spec:\n/, 'spec: &s\n') + 'extra: *s\n',
  (y) => y.replace(/metadata:\n/, 'metadata:\n  <<: {name: merged}\n'),
  (y) => y.replace(/^kind: (.*)$/m, 'kind: $1\nkind: Service'),
  (y) => `%YAML 1.1\n---\n${y}`,
  (y) => `${y}---\n${y}`,
  (y) => y.replace(/\n/g, '\r\n'),
  (y) => y.replace(/  /g, '\t'),
  (y) => `? [a, b]\n: 1\n${y}`,
  (y) => y.replace(/^(\s*)(\w+):/m, '$1? $2\n$1:'),
  (y) => 'a: &a [1,2]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n' + y,
];

const CONTENT_TYPES = [
  'application/json', 'application/json', 'application/json', 'application/yaml', 'application/yaml',
  'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1',
  'application/x-yaml', 'text/yaml', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/json, text/plain', 'APPLICATION/JSON', 'application/merge-patch+json', 'application/jsonx', '', undefined,
];

const QUERIES = [
  '', '', '', '', '?dryRun=true', '?dryRun=All', '?dryRun=false', '?dryRun=maybe', '?dryRun', '?dryRun=true&dryRun=false', '?dryrun=true',
  '?limit=0', '?limit=-1', '?limit=1', '?limit=99999999999', '?limit=1e3', '?limit=abc', '?limit=', '?continue=zzz', '?continue=%00',
  '?namespace=fz', '?namespace=fz&namespace=x', '?namespace=', '?service=fz/a', '?service=bad', '?service=%2F', '?x=1', '?__proto__=1',
  '?limit=2&continue=fz%2Fa', '?%ZZ=1', '?a=%E0%A4%A', '?limit=5&limit=6',
];

const GET_PATHS = [
  '/api/v1/services', '/api/v1/endpointslices', '/api/v1/nodeconfig', '/api/v1/generation', '/api/v1/state', '/api/v1/frontends',
  '/api/v1/backends', '/api/v1/counters', '/api/v1/conntrack', '/api/v1/ports', '/metrics', '/healthz',
  '/api/v1/namespaces/fz/services', '/api/v1/namespaces/fz/services/a', '/api/v1/namespaces/fz/endpointslices/a-0',
  '/api/v1/namespaces/%00/services/%ff', '/api/v1/namespaces/fz/services/' + 'x'.repeat(5000), '/api/v1/ports/p0', '/api/v1/ports/%2e%2e',
  '/api/v1/namespaces/fz/endpointslices', '/api/v1/nothing', '//api/v1/services', '/api/v1/services/', '/api/v1/conntrack?service=fz/a&client=10.0.0.1&proto=udp',
];

/** encodeURIComponent, a lone surrogate sent as its UTF-8-ish escape instead of throwing. */
const enc = (s) => { try { return encodeURIComponent(s); } catch { return '%ED%A0%80'; } };

const toYaml = (objs) => objs.map((o) => yamlStringify(o, { aliasDuplicateObjects: false })).join('---\n');

/** The request of case `i` of `seed` (deterministic). */
export function caseAt(seed, i) {
  const r = rng((seed ^ Math.imul(i + 1, 0x9E3779B1)) >>> 0);
  const kind = r.pick(['apply', 'apply', 'apply', 'apply', 'apply', 'delete', 'deleteOne', 'get', 'ports', 'portDelete', 'gc', 'trace', 'cut', 'method']);
  const mutations = r.int(4);
  const objects = () => {
    const n = 1 + r.int(3);
    const out = Array.from({ length: n }, () => r.pick([validService, validService, validSlice, validSlice, validNodeConfig])(r));
    return out;
  };
  const body = (value) => {
    let v = value;
    let text;
    const yaml = r.chance(0.3);
    for (let k = 0; k < mutations; k++) v = mutateValue(r, v);
    if (yaml) {
      const list = Array.isArray(v) ? v : [v];
      try { text = toYaml(list); } catch { text = JSON.stringify(v); }
      if (r.chance(0.5)) text = r.pick(YAML_TRICKS)(text);
    } else {
      text = r.chance(0.2) ? JSON.stringify(v, null, 2) : JSON.stringify(v);
      if (text === undefined) text = 'undefined';
    }
    if (r.chance(0.2)) text = mutateText(r, text);
    let type = yaml ? r.pick(['application/yaml', 'application/yaml', ...CONTENT_TYPES]) : r.pick(CONTENT_TYPES);
    // other encodings than UTF-8, and bytes that are no UTF-8 at all
    if (r.chance(0.06)) {
      const how = r.pick(['utf16le', 'latin1', 'bad']);
      if (how === 'bad') { const b = Buffer.from(text); const at = r.int(b.length + 1); text = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]])), b.subarray(at)]); }
      else text = Buffer.from(text.replace(/fz/, 'fé'), how);
    }
    return { text, type };
  };
  const q = r.chance(0.3) ? r.pick(QUERIES) : '';
  const dryRun = /dryRun(=true|=All|=1|$|&)/.test(q) && !/dryRun=.*dryRun/.test(q);
  switch (kind) {
    case 'apply': case 'delete': {
      const objs = objects();
      const shape = r.int(3);
      const v = shape === 0 && objs.length === 1 ? objs[0] : shape === 1 ? { apiVersion: 'v1', kind: 'List', items: objs } : objs;
      const { text, type } = body(v);
      return { kind, method: 'POST', path: `/api/v1/${kind}${q}`, text, type, change: true, dryRun };
    }
    case 'deleteOne': {
      const what = r.pick(['services', 'endpointslices']);
      const name = r.chance(0.7) ? r.pick(what === 'services' ? NAMES : ['a-0', 'b-1']) : enc(r.pick(NASTY_STRINGS) || 'x');
      return { kind, method: 'DELETE', path: `/api/v1/namespaces/${r.chance(0.8) ? 'fz' : enc(r.pick(NASTY_STRINGS) || '-')}/${what}/${name}${q}`, change: true, dryRun };
    }
    case 'get': {
      const p = r.pick(GET_PATHS);
      return { kind, method: 'GET', path: p + (p.includes('?') ? '' : q) };
    }
    case 'ports': { const { text, type } = body(validPort(r)); return { kind, method: 'POST', path: '/api/v1/ports' + q, text, type, change: true, ports: true, dryRun }; }
    case 'portDelete': return { kind, method: 'DELETE', path: `/api/v1/ports/${r.chance(0.7) ? `q${r.int(3)}` : enc(r.pick(NASTY_STRINGS) || 'p0')}${q}`, change: true, ports: true, dryRun };
    case 'gc': { const { text, type } = body(validGc(r)); return { kind, method: 'POST', path: '/api/v1/cni/gc' + q, text, type, change: true, ports: true, dryRun }; }
    case 'trace': { const { text, type } = body(validTrace(r)); return { kind, method: 'POST', path: '/api/v1/trace' + q, text, type }; }
    case 'cut': {
      const objs = objects();
      const text = r.chance(0.5) ? JSON.stringify(objs) : toYaml(objs);
      return { kind, method: 'POST', path: r.pick(['/api/v1/apply', '/api/v1/delete', '/api/v1/ports', '/api/v1/trace']), text, type: text.startsWith('[') ? 'application/json' : 'application/yaml', cut: r.int(text.length), change: true };
    }
    default: {
      const method = r.pick(['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'POST', 'GET']);
      return { kind, method, path: r.pick(['/api/v1/apply', '/api/v1/services', '/api/v1/nodeconfig', '/healthz', '/metrics', '/api/v1/ports']) + q, text: method === 'GET' || method === 'HEAD' ? undefined : '{}', type: 'application/json' };
    }
  }
}

// ---- invariants -----------------------------------------------------------------------------------

const sortKeys = (v) => Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v;

/** What the daemon holds: services, slices, the node config (and runtime port names). */
export async function snapshot(d, { ports = true, node = true } = {}) {
  const get = async (p) => {
    const r = await d.req('GET', p, undefined, {}, 30_000);
    if (r.status === 404 && p === '/api/v1/nodeconfig') return null; // deleted by a delete body naming it
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json;
  };
  const s = {
    services: (await get('/api/v1/services?limit=10000')).items,
    slices: (await get('/api/v1/endpointslices?limit=10000')).items,
  };
  if (node) s.node = await get('/api/v1/nodeconfig');
  if (ports) s.ports = (await get('/api/v1/ports')).items.filter((p) => p.origin === 'api').map((p) => ({ name: p.name, ifname: p.ifname, pods: p.pods, gateways: p.gateways }));
  return JSON.stringify(sortKeys(s));
}

/** A message a user can act on: not a JavaScript error's own text. */
export function unclear(message) {
  if (typeof message !== 'string' || !message.trim()) return 'no message';
  const m = /Cannot read propert|is not a function|is not iterable|undefined is not|\[object Object\]|Maximum call stack|(?<!cannot parse as JSON: )Unexpected token|TypeError|RangeError|ReferenceError|SyntaxError: |\bat [\w.<>]+ \(\S*:\d+:\d+\)|Invalid array length|out of memory/.exec(message);
  return m ? `JavaScript error text: ${m[0]}` : null;
}

/** Runs `iterations` cases of `seed` against daemon `d`; returns the problems found (each with
 * seed, case index and request). `restartEvery`: restart the daemon after so many cases. */
export async function fuzz(d, { seed, iterations, restartEvery = 0, onCase, start = 0 }) {
  const problems = [];
  const problem = (i, c, what, extra = '') => problems.push({ seed, i, what, request: describe(c), extra: String(extra).slice(0, 600) });
  let state = await snapshot(d);
  let restarts = 0;
  const stats = {};
  for (let i = start; i < start + iterations; i++) {
    const c = caseAt(seed, i);
    onCase?.(i, c);
    const count = (k) => { stats[k] = (stats[k] ?? 0) + 1; };
    let res;
    try {
      if (c.cut !== undefined) { await d.cutShort(c.path, c.type, c.text, c.cut); res = null; }
      else res = await d.req(c.method, c.path, c.text, c.type === undefined ? {} : { 'content-type': c.type }, 60_000);
    } catch (e) {
      // a head larger than Node's 16 KiB is refused by the HTTP parser (431) while it is still
      // being written: the client sees the connection end
      // (and a body of a type the API refuses is answered 415 before it is read: a large one is
      // still being written when the answer comes, and Node's client reports the write's EPIPE
      // where curl stops sending and reads the 415)
      const early = c.path.length > 16000 || (c.text?.length ?? 0) > 16 * 1024 * 1024 || contentTypeProblem(c.method, { 'content-type': c.type, 'content-length': '1' }) !== null;
      if (!(early && /EPIPE|ECONNRESET/.test(e.message))) problem(i, c, 'no answer', `${e.message} | daemon log: ${d.log.slice(-400) || '(nothing)'}`);
    }
    count(`${c.kind} ${res ? res.status : 'none'}`);
    // the daemon answers
    const h = await d.req('GET', '/healthz', undefined, {}, 20_000).catch((e) => ({ status: 0, text: e.message }));
    if (h.status !== 200) {
      problem(i, c, `healthz ${h.status} after the request`, `${h.text} | daemon log: ${d.log.slice(-1500)}`);
      if (!d.alive()) { await d.start(); state = await snapshot(d); continue; }
    }
    if (res) {
      if (res.status >= 500) problem(i, c, `${res.status} for client input`, res.text);
      else if (res.status >= 400 && c.method !== 'HEAD') {
        const why = unclear(res.json?.message ?? (res.json ? res.json.error : res.text));
        if (why) problem(i, c, `${res.status} without a clear message: ${why}`, res.text);
      } else if (res.status < 200 || (res.status >= 300 && res.status < 400)) problem(i, c, `status ${res.status}`, res.text);
    }
    if (d.errors.length) { problem(i, c, 'the daemon logged an error', d.errors.join(' | ')); d.errors.length = 0; }
    const accepted = res && res.status >= 200 && res.status < 300;
    const after = await snapshot(d);
    if (c.change && (!accepted || c.dryRun) && (c.dryRun || (c.kind !== 'portDelete' && c.kind !== 'gc'))) {
      if (after !== state) problem(i, c, `${res ? res.status : 'cut-short'}${c.dryRun ? ' dry run' : ''} but the state changed`, diffSummary(state, after));
    }
    if (accepted && !c.dryRun && (c.kind === 'apply') && Array.isArray(res.json?.objects)) {
      const rt = await roundTrip(d, res.json.objects);
      if (rt) problem(i, c, 'accepted apply does not round-trip', rt);
    }
    state = await snapshot(d);
    if (restartEvery && (i + 1 - start) % restartEvery === 0) {
      const sig = restarts++ % 2 ? 'SIGKILL' : 'SIGTERM';
      // the node config: the daemon applies its config file's after a restore (docs/api.md, Restore)
      // (runtime ports are added again at start: docs/api.md, Ports)
      const before = await snapshot(d, { node: false });
      await d.stop(sig);
      await d.start();
      const back = await snapshot(d, { node: false });
      if (back !== before) problem(i, { kind: 'restart', method: sig, path: '' }, `restart (${sig}) did not restore the acknowledged state`, diffSummary(before, back));
      state = await snapshot(d);
    }
  }
  return { problems, stats };
}

/** GET each applied object and apply it again: every one must be `unchanged`. */
async function roundTrip(d, objects) {
  const got = [];
  for (const o of objects) {
    if (o.action === 'deleted') continue;
    const path = o.kind === 'Service' ? `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/services/${encodeURIComponent(o.name)}`
      : o.kind === 'EndpointSlice' ? `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/endpointslices/${encodeURIComponent(o.name)}` : '/api/v1/nodeconfig';
    const r = await d.req('GET', path);
    if (r.status !== 200) return `GET ${path} after it was applied (${o.action}): ${r.status} ${r.text.slice(0, 300)}`;
    got.push(r.json);
  }
  if (!got.length) return null;
  const again = await d.req('POST', '/api/v1/apply', JSON.stringify(got), { 'content-type': 'application/json' });
  if (again.status !== 200) return `re-applying what GET returned: ${again.status} ${again.text.slice(0, 400)}`;
  const changed = again.json.objects.filter((o) => o.action !== 'unchanged');
  return changed.length ? `re-applying what GET returned changed ${JSON.stringify(changed)}` : null;
}

function diffSummary(a, b) {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `before: …${a.slice(Math.max(0, i - 80), i + 160)} | after: …${b.slice(Math.max(0, i - 80), i + 160)}`;
}

export function describe(c) {
  if (Buffer.isBuffer(c.text)) return describe({ ...c, text: `(bytes) ${c.text.toString('latin1')}` });
  const t = c.text === undefined ? '' : c.text.length > 400 ? `${c.text.slice(0, 400)}… (${c.text.length} chars)` : c.text;
  return `${c.method} ${c.path} [${c.type ?? 'no content-type'}]${c.cut !== undefined ? ` cut at ${c.cut}` : ''} ${JSON.stringify(t)}`;
}
