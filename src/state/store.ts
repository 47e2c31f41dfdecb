// Desired-state persistence: the Services, EndpointSlices and node config exactly as applied.
//
// Write path (after every successful apply): state.json.tmp is written and fsynced, the current
// state.json becomes state.json.bak, the tmp file is renamed over state.json, the directory is
// fsynced. A crash at any point leaves at least one complete file: the old primary, the backup,
// or the new primary. Cost: one full serialisation per apply (≈ a few MB at 10k services) — the
// price of never losing an acknowledged apply.
//
// Read path: state.json is checked (JSON, format marker, sha256 of the payload, and the caller's
// content validation). A bad primary is never deleted: it is renamed to state.json.corrupt-<time>
// and the backup is used; the problem is reported to the caller, who logs it and shows it in the API.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const STATE_FILE = 'state.json';
export const STATE_FORMAT = 'wdp-desired-state';
export const STATE_VERSION = 1;

export interface DesiredState {
  services: unknown[];
  endpointSlices: unknown[];
  node: unknown | null;
}

export interface LoadResult {
  state: DesiredState | null;      // null: nothing saved yet
  source: 'primary' | 'backup' | 'none';
  problems: string[];              // what was wrong and what was done about it
}

export class StateError extends Error {
  constructor(message: string) { super(message); this.name = 'StateError'; }
}

function digest(payload: string): string { return createHash('sha256').update(payload).digest('hex'); }

export class StateStore {
  readonly primary: string;
  readonly backup: string;
  private readonly tmp: string;

  constructor(readonly dir: string) {
    this.primary = join(dir, STATE_FILE);
    this.backup = this.primary + '.bak';
    this.tmp = this.primary + '.tmp';
  }

  /** Parses and checks one file; returns the state or throws with the reason. */
  private readFile(path: string, check: (s: DesiredState) => void): DesiredState {
    let text: string;
    try { text = readFileSync(path, 'utf8'); } catch (e) { throw new StateError(`cannot read ${path}: ${(e as Error).message}`); }
    let doc: { format?: unknown; version?: unknown; sha256?: unknown; state?: unknown };
    try { doc = JSON.parse(text); } catch (e) { throw new StateError(`${path} is not valid JSON (truncated or corrupt): ${(e as Error).message}`); }
    if (typeof doc !== 'object' || doc === null || doc.format !== STATE_FORMAT) throw new StateError(`${path} is not a wdp state file (format marker missing)`);
    if (doc.version !== STATE_VERSION) throw new StateError(`${path} has state version ${String(doc.version)}; this wdp reads version ${STATE_VERSION}`);
    const st = doc.state as DesiredState;
    if (typeof st !== 'object' || st === null || !Array.isArray(st.services) || !Array.isArray(st.endpointSlices) || !('node' in st))
      throw new StateError(`${path}: state payload is malformed`);
    if (doc.sha256 !== digest(JSON.stringify(st))) throw new StateError(`${path}: checksum mismatch (file was modified or partially written)`);
    try { check(st); } catch (e) { throw new StateError(`${path}: content does not validate: ${(e as Error).message}`); }
    return st;
  }

  /** Loads the last good state. `check` validates content (throws to reject a file). Throws
   * StateError when a state file exists but neither it nor the backup is usable — starting empty
   * would silently drop every service. */
  load(check: (s: DesiredState) => void = () => {}): LoadResult {
    const problems: string[] = [];
    const hasPrimary = existsSync(this.primary), hasBackup = existsSync(this.backup);
    if (!hasPrimary && !hasBackup) return { state: null, source: 'none', problems };
    if (hasPrimary) {
      try { return { state: this.readFile(this.primary, check), source: 'primary', problems }; } catch (e) {
        const kept = `${this.primary}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        try { renameSync(this.primary, kept); problems.push(`${(e as Error).message}; kept it as ${kept}`); }
        catch { problems.push((e as Error).message); }
      }
    } else {
      problems.push(`${this.primary} is missing (interrupted save?)`);
    }
    if (!hasBackup) throw new StateError(`${problems.join('; ')}; no backup (${this.backup}) to restore from`);
    try {
      const st = this.readFile(this.backup, check);
      problems.push(`restored the previous good state from ${this.backup}`);
      return { state: st, source: 'backup', problems };
    } catch (e) {
      throw new StateError(`${problems.join('; ')}; backup unusable too: ${(e as Error).message}`);
    }
  }

  save(state: DesiredState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const payload = JSON.stringify(state);
    const text = `{"format":"${STATE_FORMAT}","version":${STATE_VERSION},"savedAt":"${new Date().toISOString()}","sha256":"${digest(payload)}","state":${payload}}\n`;
    const fd = openSync(this.tmp, 'w', 0o600);
    try {
      const buf = Buffer.from(text);
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally { closeSync(fd); }
    if (existsSync(this.primary)) renameSync(this.primary, this.backup);
    renameSync(this.tmp, this.primary);
    try { const d = openSync(this.dir, 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch { /* directory fsync unsupported: best effort */ }
  }
}
