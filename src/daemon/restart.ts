// Restarts and upgrades that keep connections: the daemon's side of the flow checkpoint
// (checkpoint.ts is the file, src/core/flow-export.ts the records).
//
//   start:  read the checkpoint (before the workers forward anything; they start held), seed the
//           learned neighbours from it, let the control plane restore the desired state, import
//           each worker's flows and affinity entries, then resume forwarding — healthz answers
//           503 until then. What was restored, and how long it took, is summary().
//   run:    the checkpoint restored is retired once its flows are in the running workers (a
//           crash later must not bring back that moment's flows): with checkpointSeconds 0 it is
//           removed, else a checkpoint of the flows now is written over it at once. Then a
//           checkpoint every conntrack.checkpointSeconds (0: only on stop), so a crash loses at
//           most that interval of new flows.
//   stop:   forwarding paused, a last checkpoint written, then the workers stop. A worker that
//           does not answer costs its own flows and, once, the stop's per-request time-out
//           (WorkerDataplane.stopping): the stop stays well inside a pod's grace period.
import type { Logger } from 'pino';
import * as L from '../../assembly/layout.js';
import { readCheckpoint, retireCheckpoint, writeCheckpoint, type Checkpoint, type CheckpointLoad } from './checkpoint.js';
import { addImportStats, type WorkerDataplane } from './worker-dataplane.js';
import type { Neighbour } from './l2.js';
import type { ImportStats } from '../core/flow-export.js';
import type { ImageStartResult, WorkerImageInit } from './table-image-file.js';
import { placeSavedFlows, type Placement } from './flow-placement.js';

/** A learned neighbour as saved: with its port's name (port indexes follow the config order). */
export type SavedNeighbour = Neighbour & { portName: string };

export interface RestoreSummary {
  /** "checkpoint": flows restored from it; "none": nothing saved; "rejected": refused (problem says why). */
  from: 'checkpoint' | 'none' | 'rejected';
  savedAt?: string;
  downtimeMs?: number;
  problem?: string;
  keptAs?: string;
  objects: { services: number; endpointSlices: number };
  neighbours: number;
  flows: number;
  affinity: number;
  staleBackends: number;
  dropped: Record<string, number>;
  /** From the daemon's start until forwarding resumed. */
  durationMs: number;
  /** Milliseconds from the process's start until forwarding resumed (from the table images when
   * they were used: before the control plane restored) and until the control plane had restored
   * (its API listens right after). */
  forwardingAfterMs?: number;
  controlPlaneAfterMs?: number;
  /** ... and until every worker forwarded with the restored state programmed (this summary's
   * durationMs, counted from the process's start). */
  readyAfterMs?: number;
  /** Each worker's table image at start: used or why not, and once the control plane caught up
   * whether its tables were byte-identical to the image and how many flows got new ids. */
  images?: ImageStartResult[];
  /** Last checkpoint written by this run. */
  lastCheckpoint?: {
    at: string; reason: string; flows: number; affinity: number; bytes: number; ms: number;
    /** Workers whose flows it lacks (dead, or not answering), with why. */
    lostWorkers?: Array<{ worker: number; error: string }>;
  };
}

export class FlowCheckpointer {
  private readonly loaded: CheckpointLoad;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<boolean> | undefined;
  private readonly summaryData: RestoreSummary;
  private neighbours: Neighbour[] = [];

  constructor(private readonly stateDir: string, private readonly log: Logger, private readonly periodSeconds: number) {
    this.loaded = readCheckpoint(stateDir);
    const l = this.loaded;
    this.summaryData = {
      from: l.checkpoint ? 'checkpoint' : l.problem ? 'rejected' : 'none',
      ...(l.problem ? { problem: l.problem } : {}), ...(l.keptAs ? { keptAs: l.keptAs } : {}),
      objects: { services: 0, endpointSlices: 0 }, neighbours: 0, flows: 0, affinity: 0, staleBackends: 0, dropped: {}, durationMs: 0,
    };
    if (l.problem) {
      this.log.warn({ problem: l.problem, keptAs: l.keptAs }, 'flow checkpoint refused: starting with empty conntrack and affinity tables');
    }
  }

  /** Learned neighbours from the checkpoint, on the ports (by name) that still exist. */
  savedNeighbours(portIndex: (name: string) => number | undefined): Neighbour[] {
    const out: Neighbour[] = [];
    for (const n of (this.loaded.checkpoint?.neighbours ?? []) as SavedNeighbour[]) {
      const port = portIndex(n.portName);
      if (port !== undefined) out.push({ addr: n.addr, family: n.family, port, mac: n.mac, source: 'learned' });
    }
    this.summaryData.neighbours = out.length;
    this.neighbours = out;
    return out;
  }

  /** The checkpoint's records regrouped by the worker they go to in this configuration
   * (flow-placement.ts), and what has no worker; one grouping per start. */
  private placed(p: Placement): ReturnType<typeof placeSavedFlows> {
    return this.placement ??= placeSavedFlows(this.loaded.checkpoint?.workers ?? [], p);
  }
  private placement: ReturnType<typeof placeSavedFlows> | undefined;

  /** What worker `worker` (of the configuration `p`) needs to import its saved flows itself, with
   * its table image (the flows of the same stop, how long ago that was, the restored neighbours). */
  savedFor(worker: number, p: Placement): Pick<WorkerImageInit, 'flows' | 'extraAgeMs' | 'neighbours'> {
    const c = this.loaded.checkpoint;
    const w = this.placed(p).workers.find((x) => x.worker === worker);
    return { ...(w ? { flows: w } : {}), extraAgeMs: c ? Math.max(0, Date.now() - c.savedAt) : 0, neighbours: this.neighbours };
  }

  /** Imports the saved flows into the (held) workers, each record into the worker that handles
   * its frames in the configuration `p` (flow-placement.ts) — but for the workers that resumed
   * from a table image, which imported theirs already (`images`). Never throws: a failure is logged and
   * the daemon goes on with whatever was imported. */
  async restoreFlows(dataplane: Pick<WorkerDataplane, 'importFlows'>, images: ImageStartResult[], p: Placement): Promise<void> {
    const c = this.loaded.checkpoint;
    if (!c) return;
    const downtimeMs = Math.max(0, Date.now() - c.savedAt);
    this.summaryData.savedAt = new Date(c.savedAt).toISOString();
    this.summaryData.downtimeMs = downtimeMs;
    const done = new Set(images.filter((r) => r.used).map((r) => r.worker));
    try {
      const placed = this.placed(p);
      const { failed, ...s } = await dataplane.importFlows(placed.workers.filter((w) => !done.has(w.worker)), downtimeMs, this.neighbours);
      // a worker that cannot take its flows costs only them (counted workerFailed)
      for (const f of failed ?? []) this.log.error({ worker: f.worker, error: f.error }, `the saved flows of worker ${f.worker} were not imported (the other workers' were)`);
      if (failed?.length) this.summaryData.problem = failed.map((f) => `the saved flows of worker ${f.worker} were not imported: ${f.error}`).join('; ');
      for (const r of images) if (r.flows) addImportStats(s, r.flows);
      addImportStats(s, { flows: 0, affinity: 0, staleBackends: 0, dropped: placed.dropped });
      Object.assign(this.summaryData, { flows: s.flows, affinity: s.affinity, staleBackends: s.staleBackends, dropped: s.dropped });
    } catch (e) {
      this.summaryData.problem = `importing the saved flows failed: ${(e as Error).message}`;
      this.log.error({ error: (e as Error).message }, 'importing the saved flows failed');
    }
  }

  /** Called once forwarding has resumed on every worker; `controlPlaneMs` is when the control
   * plane had restored, since the process's start. */
  restored(objects: RestoreSummary['objects'], durationMs: number, at: { controlPlaneMs: number; images: ImageStartResult[] }): void {
    const now = performance.now();   // ms since the process's start (its time origin)
    // a worker's hrtime and this thread's are one clock: its resume as ms since the process's start
    const hr = process.hrtime.bigint();
    const resumed = at.images.filter((r) => r.used && r.resumedAtNs).map((r) => now - Number(hr - BigInt(r.resumedAtNs!)) / 1e6);
    Object.assign(this.summaryData, {
      objects, durationMs, controlPlaneAfterMs: at.controlPlaneMs, readyAfterMs: Math.round(now),
      forwardingAfterMs: Math.round(resumed.length ? Math.min(...resumed) : now),
      ...(at.images.length ? { images: at.images } : {}),
    });
    const { lastCheckpoint: _, ...s } = this.summaryData;
    this.log.info(s, 'restored: forwarding');
  }

  summary(): RestoreSummary { return this.summaryData; }

  /** Called once the restored flows are in the running workers (forwarding resumed): retires the
   * checkpoint they came from, then starts the periodic checkpoint. */
  startPeriodic(dataplane: WorkerDataplane, neighbours: () => SavedNeighbour[]): void {
    this.retireRestored(dataplane, neighbours);
    if (this.periodSeconds <= 0) return;
    this.timer = setInterval(() => { void this.save(dataplane, neighbours, 'periodic'); }, this.periodSeconds * 1000);
    this.timer.unref();
  }

  /** A checkpoint is restored once. Without periodic checkpoints it is removed; with them, one of
   * the flows now replaces it at once (a crash before the first period then restores those, as a
   * crash right after any periodic checkpoint would), and removed if that write fails. Until then
   * the file stays as it was: a crash during the restore restores it again. Never throws. */
  private retireRestored(dataplane: WorkerDataplane, neighbours: () => SavedNeighbour[]): void {
    if (!this.loaded.checkpoint) return;
    const remove = () => {
      try {
        retireCheckpoint(this.stateDir);
        this.log.info({ savedAt: this.summaryData.savedAt }, 'the restored flow checkpoint is removed (a checkpoint is restored once)');
      } catch (e) {
        this.log.warn({ error: (e as Error).message }, 'the restored flow checkpoint could not be removed: a crash before the next stop restores its flows again');
      }
    };
    if (this.periodSeconds <= 0) { remove(); return; }
    void this.save(dataplane, neighbours, 'periodic', remove);
  }

  stopPeriodic(): void { if (this.timer) clearInterval(this.timer); this.timer = undefined; }

  /** The stop's checkpoint: forwarding paused on every worker (nothing moves between it and the
   * workers' stop), then the flows of those that answer written. The dataplane is in its stop
   * mode (`stopping()`, called first: a periodic save in flight is bounded too), so a hung worker
   * is waited for once, at the pause, and not asked for its flows. Never throws; resolves with
   * whether the checkpoint was written. */
  async saveAtStop(dataplane: Pick<WorkerDataplane, 'stopping' | 'setForwarding' | 'exportFlows'>, neighbours: () => SavedNeighbour[]): Promise<boolean> {
    dataplane.stopping();
    this.stopPeriodic();
    try { await dataplane.setForwarding(false); } catch (e) { this.log.warn({ error: (e as Error).message }, 'pausing forwarding failed'); }
    return this.save(dataplane, neighbours, 'stop');
  }

  /** Exports every worker's tables and writes the checkpoint. One at a time; never throws.
   * Resolves with whether the checkpoint was written (a stop's table images go only with it).
   * `ifFailed` runs when it was not, before the next save can start. */
  async save(dataplane: Pick<WorkerDataplane, 'exportFlows'>, neighbours: () => SavedNeighbour[], reason: Checkpoint['reason'], ifFailed?: () => void): Promise<boolean> {
    while (this.saving) await this.saving;
    this.saving = (async () => {
      const t0 = performance.now();
      try {
        // a worker that died or hangs costs its own flows, not the others' (the next start
        // restores what the live workers gave)
        const { workers, failed } = await dataplane.exportFlows();
        for (const f of failed) this.log.error({ reason, worker: f.worker, error: f.error }, `flow checkpoint: worker ${f.worker} gave no flows (they are not saved; the other workers' are)`);
        if (!workers.length) throw new Error(`no worker gave its flows (${failed.map((f) => `worker ${f.worker}: ${f.error}`).join('; ')})`);
        const c: Checkpoint = { savedAt: Date.now(), reason, workers, neighbours: neighbours() };
        const bytes = writeCheckpoint(this.stateDir, c);
        const flows = workers.reduce((n, w) => n + w.flows.length, 0) / L.CT_SIZE;
        const affinity = workers.reduce((n, w) => n + w.affinity.length, 0) / L.AFF_SIZE;
        const ms = Math.round(performance.now() - t0);
        const lost = failed.length ? { lostWorkers: failed } : {};
        this.summaryData.lastCheckpoint = { at: new Date(c.savedAt).toISOString(), reason, flows, affinity, bytes, ms, ...lost };
        this.log[reason === 'stop' || failed.length ? 'info' : 'debug']({ reason, flows, affinity, bytes, ms, ...lost }, 'flow checkpoint written');
        return true;
      } catch (e) {
        this.log.error({ reason, error: (e as Error).message }, 'writing the flow checkpoint failed');
        ifFailed?.();
        return false;
      }
    })();
    try { return await this.saving; } finally { this.saving = undefined; }
  }
}
