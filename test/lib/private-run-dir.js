// A run directory (WDP_RUN_DIR: the interfaces' claims and hand-back records,
// src/daemon/interface-claim.ts, src/daemon/interface-record.ts) of the test file's own, for the
// port managers and daemons it builds in this process, removed after its tests: a port manager a
// test never releases (or a failed test) leaves its claims and records there, not in the node's
// /run/wdp. (A test file's tests share it, as the daemons of one node share /run/wdp.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function privateRunDir(test) {
  let dir;
  test.before(() => { dir = mkdtempSync(join(tmpdir(), 'wdp-run-')); process.env.WDP_RUN_DIR = dir; });
  test.after.always(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });
}
