// `wdp trace --live` and `wdp capture`: live trace and capture on the running daemon
// (src/api/observe-routes.ts; docs/observe.md).
import { openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { readInputBytes, readInputFile } from '../util/input-file.js';
import { durationFlagAs } from '../util/duration.js';

import { Option, type Command } from 'commander';
import { ApiError, type ApiClient } from './client.js';
import { parseSingleDocument } from '../model/load.js';
import { ManifestFileError, manifestObjects } from './manifests.js';
import { ValidationError } from '../model/types.js';
import { parsePcap, encodePcap, MAX_PCAP_BYTES } from '../ports/pcap.js';
import { replay } from '../observe/replay.js';
import { portIndexes, resolveInPort } from '../observe/port-names.js';
import { VERDICT_NAMES } from '../core/names.js';

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any


class UsageError extends Error {}

function num(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${what} must be a number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** "30s", "2m", "500ms", "10" (seconds) -> milliseconds (src/util/duration.ts: every duration flag's form). */
export function parseDuration(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  // (a bare number is seconds here)
  return Math.round(durationFlagAs(v, { flag: `--${what}`, unit: 's', min: 0.001 }, (m) => new UsageError(m)) * 1000);
}

/** The filter flags shared by `trace --live` and `capture` -> the API's filter object. */
export function filterFromFlags(o: Raw, portIsFilter = true): Raw {
  const f: Raw = {};
  for (const k of ['src', 'dst', 'host', 'service', 'backend', 'reason'] as const) if (o[k] !== undefined) f[k] = o[k];
  for (const [k, flag] of [['sport', 'sport'], ['dport', 'dport'], ['port', 'port'], ['inPort', 'in-port']] as const) {
    if (k === 'port' && !portIsFilter) continue;
    const v = num(o[k], flag);
    if (v !== undefined) f[k] = v;
  }
  if (o.proto !== undefined) f.proto = String(o.proto).toUpperCase();
  return f;
}

/** The packet filter flags of `wdp capture` and `wdp trace` (`withTraceFields`: trace's, where
 * the filters other than the packet's own fields are --live only: a dry run refuses them). */
export function addFilterOptions(c: Command, withTraceFields: boolean): Command {
  const live = withTraceFields ? '--live: ' : '';
  c.option('--src <ip>', 'source address').option('--dst <ip>', 'destination address').option('--host <ip>', `${live}source or destination address`)
    .option('--sport <port>', 'source port').option('--dport <port>', 'destination port')
    .option('--proto <proto>', 'TCP | UDP | SCTP | ICMP');
  if (withTraceFields) {
    c.option('--port <port>', `${live}source or destination port`);
    c.option('--service <ns/name>', `${live}only packets that matched this Service (a bare NAME: default/NAME)`).option('--backend <ip>', `${live}only packets sent to this backend`)
      .option('--reason <reason>', `${live}only packets with this reason (e.g. reject_no_endpoints), or a verdict for any of its reasons: ${VERDICT_NAMES.join(' | ')}`);
  }
  return c;
}

const hp = (a: string, p?: number) => (p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

/** One traced packet as a few human lines. */
export function formatLiveEvent(e: Raw): string {
  const i = e.input ?? {};
  const lines = [`${String(e.time).slice(11, 23)} worker ${e.worker} port ${e.inPort}  ${i.proto} ${hp(i.src, i.sport)} -> ${hp(i.dst, i.dport)}  ${e.verdict} (${e.reason})`];
  lines.push(`  stages:     ${(e.stages as string[]).join(' -> ') || '-'}`);
  if (e.frontend) lines.push(`  service:    ${e.frontend.service} ${e.frontend.portName || '-'} ${e.frontend.kind} ${hp(e.frontend.addr, e.frontend.port)} (frontend ${e.frontend.id})`);
  if (e.conntrack !== 'none') {
    const fl = e.flow ? `  flow ${e.flow.flow} ${e.flow.state}${e.flow.flags.length ? ` [${e.flow.flags.join(',')}]` : ''} ${hp(e.flow.client, e.flow.clientPort)} -> ${hp(e.flow.vip, e.flow.vipPort)} => ${hp(e.flow.backend, e.flow.backendPort)}` : '';
    lines.push(`  conntrack:  ${e.conntrack}${fl}`);
  }
  if (e.backend) {
    const why = e.selection === 'maglev' && e.maglevSlot !== undefined ? `maglev slot ${e.maglevSlot}, hash ${e.hash}` : e.selection;
    lines.push(`  backend:    ${hp(e.backend.addr, e.backend.port)} ${e.backend.state} (backend ${e.backend.id}; ${why})`);
  }
  if (e.output) {
    const was = `${hp(i.src, i.sport)} -> ${hp(i.dst, i.dport)}`, now = `${hp(e.output.src, e.output.sport)} -> ${hp(e.output.dst, e.output.dport)}`;
    // a reject's output is the answer sent back (ICMP unreachable), as the dry-run trace says
    lines.push(e.verdict === 'reject' ? `  answer:     ${now}  out port ${e.outPort ?? '-'}`
      : was === now ? `  output:     ${now} (not rewritten)  out port ${e.outPort ?? '-'}` : `  rewritten:  ${was}  =>  ${now}  out port ${e.outPort ?? '-'}`);
  }
  return lines.join('\n') + '\n';
}

/** Splits a byte stream into lines (NDJSON) across chunk boundaries. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    rest += chunk.toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
  };
}

/** An --in-port value for the running daemon: a port name it has (wdp get ports), or the index of
 * one — refused otherwise, naming its ports. A control plane without the ports routes (404, an
 * embedding) takes an index as given. */
export async function daemonInPort(api: ApiClient, value: string): Promise<number> {
  const numeric = /^\d+$/.test(value);
  let ports: Map<string, number> | undefined;
  try {
    const res = await api.call('GET', '/api/v1/ports') as { items: Array<{ name: string; index: number }> };
    ports = new Map(res.items.map((p) => [p.name, p.index]));
  } catch (e) {
    if (!numeric || !(e instanceof ApiError) || e.status !== 404) throw e;
  }
  try {
    const n = resolveInPort(value, ports, 'the daemon');
    if (ports && numeric && ![...ports.values()].includes(n)) {
      throw new Error(`--in-port ${value}: the daemon has no port of that index (ports: ${[...ports].map(([k, v]) => `${k} (${v})`).join(', ')})`);
    }
    return n;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** `wdp trace --live`: streams the daemon's matches until count/duration. */
export async function liveTrace(api: ApiClient, o: Raw): Promise<void> {
  if (o.inPort !== undefined) o = { ...o, inPort: String(await daemonInPort(api, String(o.inPort))) };
  if (o.service !== undefined) {
    // a bare NAME is in the default namespace (as wdp get --service); a Service the daemon does not
    // have would be a filter that never matches: refused (its 404) before anything is traced
    const service = String(o.service).includes('/') ? String(o.service) : `default/${o.service}`;
    const [ns, name] = service.split('/', 2);
    await api.call('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/services/${encodeURIComponent(name)}`);
    o = { ...o, service };
  }
  const req: Raw = { filter: filterFromFlags(o) };
  const count = num(o.count, 'count'); if (count !== undefined) req.count = count;
  const rate = num(o.rate, 'rate'); if (rate !== undefined) req.rate = rate;
  const d = parseDuration(o.duration, 'duration'); if (d !== undefined) req.durationMs = d;
  let end: Raw | undefined;
  await api.stream('POST', '/api/v1/trace/live', JSON.stringify(req), 'application/x-ndjson', lineSplitter((line) => {
    const e = JSON.parse(line) as Raw;
    if (e.kind === 'TraceEnd') { end = e; if (o.output === 'json') process.stdout.write(line + '\n'); return; }
    process.stdout.write(o.output === 'json' ? line + '\n' : formatLiveEvent(e));
  }));
  if (end && o.output !== 'json') process.stderr.write(`${end.traced} packet(s) traced (${end.reason === 'count' ? 'count reached' : end.reason === 'duration' ? 'duration elapsed' : end.reason})\n`);
}

export function registerObserveCommands(program: Command, client: (cmd: Command) => ApiClient): void {
  const cap = program.command('capture').description('write a port\'s frames from the running daemon to a pcap file (before and/or after translation)')
    .requiredOption('--port <name>', 'dataplane port: its name or index (wdp get ports)')
    .requiredOption('-w, --write <file>', 'pcap file to write ("-" for stdout)')
    .addOption(new Option('--direction <dir>', 'in: as received (before translation); out: as sent (after)').choices(['in', 'out', 'both']).default('both'))
    .option('-c, --count <n>', 'stop after this many frames (default 1000)')
    .option('--max-bytes <n>', 'stop before the frames exceed this many bytes (default 16 MiB)')
    .option('--duration <d>', 'stop after this long (default 10s)')
    .option('--snaplen <n>', 'bytes kept per frame (default 65535)');
  addFilterOptions(cap, false);
  cap.action(async (o: Raw, cmd: Command) => {
    let port = String(o.port);
    if (/^\d+$/.test(port)) {
      // an index, as wdp get ports lists them (and --in-port takes them): the port of that index
      const res = await client(cmd).call('GET', '/api/v1/ports') as { items: Array<{ name: string; index: number }> };
      const p = res.items.find((x) => x.index === Number(port));
      if (!p) throw new UsageError(`--port ${port}: the daemon has no port of that index (ports: ${res.items.map((x) => `${x.name} (${x.index})`).join(', ')})`);
      port = p.name;
    }
    const req: Raw = { port, direction: o.direction, filter: filterFromFlags(o, false) };
    for (const [k, flag] of [['count', 'count'], ['maxBytes', 'max-bytes'], ['snaplen', 'snaplen']] as const) {
      const v = num(o[k], flag); if (v !== undefined) req[k] = v;
    }
    const d = parseDuration(o.duration, 'duration'); if (d !== undefined) req.durationMs = d;
    const toStdout = o.write === '-';
    // the file is opened with the stream's first bytes (the pcap header): a capture the daemon
    // refuses leaves no empty file
    let fd = toStdout ? 1 : -1;
    let bytes = 0;
    try {
      await client(cmd).stream('POST', '/api/v1/capture', JSON.stringify(req), 'application/vnd.tcpdump.pcap', (chunk) => {
        if (fd < 0) {
          try { fd = openSync(o.write, 'w'); } catch (e) { throw new UsageError(`cannot write ${o.write}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
        }
        writeSync(fd, chunk); bytes += chunk.length;
      });
    } finally {
      if (!toStdout && fd >= 0) closeSync(fd);
    }
    if (!toStdout && fd < 0) writeFileSync(o.write, ''); // answered with nothing at all
    if (!toStdout) process.stderr.write(`wrote ${bytes} bytes to ${o.write}\n`);
  });
}

function replayCommand(o: Raw, file: string): void {
  const objects: unknown[] = [];
  for (const f of o.filename as string[]) {
    let text: string;
    try { text = readInputFile(f === '-' ? 0 : f, 64 << 20); } catch (e) { throw new UsageError((e as Error).message); }
    try { objects.push(...manifestObjects(text, f)); } catch (e) { throw e instanceof ManifestFileError ? new UsageError(e.message) : e; }
  }
  let inPort = 0;
  let portMac: string | undefined;
  if (o.inPort !== undefined) {
    let ports: Map<string, number> | undefined;
    let text = '';
    if (o.ports !== undefined) {
      try { text = readInputFile(o.ports, 16 << 20); } catch (e) { throw new UsageError((e as Error).message); }
      try { ports = portIndexes(text, o.ports); } catch (e) { throw new UsageError((e as Error).message); }
    }
    try { inPort = resolveInPort(String(o.inPort), ports, o.ports); } catch (e) { throw new UsageError((e as Error).message); }
    if (ports) portMac = portMacOf(text, inPort);
  }
  // (bounded: `wdp replay /dev/zero` read until the heap gave out)
  let bytes: Buffer;
  try { bytes = readInputBytes(file, MAX_PCAP_BYTES, `pcap file ${file}`); } catch (e) { throw new UsageError((e as Error).message); }
  const pcap = parsePcap(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
  // a capture of --direction out or both holds what the dataplane sent on the port (from the
  // port's own MAC): not frames that arrived there
  const own = portMac ? macBytes(portMac) : null;
  const records = own ? pcap.records.filter((r) => !(r.data.length >= 12 && own.every((b, i) => r.data[6 + i] === b))) : pcap.records;
  const skipped = pcap.records.length - records.length;
  let results;
  try {
    results = replay(objects, records, { inPort, flows: num(o.flows, 'flows') });
  } catch (e) {
    if (e instanceof ValidationError) throw new UsageError(e.errors.map((x) => x.message).join('\n'));
    throw e;
  }
  const verdicts: Record<string, number> = {};
  for (const r of results) {
    verdicts[r.event.verdict] = (verdicts[r.event.verdict] ?? 0) + 1;
    process.stdout.write(o.output === 'json' ? JSON.stringify(r.event) + '\n' : formatLiveEvent(r.event));
  }
  if (o.write) {
    const sent = results.filter((r) => r.event.verdict === 'forward' || r.event.verdict === 'reject');
    writeFileSync(o.write, encodePcap(sent.map((r) => ({ tsNs: r.tsNs, data: r.frame }))));
  }
  process.stderr.write(`${results.length} frame(s) replayed: ${Object.entries(verdicts).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}${o.write ? `; ${o.write} holds the forwarded/rejected frames as translated` : ''}\n`);
  if (skipped) process.stderr.write(`skipped ${skipped} frame(s) the dataplane sent on port ${o.inPort} (source MAC ${portMac}, the port's own: a capture of --direction out or both); capture with --direction in to replay what arrived\n`);
}

/** The MAC of port `index` in a ports file (wdp get ports -o yaml|json, or a daemon config's
 * ports: with mac set), if it says. */
function portMacOf(text: string, index: number): string | undefined {
  const d = (parseSingleDocument(text, 'the ports file') ?? {}) as Raw;
  const p = Array.isArray(d.items) ? (d.items as Raw[]).find((x) => x?.index === index) : Array.isArray(d.ports) ? (d.ports as Raw[])[index] : undefined;
  return typeof p?.mac === 'string' && /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(p.mac) ? p.mac : undefined;
}

const macBytes = (mac: string): number[] => mac.split(/[:-]/).map((x) => parseInt(x, 16));

export function registerReplayCommand(program: Command): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program.command('replay <file>').description('run a pcap capture offline through the same core with the given state; print each frame\'s verdict and trace')
    .requiredOption('-f, --filename <file>', 'Services/EndpointSlices/NodeConfig (YAML/JSON; repeatable; e.g. the output of wdp get services|endpointslices|nodeconfig -o yaml, docs/observe.md)', collect)
    .option('--in-port <port>', 'dataplane port the frames arrived on: its name (with --ports) or index (default 0)')
    .option('--ports <file>', 'port names: the output of "wdp get ports -o yaml", or the daemon config file')
    .option('--flows <n>', 'conntrack capacity (default 65536, as the daemon)')
    .option('-w, --write <file>', 'write the forwarded and rejected frames, as translated, to this pcap file')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json']))
    .action((file: string, o: Raw) => replayCommand(o, file));
}

export { UsageError };
