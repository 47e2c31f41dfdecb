// Table image files: each forwarding worker's table image (src/core/table-image.ts) in the state
// directory, tables.<worker>.img, so that a restart forwards from the tables as they were while
// the control plane restores (docs/running.md, "Restarts").
//
// When an image is trusted — every one of these, else the start takes the normal path and logs
// why (never a crash, never other tables):
//   * written at a clean stop (SIGTERM: `stop()`), after the last commit: the API and the node
//     programming are closed first, so nothing commits after the revision it records;
//   * the store's revision at start equals the image's (StateStore.peekRevision: one row; every
//     commit changes it, and a store created afresh has another id);
//   * the compile's inputs outside the store are the same: the daemon's own NodeConfig as computed
//     at start (node addresses, neighbours, routes, ports and their MACs, masquerade, hairpin,
//     CIDRs) and the ports (imageInputsHash);
//   * the same build of the forwarding core (module CRC), the same layout constants, the same
//     worker index and worker count, region offsets this build gives the image's capacities, and
//     the file's CRC.
// Each worker reads its file and deletes it at once, used or not: an image is used at most once,
// so after a crash (SIGKILL, power loss: no image written) the next start never finds one from an
// earlier stop, even when no apply happened in between. Only the next clean stop writes a new one.
import { existsSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Core } from '../core/host.js';
import { decodeImage, ImageError, imageProblem, ImageResume, type CatchUpResult } from '../core/table-image.js';
import { importFlows, type FlowRecords, type ImportStats, type PortRef } from '../core/flow-export.js';
import type { Neighbour } from './l2.js';

const cpuMsNow = (): number => { const u = process.cpuUsage(); return Math.round((u.user + u.system) / 1000); };

export const imageFile = (worker: number): string => `tables.${worker}.img`;
const IMAGE_NAME = /^tables\.(\d+)\.img(\.tmp)?$/;

/** What a worker is told at start: where its image is, what it must match, and the flows saved at
 * the same stop (imported with the image's ids when it is used). */
export interface WorkerImageInit {
  dir: string;
  revision: string | null;
  inputsHash: string;
  flows?: FlowRecords;
  extraAgeMs: number;
  /** The learned neighbours restored from the checkpoint (re-verified like learned ones). */
  neighbours: Neighbour[];
}

/** What became of a worker's image at start (RestoreSummary.image, per worker). */
export interface ImageStartResult {
  worker: number;
  used: boolean;
  /** Why it was not used ("none": no file). */
  problem?: string;
  /** Reading, checking and loading it and importing the flows, in the worker. */
  loadMs?: number;
  bytes?: number;
  flows?: ImportStats;
  /** process.hrtime of the moment the worker resumed forwarding from it (ns, as a string). */
  resumedAtNs?: string;
  /** CPU time of the whole process (every thread) until then, ms: what forwarding cost to reach,
   * which on a loaded machine says more than the wall time. */
  cpuMs?: number;
  /** Filled once the control plane caught up (its first apply over the image). */
  catchUp?: CatchUpResult;
}

/** A digest of the compile's inputs outside the store: the daemon's NodeConfig and its ports.
 * Neighbours are sorted (their order depends on when each was learned, not on what they are). */
export function imageInputsHash(nodeConfig: Record<string, unknown>, ports: Array<{ index: number; name: string; mac: string; type: string; role: string; ifname: string }>): string {
  const spec = { ...(nodeConfig.spec as Record<string, unknown>) };
  if (Array.isArray(spec.neighbours)) spec.neighbours = [...spec.neighbours].sort((a, b) => String(a.address).localeCompare(String(b.address)));
  const p = ports.map((x) => [x.index, x.name, x.mac, x.type, x.role, x.ifname]).sort((a, b) => (a[0] as number) - (b[0] as number));
  return createHash('sha256').update(JSON.stringify({ node: { ...nodeConfig, spec }, ports: p })).digest('hex');
}

/** Writes worker `worker`'s image atomically (mode 0600); returns its size. */
export function writeImageFile(dir: string, worker: number, buf: Uint8Array): number {
  return writeFileAtomic(dir, imageFile(worker), buf);
}

/** Deletes the images (and unfinished writes) of workers this configuration does not have. */
export function removeStaleImages(dir: string, workers: number): void {
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    const m = IMAGE_NAME.exec(n);
    if (m && (m[2] || Number(m[1]) >= workers)) rmSync(join(dir, n), { force: true });
  }
}

/** In the worker, before it forwards: reads (and deletes) its image, checks it, loads it into
 * `core` and imports the saved flows with its ids. Never throws: anything wrong is the result's
 * problem and `core` is untouched (the normal path follows). */
export function startFromImage(core: Core, worker: number, workers: number, init: WorkerImageInit, ports: PortRef[]): { resume?: ImageResume; result: ImageStartResult } {
  const t0 = performance.now();
  const file = join(init.dir, imageFile(worker));
  if (!existsSync(file)) return { result: { worker, used: false, problem: 'none' } };
  let buf: Buffer;
  try { buf = readFileSync(file); } catch (e) { return { result: { worker, used: false, problem: `cannot read ${file}: ${(e as Error).message}` } }; }
  finally { try { unlinkSync(file); } catch { /* gone already */ } }
  let resume: ImageResume;
  try {
    const { meta, payload } = decodeImage(buf);
    const problem = imageProblem(meta, { moduleHash: core.moduleHash, worker, workers, revision: init.revision, inputsHash: init.inputsHash });
    if (problem) return { result: { worker, used: false, problem, bytes: buf.length } };
    resume = new ImageResume(core, meta, payload);
  } catch (e) {
    return { result: { worker, used: false, problem: e instanceof ImageError ? e.message : `cannot load: ${(e as Error).message}`, bytes: buf.length } };
  }
  const flows = init.flows ? importFlows(core, init.flows, ports, init.extraAgeMs, core.clockNow(), resume.ids()) : undefined;
  return {
    resume,
    result: { worker, used: true, bytes: buf.length, loadMs: Math.round(performance.now() - t0), ...(flows ? { flows } : {}), resumedAtNs: String(process.hrtime.bigint()), cpuMs: cpuMsNow() },
  };
}
