// The desired-state format wdp wrote before the SQLite store (src/state/store.ts): state.json
// (+ state.json.bak), each a whole-state snapshot with a sha256 of its payload. Read only, to
// migrate it: the store opens this once when it finds no state.db, and keeps the files.
//
// A bad state.json is never deleted: it is renamed to state.json.corrupt-<time> and the backup is
// used; the problem is reported to the caller, who logs it and shows it in the API.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { StateError, type DesiredState } from './types.js';

export const STATE_FILE = 'state.json';
export const STATE_FORMAT = 'wdp-desired-state';
export const STATE_VERSION = 1;

export interface LegacyLoad {
  state: DesiredState | null;      // null: no state file
  source: 'primary' | 'backup' | 'none';
  problems: string[];              // what was wrong and what was done about it
}

function digest(payload: string): string { return createHash('sha256').update(payload).digest('hex'); }

export class LegacyStateFile {
  readonly primary: string;
  readonly backup: string;

  constructor(readonly dir: string) {
    this.primary = join(dir, STATE_FILE);
    this.backup = this.primary + '.bak';
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
  load(check: (s: DesiredState) => void = () => {}): LegacyLoad {
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
}
