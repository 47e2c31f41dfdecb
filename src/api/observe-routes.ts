// Live trace and capture on the running daemon (`wdp trace --live`, `wdp capture`). Registered
// on the control API by the daemon (docs/api.md, docs/observe.md).
//
//   POST /api/v1/trace/live   body {filter, count, durationMs, rate}: NDJSON, one traced packet a
//                             line (LiveTraceEvent), then {"kind":"TraceEnd",...}
//   POST /api/v1/capture      body {port, direction, filter, count, maxBytes, durationMs, snaplen}:
//                             a classic pcap stream (application/vnd.tcpdump.pcap)
//
// Each request runs one session in every worker until its count, byte budget or duration is
// reached or the client goes away; the session is stopped in every case.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DocumentError, parseSingleDocument } from '../model/load.js';
import { MAX_YAML_BODY_BYTES } from '../model/limits.js';
import { parseFilter } from '../observe/filter.js';
import type { ObserveEvents, ObserveRequest } from '../observe/types.js';
import { encodePcap } from '../ports/pcap.js';
import { TF_SLOTS } from '../../assembly/layout.js';

export interface ObserveService {
  observe(req: ObserveRequest, onEvents: (e: ObserveEvents) => void): Promise<{ stop(): Promise<void> }>;
  ports(): Promise<Array<{ name: string; index: number }>>;
}

export const LIVE_TRACE_LIMITS = { count: 100_000, durationMs: 3_600_000, rate: 10_000 };
export const CAPTURE_LIMITS = { count: 1_000_000, maxBytes: 1 << 30, durationMs: 3_600_000 };

function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

function body(req: FastifyRequest): Record<string, unknown> {
  let v: unknown = req.body;
  if (typeof v === 'string') {
    if (!v.trim()) return {};
    try { v = parseSingleDocument(v, 'request body', { maxYamlBytes: MAX_YAML_BODY_BYTES }); } catch (e) { throw e instanceof DocumentError ? httpError(e.status, e.message) : e; }
  }
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw httpError(400, 'request body must be an object');
  return v as Record<string, unknown>;
}

function int(b: Record<string, unknown>, k: string, dflt: number, max: number, problems: string[]): number {
  const v = b[k];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) { problems.push(`${k}: must be an integer 1..${max}`); return dflt; }
  return v;
}

function checkKeys(b: Record<string, unknown>, known: string[], problems: string[]): void {
  for (const k of Object.keys(b)) if (!known.includes(k)) problems.push(`${k}: unknown field (known: ${known.join(', ')})`);
}

/** Runs a session until done() is called, the duration passes or the client disconnects. */
async function runSession(svc: ObserveService, reply: FastifyReply, spec: ObserveRequest, durationMs: number,
  contentType: string, head: Uint8Array | string | undefined,
  onEvents: (e: ObserveEvents, write: (chunk: Uint8Array | string) => void, done: (why: string) => void) => void,
  end: (why: string) => string | undefined): Promise<void> {
  let finished = false;
  let resolveDone!: (why: string) => void;
  const doneP = new Promise<string>((r) => { resolveDone = r; });
  const done = (why: string) => { if (!finished) { finished = true; resolveDone(why); } };
  const raw = reply.raw;
  const write = (chunk: Uint8Array | string) => { if (!raw.destroyed) raw.write(chunk); };
  // the session is started first (its errors are plain HTTP errors), then the reply is taken
  // over; matches that arrive before the head is written wait in `early`
  let early: Array<ObserveEvents> | undefined = [];
  const session = await svc.observe(spec, (e) => {
    if (finished) return;
    if (early) early.push(e); else onEvents(e, write, done);
  });
  const timer = setTimeout(() => done('duration'), durationMs);
  try {
    reply.hijack();
    raw.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    // the status says the session runs: sent now, not held back (as Node does) until the first
    // match, which a quiet filter may never have
    if (head !== undefined) write(head); else raw.flushHeaders();
    raw.on('close', () => done('client'));
    const queued = early;
    early = undefined;
    for (const e of queued) if (!finished) onEvents(e, write, done);
    const why = await doneP;
    const tail = end(why);
    if (tail !== undefined) write(tail);
  } finally {
    done('error');
    clearTimeout(timer);
    await session.stop();
    if (!raw.destroyed) raw.end();
  }
}

/** A live trace's filter with its inPort (a port's index or name) as the index of a port the
 * daemon has; one it has not is a problem naming it (a filter on no port never matches). */
async function withInPortIndex(svc: ObserveService, filter: unknown, problems: string[]): Promise<unknown> {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return filter;
  const given = (filter as { inPort?: unknown }).inPort;
  if (typeof given !== 'string' && typeof given !== 'number') return filter; // (absent, or refused by parseFilter)
  const ports = await svc.ports();
  const hit = ports.find((p) => (typeof given === 'string' ? p.name === given : p.index === given));
  if (hit) return { ...filter, inPort: hit.index };
  problems.push(`filter.inPort: Not found: ${JSON.stringify(given)}: the daemon has no port of that ${typeof given === 'string' ? 'name' : 'index'} (ports: ${ports.map((p) => `${p.name} (${p.index})`).join(', ') || 'none'})`);
  const { inPort: _dropped, ...rest } = filter as Record<string, unknown>;
  return rest;
}

export function registerObserveRoutes(app: FastifyInstance, svc: ObserveService): void {
  // each live trace holds one of the core's TF_SLOTS filter slots in every worker
  let liveTraces = 0;
  app.post('/api/v1/trace/live', async (req, reply) => {
    const b = body(req), problems: string[] = [];
    checkKeys(b, ['filter', 'count', 'durationMs', 'rate'], problems);
    const count = int(b, 'count', 100, LIVE_TRACE_LIMITS.count, problems);
    const durationMs = int(b, 'durationMs', 30_000, LIVE_TRACE_LIMITS.durationMs, problems);
    const rate = int(b, 'rate', 100, LIVE_TRACE_LIMITS.rate, problems);
    const f = parseFilter(await withInPortIndex(svc, b.filter, problems));
    problems.push(...f.problems);
    if (problems.length || !f.filter) throw httpError(422, `invalid live trace: ${problems.join('; ')}`);
    if (liveTraces >= TF_SLOTS) throw httpError(429, `at most ${TF_SLOTS} live traces run at once (${liveTraces} running): end one first`);
    let traced = 0;
    liveTraces++;
    try {
      await runSession(svc, reply, { kind: 'trace', filter: f.filter, rate }, durationMs, 'application/x-ndjson', undefined, (e, write, done) => {
        for (const ev of e.trace) {
          if (traced >= count) break;
          traced++;
          write(JSON.stringify(ev) + '\n');
        }
        if (traced >= count) done('count');
      }, (why) => JSON.stringify({ kind: 'TraceEnd', traced, reason: why }) + '\n');
    } finally {
      liveTraces--;
    }
  });

  app.post('/api/v1/capture', async (req, reply) => {
    const b = body(req), problems: string[] = [];
    checkKeys(b, ['port', 'direction', 'filter', 'count', 'maxBytes', 'durationMs', 'snaplen'], problems);
    const count = int(b, 'count', 1000, CAPTURE_LIMITS.count, problems);
    const maxBytes = int(b, 'maxBytes', 16 << 20, CAPTURE_LIMITS.maxBytes, problems);
    const durationMs = int(b, 'durationMs', 10_000, CAPTURE_LIMITS.durationMs, problems);
    const snaplen = int(b, 'snaplen', 65535, 65535, problems);
    const direction = b.direction ?? 'both';
    if (direction !== 'in' && direction !== 'out' && direction !== 'both') problems.push('direction: must be in, out or both');
    const f = parseFilter(b.filter);
    problems.push(...f.problems);
    if (typeof b.port !== 'string' || !b.port) problems.push('port: required, the name of a dataplane port (wdp get ports)');
    if (problems.length || !f.filter) throw httpError(422, `invalid capture: ${problems.join('; ')}`);
    const port = (await svc.ports()).find((p) => p.name === b.port);
    if (!port) throw httpError(404, `no port "${String(b.port)}"`);
    let frames = 0, bytes = 0;
    const header = encodePcap([], { snaplen });
    await runSession(svc, reply, { kind: 'capture', filter: f.filter, port: port.index, direction: direction as 'in' | 'out' | 'both', snaplen },
      durationMs, 'application/vnd.tcpdump.pcap', header, (e, write, done) => {
        for (const fr of e.frames) {
          if (frames >= count || bytes + fr.data.length > maxBytes) { done(frames >= count ? 'count' : 'bytes'); return; }
          frames++; bytes += fr.data.length;
          write(encodePcap([fr], { snaplen }).subarray(header.length));
        }
        if (frames >= count) done('count');
      }, () => undefined);
  });
}
