// `wdp start` as a process of its own in a test's network namespace: its config written to a file
// in `dir`, up once its control API listens (90 s at most, else an error with its output), and
// stopped with a signal, bounded. `prefix`: a command the daemon is started through (it must exec
// the daemon, so that signals reach it). Its run directory (WDP_RUN_DIR: the interfaces' claims and
// hand-back records, src/daemon/interface-claim.ts) is `runDir`, by default `<dir>/run`: private
// to the test, which removes `dir` — never the node's /run/wdp, where a killed test daemon's files
// would stay; daemons started with the same `dir` share it, as the daemons of one node do.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { within } from './bounded-wait.js';
import { childDone } from './child-done.js';

const WDP = new URL('../../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The run directory the daemons of a test whose directory is `dir` use. */
export const runDirOf = (dir) => join(dir, 'run');

/** The argv of `wdp start --config <file>` run with run directory `runDir`, for a test that
 * runs it otherwise (lab.execAsync: a start that must fail). */
export function wdpStartArgv(file, runDir) {
  return ['env', `WDP_RUN_DIR=${runDir}`, process.execPath, WDP, 'start', '--config', file];
}

export async function startWdp(lab, ns, dir, config, name = 'wdp.json', { prefix = [], runDir = runDirOf(dir) } = {}) {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config));
  const argv = [...prefix, process.execPath, WDP, 'start', '--config', file];
  const child = lab.spawn(ns, argv[0], argv.slice(1), { cwd: ROOT, env: { ...process.env, WDP_RUN_DIR: runDir } });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  // (its log read after the stop: the end once the output pipes are drained)
  const exited = childDone(child);
  for (let i = 0; i < 900 && !/control API listening/.test(out) && child.exitCode === null; i++) await sleep(100);
  if (!/control API listening/.test(out)) throw new Error(`the daemon did not come up:\n${out.slice(-3000)}`);
  return { child, exited, log: () => out };
}

/** Signals the daemon and waits for its exit ({ code, signal }), or { code: 'timeout' } after 60 s. */
export async function stopWdp(d, signal = 'SIGTERM') {
  d.child.kill(signal);
  return within(d.exited, 60_000, () => ({ code: 'timeout' }));
}
