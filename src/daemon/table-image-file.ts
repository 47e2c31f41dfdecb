// Table image files: each forwarding worker's table image (src/core/table-image.ts) in the state
// directory, tables.<worker>.img, so that a restart forwards from the tables as they were while
// the control plane restores (docs/running.md, "Restarts").
//
// When an image is trusted — every one of these, else the start takes the normal path and logs
// why (never a crash, never other tables):
//   * written at a clean stop (SIGTERM: `stop()`), after the last commit: the API and the node
//     programming are closed first, so nothing commits after the revision it records — and only
//     when that stop's flow checkpoint was written (its flows are imported with the image's ids);
//   * the store's revision at start equals the image's (StateStore.peek: one row; every
//     commit changes it, and a store created afresh has another id), and so do the size and
//     modification time of the store's files (a write by another tool: storeRevisionStamp) and
//     of the flow checkpoint (the image's flows are that stop's; a checkpoint restored since is
//     retired, a later run's rewritten);
//   * the compile's inputs outside the store are the same: the daemon's own NodeConfig as computed
//     at start (node addresses, neighbours, routes, ports and their MACs, masquerade, hairpin,
//     CIDRs) and the ports, runtime ones included (opened at start under their saved indexes)
//     (imageInputsHash). The cluster's facts in it (the Node's addresses, pod CIDRs, zone and node
//     IPs; the ServiceCIDRs' CIDRs) are those in force: at a start that does not read the Node
//     (node.addresses configured, or the API server away) and until the watcher lists the
//     ServiceCIDRs, those saved as they changed (node-facts.json, node-facts-file.ts; from a state
//     directory without it, the NodeConfig saved at the store's revision: StateStore.peek), which
//     are the ones the stop wrote the image with;
//   * the tables were never in doubt: after an apply that failed at the dataplane (its undo may
//     have failed, leaving them apart from the store) no image is written at all;
//   * the same build of the forwarding core (module CRC), the same layout constants, the same
//     worker index and worker count, region offsets this build gives the image's capacities, and
//     the file's CRC.
// Each worker takes its file at once (renamed, deleted once read; a damaged one kept aside), used or not: an image is used at most once,
// so after a crash (SIGKILL: no image written) the next start never finds one from an earlier
// stop, even when no apply happened in between. Only the next clean stop writes a new one. (An
// image a power loss brings back — its unlink not yet durable — is refused unless the store and
// the checkpoint are also as that stop left them, and then it describes them exactly.)
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Core } from '../core/host.js';
import { decodeImageHead, IMAGE_FLOWS_MARK, IMAGE_PREFIX_BYTES, imageMetaBytes, ImageError, imageProblem, ImageResume, type CatchUpResult } from '../core/table-image.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import { TABLE_REGIONS } from '../core/table-writer.js';
import { importFlows, type FlowRecords, type ImportStats, type PortRef } from '../core/flow-export.js';
import type { Neighbour } from './l2.js';

const cpuMsNow = (): number => { const u = process.cpuUsage(); return Math.round((u.user + u.system) / 1000); };

export const imageFile = (worker: number): string => `tables.${worker}.img`;
// `.tmp`: a write a crash cut short; `.loading`: an image a start took (a crash cut its load short)
const IMAGE_NAME = /^tables\.(\d+)\.img(\.tmp|\.loading)?$/;
const LOADING = '.loading';

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
  /** Why it was not used ("none": no file); when used, what went wrong with its saved flows. */
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

/** The saved state as an image records it: the store's revision row (every wdp commit changes
 * it) and the size and modification time of the store's files, which any other writer changes too
 * (the `sqlite3` tool, a restored backup) — then, after IMAGE_FLOWS_MARK, those of the flow
 * checkpoint: the image is used only with the checkpoint of its own stop, whose flows name its
 * ids (one restored and retired since, or rewritten by a later run, names another process's).
 * Taken with the store closed: at a stop after the API closed it and the checkpoint was written,
 * at a start after the checkpoint was read and before anything opens the store. null without a
 * revision. */
export function storeRevisionStamp(dir: string, readRevision: () => string | null): string | null {
  // the files first: reading the revision leaves an empty WAL behind (SQLite, read-only), which
  // counts as none
  const stamp = ['state.db', 'state.db-wal', CHECKPOINT_FILE].map((f) => {
    try { const st = statSync(join(dir, f), { bigint: true }); return st.size ? `${st.size}/${st.mtimeNs}` : '-'; } catch { return '-'; }
  });
  const revision = readRevision();
  return revision === null ? null : `${revision}@${stamp[0]},${stamp[1]}${IMAGE_FLOWS_MARK}${stamp[2]}`;
}

/** A digest of the compile's inputs outside the store: the daemon's NodeConfig and its ports,
 * as "<node digest>/<ports digest>" (a refusal says which changed: imageProblem). Neighbours are
 * sorted (their order depends on when each was learned, not on what they are). */
export function imageInputsHash(nodeConfig: Record<string, unknown>, ports: Array<{ index: number; name: string; mac: string; type: string; role: string; ifname: string }>): string {
  const spec = { ...(nodeConfig.spec as Record<string, unknown>) };
  if (Array.isArray(spec.neighbours)) spec.neighbours = [...spec.neighbours].sort((a, b) => String(a.address).localeCompare(String(b.address)));
  const p = ports.map((x) => [x.index, x.name, x.mac, x.type, x.role, x.ifname]).sort((a, b) => (a[0] as number) - (b[0] as number));
  const digest = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 32);
  return `${digest({ ...nodeConfig, spec })}/${digest(p)}`;
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

/** Removes the damaged images kept aside for `worker` (one is kept: the newest; an image is a
 * table set's size, and a fault that damages every stop's image must not fill the directory). */
function removeRejected(dir: string, worker: number): void {
  const prefix = `${imageFile(worker)}.rejected-`;
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) if (n.startsWith(prefix)) rmSync(join(dir, n), { force: true });
}

/** Fills `into` from `fd` at `pos`; throws ImageError when the file ends first. */
function readAt<T extends Uint8Array>(fd: number, into: T, pos: number): T {
  for (let off = 0; off < into.length;) {
    const n = readSync(fd, into, off, into.length - off, pos + off);
    if (n === 0) throw new ImageError(`truncated: the file ends at ${pos + off} bytes`);
    off += n;
  }
  return into;
}

/** The CRC-32 of `len` bytes of `fd` from `pos`, continuing `crc`, read through one fixed
 * buffer: the whole image is verified before anything its header sizes is allocated. */
function crcOf(fd: number, pos: number, len: number, crc: number): number {
  const buf = Buffer.allocUnsafe(Math.min(CRC_CHUNK, Math.max(len, 1)));
  for (let done = 0; done < len;) {
    const n = Math.min(buf.length, len - done);
    readAt(fd, buf.subarray(0, n), pos + done);
    crc = crc32(buf.subarray(0, n), crc);
    done += n;
  }
  return crc;
}
const CRC_CHUNK = 1 << 20;

/** In the worker, before it forwards: takes its image (renamed to `.loading` at once: whatever
 * happens next, it is never read as an image again), checks it, loads it into `core` and imports
 * the saved flows with its ids. Never throws: anything wrong before the load is the result's
 * problem and `core` is untouched (the normal path follows); a flow import that fails after it
 * leaves the image's tables without flows and says so in the problem. A damaged image (its
 * framing, metadata or CRC) is kept aside as `tables.<worker>.img.rejected-<time>` for inspection,
 * as a refused checkpoint is, replacing the one kept before for that worker; one refused for what it describes (another revision, config, build)
 * is deleted. The whole file is checked (length, CRC) before the set its capacities size is
 * allocated: a damaged header with plausible capacities costs a read, not memory.
 * `unopened`: saved runtime ports this worker was to open at start and could not (their pod went
 * away while wdp was down): the daemon keyed the image with them, but its tables name ports this
 * worker does not have, so it is refused like any other change of the ports. */
export function startFromImage(core: Core, worker: number, workers: number, init: WorkerImageInit, ports: PortRef[], unopened: string[] = []): { resume?: ImageResume; result: ImageStartResult } {
  const t0 = performance.now();
  const file = join(init.dir, imageFile(worker)), taken = `${file}${LOADING}`;
  if (!existsSync(file)) return { result: { worker, used: false, problem: 'none' } };
  let fd: number;
  try { renameSync(file, taken); fd = openSync(taken, 'r'); } catch (e) {
    for (const f of [file, taken]) try { unlinkSync(f); } catch { /* cannot: its revision no longer matches after the next commit */ }
    return { result: { worker, used: false, problem: `cannot read ${file}: ${(e as Error).message}` } };
  }
  let resume: ImageResume, size = 0, damaged = false;
  try {
    size = fstatSync(fd).size;
    // the head first: a refused image costs its metadata, not its 19 MB (at 10k x 10)
    const prefix = readAt(fd, Buffer.allocUnsafe(Math.min(IMAGE_PREFIX_BYTES, size)), 0);
    damaged = true;
    const head = decodeImageHead(Buffer.concat([prefix, readAt(fd, Buffer.allocUnsafe(Math.min(imageMetaBytes(prefix), size)), prefix.length)]), size);
    damaged = false;
    const problem = imageProblem(head.meta, { moduleHash: core.moduleHash, worker, workers, revision: init.revision, inputsHash: init.inputsHash }) ??
      (unopened.length ? `the ports changed since it was written (saved runtime port ${unopened.join(', ')} could not be opened: its pod went away while wdp was down?)` : null);
    if (problem) return { result: { worker, used: false, problem, bytes: size } };
    damaged = true;
    if (crcOf(fd, head.payloadAt, size - head.payloadAt, crc32(head.metaBytes)) !== head.crc) throw new ImageError('checksum mismatch (corrupt)');
    damaged = false;
    // checked whole: the payload straight into the set it becomes (no second copy)
    resume = new ImageResume(core, head.meta, (u8, base, meta) => {
      let at = head.payloadAt;
      for (let i = 0; i < TABLE_REGIONS; i++) {
        readAt(fd, u8.subarray(base + meta.offsets[i], base + meta.offsets[i] + meta.lengths[i]), at);
        at += meta.lengths[i];
      }
    });
  } catch (e) {
    let problem = e instanceof ImageError ? e.message : `cannot load: ${(e as Error).message}`;
    if (damaged) {
      const keptAs = `${file}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      removeRejected(init.dir, worker);
      try { renameSync(taken, keptAs); problem += `; kept as ${keptAs}`; } catch { /* removed below */ }
    }
    return { result: { worker, used: false, problem, bytes: size } };
  } finally {
    closeSync(fd);
    try { unlinkSync(taken); } catch { /* kept aside, or gone */ }
  }
  // the tables are in place from here on: a failing flow import leaves them and says so (the
  // checkpoint's format was checked when it was read, so this is not expected)
  let flows: ImportStats | undefined, flowsProblem: string | undefined;
  try {
    flows = init.flows ? importFlows(core, init.flows, ports, init.extraAgeMs, core.clockNow(), resume.ids()) : undefined;
  } catch (e) { flowsProblem = `the saved flows were not imported: ${(e as Error).message}`; }
  return {
    resume,
    result: {
      worker, used: true, bytes: size, loadMs: Math.round(performance.now() - t0), ...(flows ? { flows } : {}), ...(flowsProblem ? { problem: flowsProblem } : {}),
      resumedAtNs: String(process.hrtime.bigint()), cpuMs: cpuMsNow(),
    },
  };
}
