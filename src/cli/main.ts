// `wdp` — the command line. Talks to the daemon's control API (src/api/); `start`, `demo` and
// `bench` are registered by their own modules, which src/wdp.ts (the entry point) hands in: the
// client layer imports nothing of what it starts.
import { Command, Option } from 'commander';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { objectLabel, ValidationError } from '../model/types.js';
import { InputFileError, readInputFile } from '../util/input-file.js';
import { ApiClient, ApiError, DEFAULT_SERVER } from './client.js';
import { ManifestFileError, manifestObjects } from './manifests.js';
import { bytes, duration, table } from './format.js';
import { usageErrorsInOrder } from '../util/cli-usage.js';
import { didYouMean } from '../util/suggest.js';
import { durationFlagAs } from '../util/duration.js';
import { portsTable, registerPortCommands } from './ports.js';
import { addFilterOptions, daemonInPort, liveTrace, registerObserveCommands, registerReplayCommand } from './observe.js';

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

class CliError extends Error {}

function client(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals() as { server?: string; token?: string };
  return new ApiClient({
    server: o.server || process.env.WDP_SERVER || DEFAULT_SERVER, serverFrom: !o.server && process.env.WDP_SERVER ? 'WDP_SERVER' : '--server',
    token: o.token || process.env.WDP_TOKEN || undefined,
    onWarning: (w) => process.stderr.write(`Warning: ${w}\n`), // as kubectl prints the API server's
  });
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

/** A manifest file's size bound: 4x the daemon's largest request body (a YAML file is larger than
 * the JSON sent), so nothing that could be applied is refused, and /dev/zero is. */
const MAX_MANIFEST_FILE = 64 << 20;

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

function collectFiles(path: string, recursive: boolean, out: string[]): void {
  let st;
  try { st = statSync(path); } catch (e) { throw new CliError(`cannot read ${path}: ${errCode(e)}`); }
  if (!st.isDirectory()) { out.push(path); return; }
  let names: string[];
  try { names = readdirSync(path).sort(); } catch (e) { throw new CliError(`cannot read ${path}: ${errCode(e)}`); }
  for (const name of names) {
    const p = join(path, name);
    let s;
    // (a dangling symlink among the files: named, not a raw ENOENT)
    try { s = statSync(p); } catch (e) { throw new CliError(`cannot read ${p}: ${errCode(e)}`); }
    if (s.isDirectory()) { if (recursive) collectFiles(p, recursive, out); }
    else if (MANIFEST_EXT.test(name)) {
      // a FIFO (or a device, a socket) read as a file waits for a writer, for good
      if (!s.isFile()) throw new CliError(`cannot read ${p}: not a regular file (${s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : 'a device'}); in a directory only files are read, a pipe only when named with -f`);
      out.push(p);
    }
  }
}

/** A parse error's lines: a limit refusal's without the "<document> default/FILE:" label its
 * FieldError carries for the API's causes (the file is named after it again). */
function errorLines(e: ValidationError): string {
  return e.errors.map((x) => {
    const label = `${objectLabel(x.kind, x.namespace, x.name)}: `;
    return x.kind === '<document>' && x.message.startsWith(label) ? x.message.slice(label.length) : x.message;
  }).join('\n');
}

/** Reads -f arguments (files, directories, "-" for stdin) into raw objects; syntax errors name the file. */
function readManifests(paths: string[], recursive: boolean): unknown[] {
  if (!paths.length) throw new CliError('no manifests given: use -f FILE|DIR|-');
  const objects: unknown[] = [];
  for (const p of paths) {
    const files: string[] = [];
    if (p === '-') files.push('-'); else collectFiles(p, recursive, files);
    if (p !== '-' && !files.length) throw new CliError(`no .yaml, .yml or .json files in ${p}`);
    for (const f of files) {
      let text: string;
      try { text = readInputFile(f === '-' ? 0 : f, MAX_MANIFEST_FILE); } catch (e) { throw e instanceof InputFileError ? new CliError(e.message) : e; }
      try { objects.push(...manifestObjects(text, f === '-' ? '<stdin>' : f)); } catch (e) {
        if (e instanceof ValidationError) throw new CliError(errorLines(e));
        if (e instanceof ManifestFileError) throw new CliError(e.message);
        throw e;
      }
    }
  }
  if (!objects.length) throw new CliError(`no objects found in ${paths.join(', ')}`);
  return objects;
}

/** Options whose empty value means something: no TCP flags (`--flags ''`), no token (as
 * WDP_TOKEN=''), no hostname override (kube-proxy's default for its flag). */
const EMPTY_ALLOWED = new Set(['--flags', '--token', '--hostname-override']);

/** An empty argument or option value (an unset variable in a script: `-n "$NS"`) is refused,
 * naming it, before the command runs: most commands read "" as not given — every namespace,
 * every object, a TAP port in the daemon's own namespace instead of `--netns`'s. */
function refuseEmptyValues(action: Command): void {
  const path: string[] = [];
  for (let c: Command | null = action; c; c = c.parent) {
    if (c.parent) path.unshift(c.name());
    for (const opt of c.options) {
      const key = opt.attributeName();
      const v = c.getOptionValue(key);
      if (c.getOptionValueSource(key) !== 'cli' || EMPTY_ALLOWED.has(opt.long ?? '')) continue;
      if (v === '' || (Array.isArray(v) && v.includes(''))) throw new CliError(`${opt.long ?? opt.short} may not be empty`);
    }
  }
  action.registeredArguments.forEach((a, i) => {
    const v = action.processedArgs[i];
    if (v === '' || (Array.isArray(v) && v.includes(''))) throw new CliError(`${path.join(' ')}: ${a.name().toUpperCase()} may not be empty`);
  });
}

/** `wdp apply --validate` (kubectl's values) as the API's fieldValidation. */
const FIELD_VALIDATION: Record<string, string> = { strict: 'Strict', true: 'Strict', warn: 'Warn', ignore: 'Ignore', false: 'Ignore' };

function listBody(objects: unknown[]): string { return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }); }

function print(data: unknown, output: string | undefined, human: () => string): void {
  if (output === 'json') process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  // each document starts with "---": outputs appended to one file (`wdp get services -o yaml >
  // state.yaml; wdp get endpointslices -o yaml >> state.yaml`, docs/observe.md) stay separate documents
  else if (output === 'yaml') process.stdout.write(`---\n${toYaml(data)}`);
  else process.stdout.write(human());
}

interface ObjectResult { kind: string; namespace?: string; name: string; action: string }
interface ApplyResult {
  dryRun: boolean; generation: number; objects: ObjectResult[]; warnings: string[];
  diff: { frontendsUpsert: Raw[]; frontendsRemove: Raw[]; backendsUpsert: Raw[]; backendsRemove: Raw[]; routes?: Raw[]; snat?: Raw; counts?: Record<string, number>; truncated?: boolean };
}

function objectLines(r: ApplyResult): string {
  return r.objects.map((o) => `${o.kind.toLowerCase()}/${o.kind === 'NodeConfig' ? o.name : `${o.namespace}/${o.name}`} ${o.action}${r.dryRun ? ' (dry run)' : ''}`).join('\n') + '\n';
}

function feText(f: Raw): string {
  const addr = String(f.addr).includes(':') ? `[${f.addr}]` : f.addr;
  return `frontend ${f.id} ${f.service} ${f.portName || '-'} ${f.kind} ${addr}:${f.port}/${f.proto} -> ${f.backends.length} backend(s)${f.flags.length ? ` [${f.flags.join(',')}]` : ''}`;
}
function beText(b: Raw): string {
  const addr = String(b.addr).includes(':') ? `[${b.addr}]` : b.addr;
  return `backend ${b.id} ${b.service} ${addr}:${b.port} ${b.state} port=${b.outPort ?? 'none'}`;
}

function diffLines(r: ApplyResult): string {
  const d = r.diff;
  const lines: string[] = [];
  for (const f of d.frontendsRemove) lines.push(`- ${feText(f)}`);
  for (const f of d.frontendsUpsert) lines.push(`${f.op === 'add' ? '+' : '~'} ${feText(f)}`);
  for (const b of d.backendsRemove) lines.push(`- ${beText(b)}`);
  for (const b of d.backendsUpsert) lines.push(`${b.op === 'add' ? '+' : '~'} ${beText(b)}`);
  if (d.routes) lines.push(`~ routes: ${d.routes.map((x) => `${x.prefix}->port ${x.outPort}`).join(', ') || '(none)'}`);
  if (d.snat) lines.push(`~ masquerade: ipv4=${d.snat.v4 ?? '-'} ipv6=${d.snat.v6 ?? '-'} hairpin: ipv4=${d.snat.hairpinV4 ?? '-'} ipv6=${d.snat.hairpinV6 ?? '-'}`);
  if (d.truncated && d.counts) {
    const c = d.counts;
    lines.push(`... (lists truncated) in total: ${c.frontendsUpsert} frontends added/changed, ${c.frontendsRemove} removed, ${c.backendsUpsert} backends added/changed, ${c.backendsRemove} removed`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

function warn(r: { warnings?: string[] }): void { for (const w of r.warnings ?? []) process.stderr.write(`Warning: ${w}\n`); }

// ---- get --------------------------------------------------------------------------------------
function svcPorts(s: Raw): string {
  return (s.spec?.ports ?? []).map((p: Raw) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',') || '<none>';
}
/** kubectl's EXTERNAL-IP: an ExternalName's name; a LoadBalancer's ingress (each IP, else its
 * hostname) then its external IPs, or <pending>; other types their external IPs. */
function svcExternal(s: Raw): string {
  if (s.spec?.type === 'ExternalName') return s.spec?.externalName ?? '<none>';
  const ext: string[] = [...(s.spec?.externalIPs ?? [])];
  if (s.spec?.type === 'LoadBalancer') {
    const lb = ((s.status?.loadBalancer?.ingress ?? []) as Raw[]).map((i) => i.ip || i.hostname).filter(Boolean);
    ext.unshift(...lb);
    if (!ext.length) return '<pending>';
  }
  return ext.length ? ext.join(',') : '<none>';
}
function svcClusterIP(s: Raw): string {
  if (s.spec?.type === 'ExternalName') return '<none>';
  return (s.spec?.clusterIPs ?? (s.spec?.clusterIP ? [s.spec.clusterIP] : [])).join(',') || '<none>';
}

/** A Service's or EndpointSlice's NAME argument: NAME in `namespace` (else default), or
 * NAMESPACE/NAME as --service takes it; one whose namespace another -n names is refused. */
function namespacedName(arg: string, namespace: string | undefined, what: string): [string, string] {
  const parts = arg.split('/');
  if (parts.length === 1) return [namespace ?? 'default', arg];
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new CliError(`${what} ${JSON.stringify(arg)}: a name is NAME or NAMESPACE/NAME`);
  if (namespace !== undefined && namespace !== parts[0]) throw new CliError(`${what} ${arg} -n ${namespace}: two namespaces (give NAMESPACE/NAME or -n NAMESPACE NAME)`);
  return [parts[0], parts[1]];
}

async function getCommand(cmd: Command, resource: string, name: string | undefined, o: { output?: string; namespace?: string; allNamespaces?: boolean; limit?: string; service?: string; rate?: string; client?: string; backend?: string; proto?: string }): Promise<void> {
  const api = client(cmd);
  const ns = o.allNamespaces ? undefined : o.namespace;
  const nsQuery = ns ? `?namespace=${encodeURIComponent(ns)}` : '';
  const wide = o.output === 'wide';
  const structured = o.output === 'json' || o.output === 'yaml' ? o.output : undefined;
  // --service NS/NAME, or a bare NAME in -n's namespace (else default), as `get services -n`; the
  // NAME argument of the per-service resources (conntrack, frontends, backends) is that service
  const qualify = (s: string) => (s.includes('/') ? s : `${ns ?? 'default'}/${s}`);
  const perServiceResource = ['conntrack', 'ct', 'flows', 'frontends', 'fe', 'backends', 'be'].includes(resource);
  if (name !== undefined && perServiceResource && o.service !== undefined && qualify(name) !== qualify(o.service)) {
    throw new CliError(`get ${resource} ${name} --service ${o.service}: name one service (NAME is the same as --service NAME)`);
  }
  // an option of another resource would be ignored: refused, as commander refuses an unknown one
  const optionOf: Record<string, { flag: string; resources: string[] }> = {
    service: { flag: '--service', resources: ['conntrack', 'ct', 'flows', 'frontends', 'fe', 'backends', 'be'] },
    limit: { flag: '--limit', resources: ['conntrack', 'ct', 'flows'] },
    client: { flag: '--client', resources: ['conntrack', 'ct', 'flows'] },
    backend: { flag: '--backend', resources: ['conntrack', 'ct', 'flows'] },
    proto: { flag: '--proto', resources: ['conntrack', 'ct', 'flows'] },
    rate: { flag: '--rate', resources: ['counters', 'stats'] },
  };
  for (const [k, { flag, resources }] of Object.entries(optionOf)) {
    if ((o as Record<string, unknown>)[k] !== undefined && !resources.includes(resource)) throw new CliError(`${flag} is an option of get ${resources[0]}${resources.length > 3 ? `, ${resources[3]} and ${resources[5]}` : ''}, not of get ${resource}`);
  }
  const serviceArg = o.service ?? (perServiceResource ? name : undefined);
  const service = serviceArg === undefined ? undefined : qualify(serviceArg);
  /** Nothing listed for a named service: an error when the service does not exist (the API's 404). */
  const serviceExists = async (): Promise<void> => {
    if (!service) return;
    const [sns, sname] = service.split('/', 2);
    await api.call('GET', `/api/v1/namespaces/${encodeURIComponent(sns)}/services/${encodeURIComponent(sname)}`);
  };
  /** A frontends/backends list: one service's, or (-n) the namespace's services' (the whole list is read). */
  const perService = async (path: string): Promise<Raw> => {
    const res = await api.getAll(`${path}${service ? `?service=${encodeURIComponent(service)}` : ''}`) as Raw;
    if (ns && !service) res.items = (res.items as Raw[]).filter((x) => String(x.service).startsWith(`${ns}/`));
    if (!res.items.length) await serviceExists();
    return res;
  };
  switch (resource) {
    case 'services': case 'service': case 'svc': {
      if (name) {
        const [sns, sname] = namespacedName(name, ns, `get ${resource}`);
        const s = await api.call('GET', `/api/v1/namespaces/${encodeURIComponent(sns)}/services/${encodeURIComponent(sname)}`) as Raw;
        const fronts = wide ? (await api.getAll(`/api/v1/frontends?service=${encodeURIComponent(`${sns}/${sname}`)}`) as Raw).items as Raw[] : null;
        return print(s, structured, () => serviceTable([s], wide, fronts));
      }
      const list = await api.getAll(`/api/v1/services${nsQuery}`) as Raw;
      const fronts = wide ? (await api.getAll('/api/v1/frontends') as Raw).items as Raw[] : null;
      return print(list, structured, () => (list.items.length ? serviceTable(list.items, wide, fronts) : 'No services found.\n'));
    }
    case 'endpointslices': case 'endpointslice': case 'eps': {
      if (name) {
        const [sns, sname] = namespacedName(name, ns, `get ${resource}`);
        const s = await api.call('GET', `/api/v1/namespaces/${encodeURIComponent(sns)}/endpointslices/${encodeURIComponent(sname)}`) as Raw;
        return print(s, structured, () => sliceTable([s], wide));
      }
      const list = await api.getAll(`/api/v1/endpointslices${nsQuery}`) as Raw;
      return print(list, structured, () => (list.items.length ? sliceTable(list.items, wide) : 'No endpointslices found.\n'));
    }
    case 'conntrack': case 'ct': case 'flows': {
      // the daemon lists flows per service or all of them (a page at a time): -n alone would
      // filter one page only
      if (ns && !service) throw new CliError(`get conntrack -n ${ns}: give the service too (--service NAME), or -A for every flow`);
      const q = new URLSearchParams();
      if (service) q.set('service', service);
      for (const k of ['client', 'backend'] as const) {
        const v = o[k];
        if (v === undefined) continue;
        if (isIP(v) === 0) throw new CliError(`--${k} takes an IP address, got ${JSON.stringify(v)}`);
        q.set(k, v);
      }
      if (o.proto !== undefined) {
        if (!/^(tcp|udp|sctp)$/i.test(o.proto)) throw new CliError(`--proto takes TCP, UDP or SCTP, got ${JSON.stringify(o.proto)}`);
        q.set('proto', o.proto.toUpperCase());
      }
      if (o.limit !== undefined) {
        if (!/^[1-9]\d*$/.test(o.limit)) throw new CliError(`--limit takes a positive integer, got ${JSON.stringify(o.limit)}`);
        q.set('limit', o.limit);
      }
      const res = await api.call('GET', `/api/v1/conntrack${q.size ? `?${q}` : ''}`) as Raw;
      if (!res.items.length) await serviceExists();
      if (res.metadata?.continue) process.stderr.write(`showing the first ${res.items.length} flows: the daemon has more (raise --limit, or narrow with --service/--client/--backend/--proto)\n`);
      return print(res, structured, () => {
        if (!res.items.length) return 'No flows.\n';
        const h = ['PROTO', 'CLIENT', 'SERVICE-ADDRESS', 'BACKEND', 'STATE', 'SERVICE', 'IDLE'];
        if (wide) h.push('NAT-SOURCE', 'FLOW', 'AGE', 'FLAGS');
        return table(h, res.items.map((f: Raw) => {
          const row = [f.proto, hp(f.client, f.clientPort), hp(f.vip, f.vipPort), hp(f.backend, f.backendPort), f.state, f.service ?? '-', duration(f.idleMs)];
          if (wide) row.push(f.natSource ? hp(f.natSource, f.natSourcePort) : '-', f.flow, duration(f.ageMs), f.flags.join(',') || '-');
          return row;
        }));
      });
    }
    case 'counters': case 'stats': {
      if (name !== undefined) throw new CliError(`get counters takes no name (got ${JSON.stringify(name)}): -n NS for a namespace's services, -o wide for every frontend and backend`);
      const countersPath = `/api/v1/counters${ns ? `?namespace=${encodeURIComponent(ns)}` : ''}`;
      const secs = o.rate === undefined ? NaN : durationFlagAs(o.rate, { flag: '--rate', unit: 's', min: 0, above: true, max: 3600 }, (m) => new CliError(m));
      let c = await api.getAll(countersPath) as Raw;
      if (o.rate !== undefined) {
        // live rates: two snapshots `--rate` seconds apart, differences per second
        const c0 = c;
        await new Promise((r) => setTimeout(r, secs * 1000));
        c = await api.getAll(countersPath) as Raw;
        const per = (a: number, b: number | undefined) => Math.round((((a ?? 0) - (b ?? 0)) / secs) * 10) / 10;
        const before = new Map((c0.services as Raw[]).map((x) => [x.service, x.packets as number]));
        // per frontend and backend by id (-o wide's rows); an id new in the second snapshot counts from 0
        const feBefore = new Map((c0.services as Raw[]).flatMap((x) => (x.frontends as Raw[]).map((f) => [f.id, f.packets as number])));
        const beBefore = new Map((c0.backends as Raw[]).map((b) => [b.id, b.packets as number]));
        c.rates = {
          seconds: secs,
          rx_pps: per(c.global.rx_packets, c0.global.rx_packets), forward_pps: per(c.global.forward, c0.global.forward),
          drop_pps: per(c.global.drop, c0.global.drop), rx_bps: per(c.global.rx_bytes * 8, c0.global.rx_bytes * 8),
          services: Object.fromEntries((c.services as Raw[]).map((x) => [x.service, per(x.packets, before.get(x.service))])),
          frontends: Object.fromEntries((c.services as Raw[]).flatMap((x) => (x.frontends as Raw[]).map((f) => [f.id, per(f.packets, feBefore.get(f.id))]))),
          backends: Object.fromEntries((c.backends as Raw[]).map((b) => [b.id, per(b.packets, beBefore.get(b.id))])),
        };
      }
      return print(c, structured, () => {
        const g = c.global;
        let out = `generation ${c.generation}: rx ${g.rx_packets} packets (${bytes(g.rx_bytes)}), forward ${g.forward}, reject ${g.reject}, to_host ${g.to_host}, drop ${g.drop}, flows ${g.ct_active}\n`;
        if (c.rates) out += `over the last ${c.rates.seconds} s: rx ${c.rates.rx_pps} packets/s, forward ${c.rates.forward_pps}/s, drop ${c.rates.drop_pps}/s\n`;
        // several workers: each one's share, and what steering moved between them (fanout ports)
        for (const w of (c.workers ?? []) as Raw[]) {
          const wg = w.global;
          out += `  worker ${w.worker}: rx ${wg.rx_packets ?? 0}, forward ${wg.forward ?? 0}, drop ${wg.drop ?? 0}, flows ${wg.ct_active ?? 0}` +
            (wg.steer_handed_off !== undefined ? `, handed over ${wg.steer_handed_off}${wg.steer_handed_on ? ` (+${wg.steer_handed_on} on after a second look)` : ''}, received ${wg.steer_received}, ring full ${wg.steer_ring_full}` : '') + '\n';
        }
        out += '\n';
        const svcs = (c.services as Raw[]).filter((s) => !ns || s.service.startsWith(`${ns}/`));
        if (wide) {
          // with --rate a PACKETS/S column, as the per-service table's
          const rate = (m: Record<string, number> | undefined, id: number) => (c.rates ? [m?.[id] ?? 0] : []);
          const fronts = svcs.flatMap((s) => s.frontends.map((f: Raw) =>
            [s.service, f.portName || '-', f.kind, hp(f.addr, f.port) + `/${f.proto}`, f.packets, bytes(f.bytes), ...rate(c.rates?.frontends, f.id)]));
          const backs = (c.backends as Raw[]).filter((b) => !ns || b.service.startsWith(`${ns}/`))
            .map((b) => [hp(b.addr, b.port), b.service, b.state, b.packets, bytes(b.bytes), ...rate(c.rates?.backends, b.id)]);
          const rateHead = c.rates ? ['PACKETS/S'] : [];
          out += !fronts.length ? 'No frontends.\n' : table(['SERVICE', 'PORT', 'KIND', 'ADDRESS', 'PACKETS', 'BYTES', ...rateHead], fronts);
          out += '\n' + (!backs.length ? 'No backends.\n' : table(['BACKEND', 'SERVICE', 'STATE', 'PACKETS', 'BYTES', ...rateHead], backs));
        } else {
          out += !svcs.length ? 'No services.\n' : c.rates
            ? table(['SERVICE', 'PACKETS', 'BYTES', 'PACKETS/S'], svcs.map((s) => [s.service, s.packets, bytes(s.bytes), c.rates.services[s.service] ?? 0]))
            : table(['SERVICE', 'PACKETS', 'BYTES'], svcs.map((s) => [s.service, s.packets, bytes(s.bytes)]));
        }
        const drops = Object.entries(c.drops as Record<string, number>).filter(([, n]) => n > 0);
        out += '\n' + (drops.length ? table(['DROP-REASON', 'PACKETS'], drops) : 'No drops.\n');
        const rejects = Object.entries((c.reasons ?? {}) as Record<string, number>).filter(([k, n]) => k.startsWith('reject_') && n > 0);
        if (rejects.length) out += '\n' + table(['REJECT-REASON', 'PACKETS'], rejects);
        return out;
      });
    }
    case 'frontends': case 'fe': {
      const res = await perService('/api/v1/frontends');
      return print(res, structured, () => (!res.items.length ? 'No frontends found.\n' : table(['ID', 'SERVICE', 'PORT', 'KIND', 'ADDRESS', 'BACKENDS', 'FLAGS'],
        res.items.map((f: Raw) => [f.id, f.service, f.portName || '-', f.kind, hp(f.addr, f.port) + `/${f.proto}`, f.backends.length, f.flags.join(',') || '-']))));
    }
    case 'backends': case 'be': {
      const res = await perService('/api/v1/backends');
      return print(res, structured, () => (!res.items.length ? 'No backends found.\n' : table(['ID', 'SERVICE', 'ADDRESS', 'STATE', 'OUT-PORT', 'NODE'],
        res.items.map((b: Raw) => [b.id, b.service, hp(b.addr, b.port), b.state, b.outPort ?? 'none', b.nodeName ?? '-']))));
    }
    case 'nodeconfig': case 'node': {
      const n = await api.call('GET', '/api/v1/nodeconfig') as Raw;
      if (name !== undefined && name !== n.metadata?.name) throw new CliError(`NodeConfig ${JSON.stringify(name)} not found (the daemon's is ${JSON.stringify(n.metadata?.name)})`);
      return print(n, structured ?? 'yaml', () => '');
    }
    case 'ports': case 'port': {
      const res = await api.call('GET', name ? `/api/v1/ports/${encodeURIComponent(name)}` : '/api/v1/ports') as Raw;
      const items = name ? [res] : res.items;
      return print(res, structured, () => portsTable(items, wide));
    }
    default: {
      const elsewhere = OTHER_ENDPOINTS[resource.toLowerCase()];
      const hint = elsewhere ? '' : didYouMean(resource, GET_RESOURCES);
      throw new CliError(`unknown resource ${JSON.stringify(resource)}${hint ? ` (${hint})` : ''}: use services, endpointslices, conntrack, counters, frontends, backends, nodeconfig or ports${elsewhere ? ` (${elsewhere})` : ''}`);
    }
  }
}

/** What `wdp get` takes (its aliases too: a misspelt one is suggested). */
const GET_RESOURCES = ['services', 'service', 'svc', 'endpointslices', 'endpointslice', 'eps', 'conntrack', 'ct', 'flows', 'counters', 'stats',
  'frontends', 'fe', 'backends', 'be', 'nodeconfig', 'node', 'ports', 'port'];

/** What `wdp get` does not show, and where it is. */
const OTHER_ENDPOINTS: Record<string, string> = {
  metrics: 'Prometheus metrics: curl http://127.0.0.1:9440/metrics on the control API, with -H "Authorization: Bearer $WDP_TOKEN" when it has a token; docs/api.md "Metrics"',
  healthz: 'health: curl http://127.0.0.1:10256/healthz (the config\'s api.healthz, or kubernetes.healthzBindAddress); wdp status for what the daemon restored',
};

function hp(a: string, p: number | undefined): string { return `${String(a).includes(':') ? `[${a}]` : a}${p !== undefined ? `:${p}` : ''}`; }

function serviceTable(items: Raw[], wide: boolean, fronts: Raw[] | null): string {
  const h = ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)'];
  if (wide) h.push('FRONTENDS', 'BACKENDS', 'AFFINITY', 'TRAFFIC-POLICY');
  return table(h, items.map((s) => {
    const row = [s.metadata?.namespace ?? 'default', s.metadata?.name, s.spec?.type ?? 'ClusterIP', svcClusterIP(s), svcExternal(s), svcPorts(s)];
    if (wide) {
      const key = `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`;
      const mine = (fronts ?? []).filter((f) => f.service === key);
      const be = new Set(mine.flatMap((f) => f.backends as number[]));
      row.push(String(mine.length), String(be.size), s.spec?.sessionAffinity ?? 'None', `ext=${s.spec?.externalTrafficPolicy ?? 'Cluster'},int=${s.spec?.internalTrafficPolicy ?? 'Cluster'}`);
    }
    return row;
  }));
}

function sliceTable(items: Raw[], wide: boolean): string {
  const h = ['NAMESPACE', 'NAME', 'SERVICE', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS'];
  if (wide) h.push('READY', 'TERMINATING', 'NODES');
  return table(h, items.map((s) => {
    const eps: Raw[] = s.endpoints ?? [];
    const addrs = eps.map((e) => e.addresses?.[0]).filter(Boolean);
    const row = [s.metadata?.namespace ?? 'default', s.metadata?.name, s.metadata?.labels?.['kubernetes.io/service-name'] ?? '<none>', s.addressType,
      (s.ports ?? []).map((p: Raw) => `${p.name ? p.name + ':' : ''}${p.port ?? '*'}/${p.protocol ?? 'TCP'}`).join(',') || '<unset>',
      addrs.length ? addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : '') : '<none>'];
    if (wide) {
      row.push(String(eps.filter((e) => e.conditions?.ready !== false).length), String(eps.filter((e) => e.conditions?.terminating === true).length),
        [...new Set(eps.map((e) => e.nodeName).filter(Boolean))].join(',') || '-');
    }
    return row;
  }));
}

// ---- program ----------------------------------------------------------------------------------
function packageVersion(): string {
  try { return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version; }
  catch { return 'unknown'; }
}

/** What a failure of `command` exits with: 1, except for `wdp diff`, whose 1 means "changes"
 * (kubectl diff's convention: above 1 is an error), so a script can tell the two apart. */
export function failureExitOf(command: string | null): number { return command === 'diff' ? 2 : 1; }

/** Adds commands of another module (`start`, `demo`, `bench`) to the program. */
export type RegisterCommands = (program: Command) => void;

/** The CLI; `onSubcommand(name)` is called with the subcommand about to run (before its action);
 * `more` registers the commands of other modules, after the client's own (the help's order). */
export function buildProgram(onSubcommand: (name: string) => void = () => {}, more: readonly RegisterCommands[] = []): Command {
  const program = new Command();
  program.hook('preSubcommand', (_p, sub) => { onSubcommand(sub.name()); });
  program.hook('preAction', (_p, action) => refuseEmptyValues(action));
  program.name('wdp')
    .version(packageVersion(), '-V, --version', 'print the wdp version')
    .description('WebAssembly-accelerated Kubernetes service dataplane (user-space kube-proxy replacement).\n' +
      'Client commands talk to a running daemon\'s control API (see docs/api.md).')
    .option('-s, --server <url>', `control API address: http://host:port or unix:/path (env WDP_SERVER, default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'bearer token for the control API (env WDP_TOKEN)')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str.startsWith('error: ') ? str : `error: ${str}`) });

  program.command('apply').description('create or replace Services, EndpointSlices and the NodeConfig from manifests (JSON or YAML, multi-document, Lists)')
    .requiredOption('-f, --filename <path...>', 'file, directory (.yaml/.yml/.json) or - for stdin; repeatable')
    .option('-R, --recursive', 'descend into subdirectories of directories given with -f')
    .option('--dry-run', 'validate and compile, show what would change, change nothing')
    .addOption(new Option('--validate <mode>', 'fields the object\'s kind does not have, as kubectl\'s: warn (default) prints a Warning for each, strict refuses the apply, ignore says nothing').choices(['strict', 'warn', 'ignore', 'true', 'false']))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']))
    .addHelpText('after', '\nExamples:\n  wdp apply -f examples/nodeport.yaml\n  kubectl get svc,endpointslices -A -o yaml | wdp apply -f -\n'
      + '(a NodeConfig applied to a daemon replaces its node addresses until it restarts: docs/api.md)')
    .action(async (o, cmd: Command) => {
      const objects = readManifests(o.filename, !!o.recursive);
      const q = [...(o.dryRun ? ['dryRun=true'] : []), ...(o.validate ? [`fieldValidation=${FIELD_VALIDATION[o.validate as string]}`] : [])];
      const r = await client(cmd).call('POST', `/api/v1/apply${q.length ? `?${q.join('&')}` : ''}`, listBody(objects)) as ApplyResult;
      warn(r);
      print(r, o.output, () => objectLines(r) + (o.dryRun ? diffLines(r) : ''));
    });

  program.command('delete').description('delete the Services, EndpointSlices (or NodeConfig) named in manifests, or one object by name')
    .argument('[resource]', 'service | endpointslice (with NAME) instead of -f')
    .argument('[name]', 'object name (or NAMESPACE/NAME)')
    .option('-f, --filename <path...>', 'file, directory or - for stdin')
    .option('-n, --namespace <ns>', 'namespace for RESOURCE NAME', 'default')
    .option('-R, --recursive', 'descend into subdirectories')
    .option('--dry-run', 'show what would change, change nothing')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']))
    .action(async (resource: string | undefined, name: string | undefined, o, cmd: Command) => {
      let r: ApplyResult;
      const q = o.dryRun ? '?dryRun=true' : '';
      if (o.filename) {
        if (resource) throw new CliError('give either -f or RESOURCE NAME, not both');
        r = await client(cmd).call('POST', `/api/v1/delete${q}`, listBody(readManifests(o.filename, !!o.recursive))) as ApplyResult;
      } else {
        if (!resource || !name) throw new CliError('nothing to delete: use -f FILE or RESOURCE NAME (e.g. wdp delete service web -n default)');
        const kind = ({ service: 'services', services: 'services', svc: 'services', endpointslice: 'endpointslices', endpointslices: 'endpointslices', eps: 'endpointslices' } as Record<string, string>)[resource];
        if (!kind) {
          // the NodeConfig is deleted from its manifest (wdp get nodeconfig -o yaml gives one): by name
          // there is no asking which one, the daemon has one, whatever name is given
          if (/^nodeconfigs?$/i.test(resource)) throw new CliError('a NodeConfig is deleted with -f FILE naming it (wdp get nodeconfig -o yaml > node.yaml; wdp delete -f node.yaml), not by RESOURCE NAME: use service or endpointslice');
          const hint = didYouMean(resource, ['services', 'service', 'svc', 'endpointslices', 'endpointslice', 'eps']);
          throw new CliError(`unknown resource ${JSON.stringify(resource)}${hint ? ` (${hint})` : ''}: use service or endpointslice`);
        }
        const [dns, dname] = namespacedName(name, cmd.getOptionValueSource('namespace') === 'default' ? undefined : o.namespace, `delete ${resource}`);
        r = await client(cmd).call('DELETE', `/api/v1/namespaces/${encodeURIComponent(dns)}/${kind}/${encodeURIComponent(dname)}${q}`) as ApplyResult;
      }
      warn(r);
      print(r, o.output, () => objectLines(r) + (o.dryRun ? diffLines(r) : ''));
    });

  program.command('get').description('show services | endpointslices | conntrack | counters | frontends | backends | nodeconfig | ports')
    .argument('<resource>', 'services (svc), endpointslices (eps), conntrack (ct), counters, frontends (fe), backends (be), nodeconfig, ports')
    .argument('[name]', 'a single service or endpointslice (NAME in -n\'s namespace, or NAMESPACE/NAME); the service of conntrack, frontends and backends (as --service NAME); a port')
    .addOption(new Option('-o, --output <format>', 'output format (default: an aligned table; nodeconfig: YAML)').choices(['json', 'yaml', 'wide']))
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('-A, --all-namespaces', 'all namespaces (the default for lists)')
    .option('--service <ns/name>', 'conntrack/frontends/backends: only this service')
    .option('--limit <n>', 'conntrack: at most this many flows (default 1000)')
    .option('--client <ip>', 'conntrack: only flows from this client address')
    .option('--backend <ip>', 'conntrack: only flows translated to this backend address')
    .option('--proto <p>', 'conntrack: only flows of this protocol (TCP, UDP, SCTP)')
    .option('--rate <duration>', 'counters: take two snapshots this long apart (2, 2s, 500ms, 1m; a bare number is seconds; at most 1h) and show live rates')
    .action(async (resource: string, name: string | undefined, o, cmd: Command) => getCommand(cmd, resource, name, o));

  program.command('diff').description('show what applying the manifests would change in the dataplane (exit 0: no change, 1: changes, 2: error)')
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin')
    .option('-R, --recursive', 'descend into subdirectories')
    .action(async (o, cmd: Command) => {
      const r = await client(cmd).call('POST', '/api/v1/apply?dryRun=true', listBody(readManifests(o.filename, !!o.recursive))) as ApplyResult;
      warn(r);
      const changed = r.objects.filter((x) => x.action !== 'unchanged');
      const d = diffLines(r);
      process.stdout.write(changed.map((x) => `${x.kind.toLowerCase()}/${x.namespace ? `${x.namespace}/` : ''}${x.name} would be ${x.action}`).join('\n') + (changed.length ? '\n' : '') + d);
      if (changed.length || d) process.exitCode = 1;
    });

  const trace = program.command('trace').description('run a described packet through the real core in dry-run trace mode and show every decision; with --live, trace real packets as they pass the daemon')
    .option('--live', 'trace real packets matching the filter flags (docs/observe.md)')
    .option('--flags <flags>', 'TCP flags, e.g. S, A, SA, R, F (default S)')
    .option('--in-port <port>', 'dataplane port (name or index) the packet arrives on (default 0; with --live a filter)')
    .option('-c, --count <n>', '--live: stop after this many packets (default 100)')
    .option('--duration <d>', '--live: stop after this long, e.g. 30s, 2m (default 30s)')
    .option('--rate <n>', '--live: at most this many packets a second per worker (default 100)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']))
    .addHelpText('after', '\nWithout --live: one packet from --src to --dst, by default TCP, --sport 40000, --dport 80,\n--flags S, --in-port 0 (ICMP: an echo request).');
  addFilterOptions(trace, true);
  trace.action(async (o, cmd: Command) => {
      if (o.live) { await liveTrace(client(cmd), o); return; }
      if (!o.src || !o.dst) throw new CliError('a dry-run trace needs --src and --dst (or use --live to trace real packets)');
      for (const k of ['host', 'port', 'service', 'backend', 'reason', 'count', 'duration', 'rate']) if (o[k] !== undefined) throw new CliError(`--${k} is a --live filter/bound`);
      o.proto ??= 'TCP';
      const spec: Raw = { src: o.src, dst: o.dst, proto: o.proto };
      const num = (v: string | undefined, what: string): number | undefined => {
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new CliError(`--${what} must be a number, got ${JSON.stringify(v)}`);
        return Number(v);
      };
      if (o.sport !== undefined) spec.sport = num(o.sport, 'sport');
      if (o.dport !== undefined) spec.dport = num(o.dport, 'dport');
      if (o.flags) {
        // said here with the flag's name (the API's field is tcpFlags); E and C (ECE, CWR) as the API takes them
        if (!/^[SAFRPUEC]+$/i.test(o.flags)) throw new CliError(`--flags takes TCP flags, letters of S, A, F, R, P, U (e.g. SA), got ${JSON.stringify(o.flags)}`);
        spec.tcpFlags = o.flags;
      }
      if (o.inPort !== undefined) spec.inPort = await daemonInPort(client(cmd), String(o.inPort));
      const t = await client(cmd).call('POST', '/api/v1/trace', JSON.stringify(spec)) as Raw;
      print(t, o.output, () => {
        const lines = [`verdict:    ${t.verdict} (${t.reason})`, `out port:   ${t.outPort ?? '-'}`, `stages:     ${t.stages.join(' -> ') || '-'}`,
          `conntrack:  ${t.conntrack}`, `selection:  ${t.selection}`];
        if (t.frontend) lines.push(`frontend:   ${t.frontend.id} ${t.frontend.service} ${t.frontend.portName || '-'} ${t.frontend.kind} ${hp(t.frontend.addr, t.frontend.port)}`);
        if (t.backend) lines.push(`backend:    ${t.backend.id} ${hp(t.backend.addr, t.backend.port)} ${t.backend.state}`);
        // a reject's output is the answer sent back (ICMP unreachable), not the packet rewritten
        if (t.output) lines.push(`${t.verdict === 'reject' ? 'answer:   ' : 'rewritten:'}  ${hp(t.output.src, t.output.sport)} -> ${hp(t.output.dst, t.output.dport)}`);
        lines.push(`hash:       ${t.hash}`);
        return lines.join('\n') + '\n';
      });
    });

  program.command('status').description('generation and object counts of the running daemon, what its start restored (flows, affinity, table images) and its last flow checkpoint')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']))
    .action(async (o, cmd: Command) => {
      const g = await client(cmd).call('GET', '/api/v1/generation') as Raw;
      print(g, o.output, () => `generation ${g.generation}, last updated ${g.lastUpdated}: ${g.services} services, ${g.endpointSlices} endpointslices, ${g.frontends} frontends, ${g.backends} backends\n` +
        withheldLine(g.withheldFrontends) + (g.restore ? restoreLines(g.restore) : ''));
    });

  registerPortCommands(program, client, print);
  registerObserveCommands(program, client);
  registerReplayCommand(program);
  for (const register of more) register(program);
  // an unknown option named before a missing required one; each usage error says where the usage is
  usageErrorsInOrder(program);
  return program;
}

/** `wdp status`: the frontends not served because another Service holds the tuple or the cluster
 * IP is a node address (wdp_frontends_withheld), those reasons with any; nothing when none. */
function withheldLine(w: Record<string, number> | undefined): string {
  const some = Object.entries(w ?? {}).filter(([, n]) => n > 0);
  return some.length ? `frontends withheld: ${some.map(([reason, n]) => `${reason} ${n}`).join(', ')} (docs/core.md Known differences (11), (21))\n` : '';
}

/** `wdp status`: what the daemon's start restored (src/daemon/restart.ts RestoreSummary). */
function restoreLines(r: Raw): string {
  const dropped = Object.entries(r.dropped ?? {}).map(([k, n]) => `${k} ${n}`).join(', ');
  const lines = [`restored in ${r.durationMs} ms: ${r.objects.services} services, ${r.objects.endpointSlices} endpointslices, ${r.neighbours} neighbours, ` +
    `${r.flows} flows (${r.staleBackends} with a vanished backend), ${r.affinity} affinity entries` +
    (r.from === 'checkpoint' ? ` from the checkpoint of ${r.savedAt} (down ${r.downtimeMs} ms)` : r.from === 'none' ? ' (no flow checkpoint)' : '')];
  if (dropped) lines.push(`  not restored: ${dropped}`);
  if (r.problem) lines.push(`  checkpoint problem: ${r.problem}${r.keptAs ? ` (kept as ${r.keptAs})` : ''}`);
  if (r.lastCheckpoint) lines.push(`last checkpoint ${r.lastCheckpoint.at} (${r.lastCheckpoint.reason}): ${r.lastCheckpoint.flows} flows, ${r.lastCheckpoint.affinity} affinity entries, ${r.lastCheckpoint.bytes} bytes in ${r.lastCheckpoint.ms} ms`);
  const lost = (r.lastCheckpoint?.lostWorkers ?? []) as Array<{ worker: number; error: string }>;
  if (lost.length) lines.push(`  without the flows of ${lost.length} worker${lost.length === 1 ? '' : 's'}: ${lost.map((w) => `worker ${w.worker} (${w.error})`).join(', ')}`);
  return lines.join('\n') + '\n';
}

/** `wdp help strat` (or `help port ad`): an unknown command, as `wdp strat` says it (with its
 * hint), not the parent's help and exit 0, which is what commander does for a help topic it does
 * not know. */
function helpTopicExists(program: Command, words: string[]): void {
  let c = program;
  for (const w of words) {
    if (w.startsWith('-') || w === 'help') return;
    const sub = c.commands.find((x) => x.name() === w || x.aliases().includes(w));
    if (!sub) {
      if (c.commands.length) c.error(`error: unknown command '${w}'`, { code: 'commander.unknownCommand', exitCode: 1 });
      return;
    }
    c = sub;
  }
}

/** Runs the CLI over `argv`; the exit code. */
export async function main(argv: string[], more: readonly RegisterCommands[] = []): Promise<number> {
  let failureExit = failureExitOf(null); // (the subcommand's, once it is known: below)
  // a reader that goes away (`wdp replay x.pcap | head`) ends the output, not with a stack trace
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    process.stderr.write(`error: writing the output: ${e.message}\n`);
    process.exit(failureExit);   // `wdp diff`: 2, never its 1 ("changes")
  });
  const program = buildProgram((name) => { failureExit = failureExitOf(name); }, more);
  // every command, not only the root: a subcommand's usage error then comes back here too
  const override = (c: Command): void => { c.exitOverride(); c.commands.forEach(override); };
  override(program);
  try {
    if (argv[2] === 'help') helpTopicExists(program, argv.slice(3));
    // `wdp help port add` is `wdp port add --help` (commander's help command looks one level down only)
    if (argv[2] === 'help' && argv.length > 4) argv = [...argv.slice(0, 2), ...argv.slice(3), '--help'];
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    // commander already printed it (help, version: 0; a usage error: 1)
    if (err.code?.startsWith('commander.')) return (err.exitCode ?? 1) === 1 ? failureExit : err.exitCode!;
    const msg = e instanceof ApiError || e instanceof CliError ? (e as Error).message : `${(e as Error).message ?? String(e)}`;
    const lines = msg.split('\n').filter((line) => line.trim());
    for (const line of lines.length ? lines : [msg.trim() || 'failed (no message)']) process.stderr.write(`error: ${line}\n`);
    return failureExit;
  }
}
