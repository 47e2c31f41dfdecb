// WorkerDataplane: the Dataplane interface (src/core/dataplane-types.ts) over forwarding workers.
//
//   apply     -> the diff is posted to every worker; each applies it between two batches; the
//                promise resolves when all have (the generation is then the same everywhere).
//   counters  -> summed over workers (gauges like ct_active too: flows are per worker).
//   conntrack -> concatenated.   trace -> asked of worker 0 (all hold the same tables).
//
// A worker that dies takes the dataplane down with a clear error: requests then reject instead
// of hanging, and `onFatal` lets the daemon exit non-zero.
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import * as L from '../../assembly/layout.js';
import type { Ir } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import { encodeDiff, type IrDiffWire } from '../ir/diff-wire.js';
import type { CounterSnapshot, Dataplane, FlowFilter, FlowInfo, Programmed, TracePacketSpec, TraceResult } from '../core/dataplane-types.js';
import type { Neighbour } from './l2.js';
import { WakeSender, wakeSignalBuffer } from './worker-wake.js';
import type { FlowRecords, FromWorker, ImportStats, PortInfo, ToWorker, WorkerInit, WorkerPortSpec } from './protocol.js';
import type { ObserveEvents, ObserveRequest, ObserveSpec } from '../observe/types.js';
import type { ImageStartResult } from './table-image-file.js';
import { within } from '../util/within.js';

/** The buffers of a diff's column lists, each once. encodeDiff writes every column list into typed
 * arrays of its own, made for that message and read by no one after it (the compiler keeps none of
 * them), so one worker's post moves them instead of copying (a full sync's ~3.5 MB: a copy into
 * the message and another out of it, each a few thousand fresh pages). Lists sent as objects
 * (a few records: their arrays may be the compiler's) are not listed. */
export function wireTransferList(w: IrDiffWire): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const cols of [w.frontendsUpsert, w.backendsUpsert]) {
    if (Array.isArray(cols)) continue;
    for (const v of Object.values(cols)) if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer && v.buffer.byteLength > 0) out.add(v.buffer);
  }
  return [...out];
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timeoutWithin?: (ms: number) => void };

interface WorkerHandle {
  index: number;
  thread: Worker;
  port: MessagePort;
  wake: WakeSender;
  pending: Map<number, Pending>;
  dead?: string;
  /** The request it left unanswered past its time-out, until it answers anything again. */
  unanswered?: string;
  ports: PortInfo[];
  waker: number;               // the worker's native waker handle (0: none)
  image?: ImageStartResult;    // what became of its table image at start
}

export interface WorkerDataplaneEvents {
  onNeighbour?: (n: Neighbour, worker: number) => void;
  /** A learned neighbour stopped answering (or its port was removed). */
  onNeighbourLost?: (n: Neighbour, worker: number) => void;
  onLog?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, data: Record<string, unknown> | undefined, worker: number) => void;
  onFatal?: (message: string, worker: number) => void;
  /** A worker that resumed from its table image took the control plane's first apply. */
  onImageCaughtUp?: (r: NonNullable<ImageStartResult['catchUp']>, worker: number) => void;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** At a stop (WorkerDataplane.stopping): the most a request of the stop waits (the pause, the
 * export), and the most one already in flight when the stop begins (an apply writing large tables:
 * up to ~7 s at 100k Services × 10 endpoints under load) or a table image write (~190 MB written
 * and fsynced at that size) waits. A worker that left a request unanswered is not asked again, so
 * one hung worker delays a stop once: by STOP_REQUEST_TIMEOUT_MS, or STOP_LONG_TIMEOUT_MS when it
 * hung in a request under way. */
export const STOP_REQUEST_TIMEOUT_MS = 5_000;
export const STOP_LONG_TIMEOUT_MS = 15_000;
/** At close: how long a worker's thread may take to end once told to (then it is left behind). */
const TERMINATE_WAIT_MS = 2_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class WorkerDataplane implements Dataplane {
  private readonly workers: WorkerHandle[] = [];
  private nextId = 1;
  private gen = 0;
  private closed = false;
  private atStop = false;
  // Set by the first apply that failed since the start: its undo (here on the workers that took
  // it, or the control plane's of the store or of the dataplane) may have failed too, leaving the
  // tables apart from the saved state; a table image of them would be trusted for the store's
  // revision, so none is written (writeImages)
  private doubt: string | null = null;
  private nextSession = 1;
  private readonly observers = new Map<number, (e: ObserveEvents) => void>();

  private constructor(private readonly events: WorkerDataplaneEvents) {}

  /** Starts one worker per init and waits until each has loaded its core and opened its ports. */
  static async start(inits: WorkerInit[], events: WorkerDataplaneEvents = {}): Promise<WorkerDataplane> {
    const dp = new WorkerDataplane(events);
    try {
      await Promise.all(inits.map((init) => dp.spawn(init)));
      // workers sharing ports wake each other when they hand frames over (steering.ts)
      if (inits.some((i) => i.steer)) {
        const wakers = inits.map((i) => dp.workers.find((h) => h.index === i.worker)?.waker ?? 0);
        await Promise.all(dp.workers.map((h) => dp.request(h, { type: 'steerPeers', wakers })));
      }
    } catch (e) {
      await dp.close().catch(() => undefined);
      throw e;
    }
    return dp;
  }

  private spawn(init: WorkerInit): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const wakeSignal = wakeSignalBuffer();
    const thread = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { init, port: port2, wakeSignal }, transferList: [port2],
    });
    const h: WorkerHandle = { index: init.worker, thread, port: port1, wake: new WakeSender(wakeSignal), pending: new Map(), ports: [], waker: 0 };
    this.workers.push(h);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const fail = (msg: string) => {
        h.dead = msg;
        for (const p of h.pending.values()) p.reject(new Error(msg));
        h.pending.clear();
        if (!ready) reject(new Error(msg));
        else if (!this.closed) this.events.onFatal?.(msg, h.index);
      };
      const onMessage = (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            try { h.wake.useWaker(m.waker); } catch (e) { fail(`worker ${h.index}: ${(e as Error).message}`); break; }
            ready = true; h.ports = m.ports; h.waker = m.waker; if (m.image) h.image = m.image; resolve(); break;
          case 'image-caught-up':
            if (h.image) h.image.catchUp = m.result;
            this.events.onImageCaughtUp?.(m.result, h.index);
            break;
          case 'fatal': fail(`worker ${h.index}: ${m.message}`); break;
          case 'reply': {
            delete h.unanswered;
            const p = h.pending.get(m.id);
            if (!p) break;
            h.pending.delete(m.id);
            if (m.ok) p.resolve(m.value); else p.reject(new Error(m.error));
            break;
          }
          case 'neighbour': this.events.onNeighbour?.(m.neighbour, h.index); break;
          case 'neighbour-lost': this.events.onNeighbourLost?.(m.neighbour, h.index); break;
          case 'log': this.events.onLog?.(m.level, m.msg, m.data, h.index); break;
          case 'observe': this.observers.get(m.events.session)?.(m.events); break;
        }
      };
      port1.on('message', onMessage);
      thread.on('error', (e) => fail(`worker ${h.index} crashed: ${e.message}`));
      thread.on('exit', (code) => {
        // 'exit' can overtake messages the worker posted just before it ended (its 'fatal' with the
        // reason): deliver those first so the reason is what start() reports.
        for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) onMessage(m.message as FromWorker);
        if (!h.dead && (!this.closed || code !== 0)) fail(`worker ${h.index} exited with code ${code}`); else h.dead ??= 'exited';
      });
    });
  }

  /** `transfer`: buffers `msg` holds that the caller gives up (moved to the worker; copied when
   * one cannot be moved). */
  private request<T>(h: WorkerHandle, msg: DistributiveOmit<ToWorker, 'id'>, timeoutMs = this.atStop ? STOP_REQUEST_TIMEOUT_MS : REQUEST_TIMEOUT_MS, transfer?: ArrayBuffer[]): Promise<T> {
    if (h.dead) return Promise.reject(new Error(`dataplane worker ${h.index} is not running (${h.dead})`));
    if (this.atStop && h.unanswered) return Promise.reject(new Error(`dataplane worker ${h.index} is not asked at the stop: ${h.unanswered}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      const arm = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          h.pending.delete(id);
          h.unanswered ??= `it did not answer ${msg.type} within ${ms} ms`;
          reject(new Error(`dataplane worker ${h.index} did not answer ${msg.type} within ${ms} ms`));
        }, ms);
      };
      const deadline = Date.now() + timeoutMs;
      arm(timeoutMs);
      h.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
        timeoutWithin: (ms) => { if (deadline - Date.now() > ms) arm(ms); },
      });
      const m = { ...msg, id } as ToWorker;
      if (!transfer?.length) h.port.postMessage(m);
      else {
        try { h.port.postMessage(m, transfer); } catch { h.port.postMessage(m); } // (a buffer that cannot move is copied)
      }
      h.wake.wake(); // after the post: the worker's wait returns and finds the message queued
    });
  }

  async apply(diff: IrDiff, _ir: Ir, undo?: IrDiff): Promise<Programmed> {
    if (this.closed) throw new Error('dataplane is closed');
    const wire = encodeDiff(diff); // once for every worker
    // the last worker's post moves the columns' buffers (the others' copy them first: posted in order)
    const moved = wireTransferList(wire), last = this.workers.length - 1;
    const res = await Promise.allSettled(this.workers.map((h, i) => this.request<Programmed>(h, { type: 'apply', diff: wire }, undefined, i === last ? moved : undefined)));
    const failed = res.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      const reason = (res[failed] as PromiseRejectedResult).reason as Error;
      this.doubt ??= `an apply failed at the dataplane since the start (${reason.message})`;
      const took = this.workers.filter((_, i) => res[i].status === 'fulfilled');
      if (took.length && undo) {
        // some workers took the diff: put them back, so every worker holds the previous tables
        const back = await Promise.allSettled(took.map((h) => this.request(h, { type: 'apply', diff: encodeDiff(undo) })));
        const stuck = back.filter((r) => r.status === 'rejected').length;
        if (stuck) throw new Error(`${reason.message}; ${stuck} of ${this.workers.length} workers could not be put back and now hold different tables (restart the daemon)`);
      }
      throw reason;
    }
    const took = res.map((r) => (r as PromiseFulfilledResult<Programmed>).value);
    this.gen = Math.min(...took.map((p) => p.generation));
    return { generation: this.gen, programmedAtNs: Math.max(...took.map((p) => p.programmedAtNs)) };
  }

  async counters(): Promise<CounterSnapshot> {
    const all = await Promise.all(this.workers.map((h) => this.request<CounterSnapshot>(h, { type: 'counters' })));
    if (all.length === 1) return all[0];
    const sum = (into: Record<string, number>, from: Record<string, number>) => { for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v; };
    const out: CounterSnapshot = { generation: Math.min(...all.map((c) => c.generation)), global: {}, reasons: {}, frontends: {}, backends: {},
      workers: all.map((c, i) => ({ worker: this.workers[i].index, global: c.global, reasons: c.reasons })) };
    for (const c of all) {
      sum(out.global, c.global); sum(out.reasons, c.reasons);
      for (const [id, v] of Object.entries(c.frontends)) { const o = (out.frontends[Number(id)] ??= { packets: 0, bytes: 0 }); o.packets += v.packets; o.bytes += v.bytes; }
      for (const [id, v] of Object.entries(c.backends)) { const o = (out.backends[Number(id)] ??= { packets: 0, bytes: 0 }); o.packets += v.packets; o.bytes += v.bytes; }
    }
    return out;
  }

  async conntrack(filter?: FlowFilter): Promise<FlowInfo[]> {
    const all = await Promise.all(this.workers.map((h) => this.request<FlowInfo[]>(h, { type: 'conntrack', filter })));
    const flat = all.flat();
    return filter?.limit !== undefined ? flat.slice(0, filter.limit) : flat;
  }

  async trace(spec: TracePacketSpec): Promise<TraceResult> {
    return this.request<TraceResult>(this.workers[0], { type: 'trace', spec });
  }

  /** Starts a live trace or capture in every worker; `onEvents` gets each worker's matches per
   * batch until stop() (which every caller must call: a session costs the workers until then). */
  async observe(req: ObserveRequest, onEvents: (e: ObserveEvents) => void): Promise<{ stop(): Promise<void> }> {
    if (this.closed) throw new Error('dataplane is closed');
    const session = this.nextSession++;
    const spec = { ...req, session } as ObserveSpec;
    this.observers.set(session, onEvents);
    const stop = async () => {
      this.observers.delete(session);
      await Promise.all(this.workers.map((h) => this.request(h, { type: 'observe-stop', session }).catch(() => undefined)));
    };
    try {
      await Promise.all(this.workers.map((h) => this.request(h, { type: 'observe-start', spec })));
    } catch (e) {
      await stop();
      throw e;
    }
    return { stop };
  }

  /** Port names, indexes, MACs, kinds (native/relay) and stats, from every worker; a port every
   * worker opened (fanout) once, its stats summed over the workers. */
  async ports(): Promise<PortInfo[]> {
    const all = await Promise.all(this.workers.map((h) => this.request<PortInfo[]>(h, { type: 'ports' })));
    const byIndex = new Map<number, PortInfo>();
    for (const p of all.flat()) {
      const have = byIndex.get(p.index);
      if (!have) { byIndex.set(p.index, { ...p, stats: { ...p.stats } }); continue; }
      const st = have.stats as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(p.stats)) if (typeof v === 'number' && typeof st[k] === 'number') st[k] = (st[k] as number) + v;
    }
    return [...byIndex.values()].sort((a, b) => a.index - b.index);
  }

  /** Opens a port in worker `worker` while it forwards (a pod created). */
  async addPort(worker: number, spec: WorkerPortSpec): Promise<PortInfo> {
    return this.request<PortInfo>(this.handle(worker), { type: 'addPort', spec });
  }

  /** Closes a port between two batches of its worker (a pod deleted; `absent`: a config-file
   * port whose interface is gone, kept in the tables). */
  async removePort(worker: number, index: number, absent = false): Promise<void> {
    await this.request(this.handle(worker), { type: 'removePort', index, ...(absent ? { absent } : {}) });
  }

  /** Has worker `worker`'s core check `mtu` on port `index` (an MTU the main thread read). */
  async setPortMtu(worker: number, index: number, mtu: number): Promise<void> {
    await this.request(this.handle(worker), { type: 'setPortMtu', index, mtu });
  }

  /** Tells every worker to forget a learned neighbour (it is learned afresh when heard from). */
  async forgetNeighbour(addr: string): Promise<void> {
    await Promise.all(this.workers.map((h) => this.request(h, { type: 'forgetNeighbour', addr }).catch(() => undefined)));
  }

  /** Has every worker answer ARP/ND on its uplinks for `addrs` as the node addresses (instead of
   * the ones it started with or was last given); resolves with what each worker now answers. */
  async setNodeAddresses(addrs: string[]): Promise<string[][]> {
    return Promise.all(this.workers.map((h) => this.request<string[]>(h, { type: 'nodeAddresses', addresses: addrs })));
  }

  private handle(worker: number): WorkerHandle {
    if (this.closed) throw new Error('dataplane is closed');
    const h = this.workers.find((w) => w.index === worker);
    if (!h) throw new Error(`worker ${worker} does not exist (workers: ${this.workers.length})`);
    return h;
  }

  generation(): number { return this.gen; }

  /** The daemon stops: from now on no request waits more than STOP_REQUEST_TIMEOUT_MS (those in
   * flight and a table image write STOP_LONG_TIMEOUT_MS), and a worker that left one unanswered is
   * not asked again until it answers — a hung worker costs its own flows and image, once, not
   * every worker's at the end of the grace period. */
  stopping(): void {
    if (this.atStop) return;
    this.atStop = true;
    for (const h of this.workers) {
      // a time-out before the stop (a load spike) does not count: each worker is asked at the stop
      delete h.unanswered;
      for (const p of h.pending.values()) p.timeoutWithin?.(STOP_LONG_TIMEOUT_MS);
    }
  }

  /** Why the tables may differ from the saved state (a failed apply since the start), or null. */
  tablesInDoubt(): string | null { return this.doubt; }

  /** What became of each worker's table image at start (none asked for: empty). */
  imageResults(): ImageStartResult[] {
    return this.workers.flatMap((h) => h.image ? [h.image] : []);
  }

  /** Every worker writes its table image to `dir` (at a clean stop, forwarding paused). Resolves
   * with each worker's size and time, or its error (a worker that cannot is skipped, not fatal). */
  async writeImages(dir: string, revision: string, inputsHash: string): Promise<Array<{ worker: number; bytes?: number; ms?: number; error?: string }>> {
    if (this.doubt) return this.workers.map((h) => ({ worker: h.index, error: `not written: ${this.doubt}; the tables may differ from the saved state` }));
    return Promise.all(this.workers.map(async (h) => {
      try { return { worker: h.index, ...(await this.request<{ bytes: number; ms: number }>(h, { type: 'writeImage', dir, revision, inputsHash }, this.atStop ? STOP_LONG_TIMEOUT_MS : REQUEST_TIMEOUT_MS)) }; } catch (e) { return { worker: h.index, error: (e as Error).message }; }
    }));
  }

  /** Every worker's live flow and affinity records (src/core/flow-export.ts), by worker index. A
   * worker that cannot give them (dead, or not answering in time) is in `failed` with the reason;
   * the others' records are returned all the same. */
  async exportFlows(): Promise<{ workers: Array<FlowRecords & { worker: number }>; failed: Array<{ worker: number; error: string }> }> {
    const res = await Promise.allSettled(this.workers.map((h) => this.request<FlowRecords>(h, { type: 'exportFlows' })));
    const out: Awaited<ReturnType<WorkerDataplane['exportFlows']>> = { workers: [], failed: [] };
    res.forEach((r, i) => {
      const worker = this.workers[i].index;
      if (r.status === 'fulfilled') out.workers.push({ ...r.value, worker });
      else out.failed.push({ worker, error: (r.reason as Error).message });
    });
    return out;
  }

  /** Gives each worker the records saved from the worker of the same index; records of workers
   * that no longer exist are not restored (counted under dropped.workerGone), nor are those of a
   * worker that cannot take them (dead, or not answering: dropped.workerFailed, and in `failed`
   * with why) — the others' are imported and counted all the same. `neighbours` (the restored
   * learned ones) go to every worker, which keeps those of its own ports to re-verify. */
  async importFlows(saved: Array<FlowRecords & { worker: number }>, extraAgeMs: number, neighbours: Neighbour[] = []): Promise<ImportStats & { failed?: Array<{ worker: number; error: string }> }> {
    const total: ImportStats & { failed?: Array<{ worker: number; error: string }> } = { flows: 0, affinity: 0, staleBackends: 0, dropped: {} };
    const count = (w: FlowRecords) => w.flows.length / L.CT_SIZE + w.affinity.length / L.AFF_SIZE;
    await Promise.all(saved.map(async (w) => {
      const h = this.workers.find((x) => x.index === w.worker);
      if (!h) { addImportStats(total, { flows: 0, affinity: 0, staleBackends: 0, dropped: { workerGone: count(w) } }); return; }
      try {
        addImportStats(total, await this.request<ImportStats>(h, { type: 'importFlows', records: w, extraAgeMs, neighbours }));
      } catch (e) {
        addImportStats(total, { flows: 0, affinity: 0, staleBackends: 0, dropped: { workerFailed: count(w) } });
        (total.failed ??= []).push({ worker: w.worker, error: (e as Error).message });
      }
    }));
    return total;
  }

  /** Pauses (false) or resumes (true) forwarding on every worker, between two batches. */
  async setForwarding(on: boolean): Promise<void> {
    // every worker's answer (or time-out) before this resolves or rejects: a worker that does not
    // answer does not leave the others' requests in flight behind the caller
    const res = await Promise.allSettled(this.workers.map((h) => this.request(h, { type: 'forward', on })));
    const failed = res.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) throw new Error(failed.map((r) => (r.reason as Error).message).join('; '));
  }

  /** Stops every worker after its current batch (ports closed), then terminates the threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map(async (h) => {
      if (!h.dead) await this.request(h, { type: 'stop' }, 5000).catch(() => undefined);
      // a thread stuck in a native call ends when it returns: the stop does not wait for that
      await within(h.thread.terminate().catch(() => undefined), TERMINATE_WAIT_MS);
      h.port.close();
    }));
  }
}

/** Adds one worker's flow import (`s`) to `total` (dropped reasons by name, zeros left out). */
export function addImportStats(total: ImportStats, s: ImportStats): void {
  total.flows += s.flows; total.affinity += s.affinity; total.staleBackends += s.staleBackends;
  for (const [k, n] of Object.entries(s.dropped)) if (n) total.dropped[k] = (total.dropped[k] ?? 0) + n;
}
