// The interface claims (src/daemon/interface-claim.ts) on their own, in a run directory of the test's
// (WDP_RUN_DIR) and an ifindex no interface has: another state directory's claim is refused naming
// its holder, in this process or another; one state directory's claims are shared; a killed
// holder's claim is taken; a release removes the files; claimedElsewhere sees another process's.
// test/daemon-port-claim.test.js has the daemons' side of it.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimInterface, claimedElsewhere, InterfaceInUseError } from '../dist/src/daemon/interface-claim.js';

const MODULE = new URL('../dist/src/daemon/interface-claim.js', import.meta.url).href;
const IFINDEX = 987654;   // (no interface: the claim is on the pair, whatever has it)

let dir;
test.before(() => { dir = mkdtempSync(join(tmpdir(), 'wdp-claim-')); process.env.WDP_RUN_DIR = dir; });
test.after.always(() => { rmSync(dir, { recursive: true, force: true }); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A process holding the claim for `ifindex` (state directory /state/child) until killed. */
async function holder(ifindex) {
  const c = spawn(process.execPath, ['--input-type=module', '-e',
    `const m = await import(${JSON.stringify(MODULE)}); m.claimInterface('x0', undefined, ${ifindex}, '/state/child', 'up'); console.log('held'); setInterval(() => {}, 1000);`],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WDP_RUN_DIR: dir } });
  let out = '';
  c.stdout.on('data', (d) => { out += d; });
  c.stderr.on('data', (d) => { out += d; });
  for (let i = 0; i < 200 && !out.includes('held') && c.exitCode === null; i++) await sleep(50);
  if (!out.includes('held')) throw new Error(`the holder did not take the claim: ${out}`);
  return c;
}

test.serial('another state directory in this process is refused; the same one shares the claim; a release removes the files', (t) => {
  const a = claimInterface('x0', undefined, IFINDEX, '/state/a', 'up');
  t.is(a.unclaimed, undefined);
  const e = t.throws(() => claimInterface('x0', undefined, IFINDEX, '/state/b', 'uplink'), { instanceOf: InterfaceInUseError });
  t.regex(e.message, new RegExp(`interface "x0" is a port of another running wdp \\(pid ${process.pid} in its PID namespace, state directory /state/a, its port "up"\\)`));
  const a2 = claimInterface('x0', undefined, IFINDEX, '/state/a', 'up');
  a.release();
  t.throws(() => claimInterface('x0', undefined, IFINDEX, '/state/b', 'uplink'), { instanceOf: InterfaceInUseError }, 'still held by the other claim of /state/a');
  a2.release();
  const b = claimInterface('x0', undefined, IFINDEX, '/state/b', 'uplink');
  t.true(readdirSync(join(dir, 'interfaces')).some((f) => f.endsWith(`-if${IFINDEX}.lock`)));
  b.release();
  t.deepEqual(readdirSync(join(dir, 'interfaces')).filter((f) => f.includes(`-if${IFINDEX}.`)), [], 'lock and holder files removed');
});

test.serial('a claim another process holds is refused naming it; once that process is killed, it is taken', async (t) => {
  const c = await holder(IFINDEX + 1);
  try {
    const e = t.throws(() => claimInterface('x0', undefined, IFINDEX + 1, '/state/a', 'up'), { instanceOf: InterfaceInUseError });
    t.regex(e.message, new RegExp(`\\(pid ${c.pid} in its PID namespace, state directory /state/child, its port "up"\\)`));
    t.is(e.holderPid, c.pid);
    t.is(claimedElsewhere(undefined, IFINDEX + 1)?.pid, c.pid, 'claimedElsewhere names it');
  } finally {
    c.kill('SIGKILL');
    await new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)));
  }
  t.is(claimedElsewhere(undefined, IFINDEX + 1), null, 'a dead holder\'s claim is nobody\'s');
  t.true(existsSync(join(dir, 'interfaces')), 'its files stay');
  const a = claimInterface('x0', undefined, IFINDEX + 1, '/state/a', 'up');
  t.is(a.unclaimed, undefined);
  t.is(claimedElsewhere(undefined, IFINDEX + 1), null, 'this process\'s own claim is not another wdp\'s');
  a.release();
});

test.serial('a run directory that cannot be made: the claim goes on unclaimed, saying why', (t) => {
  writeFileSync(join(dir, 'a-file'), '');
  // a directory under a file (ENOTDIR), one under /proc (ENOENT for a parent that exists: Node's
  // recursive mkdir would loop there for ever)
  for (const run of [join(dir, 'a-file', 'run'), '/proc/wdp-cannot-be-here/run']) {
    process.env.WDP_RUN_DIR = run;
    try {
      const c = claimInterface('x0', undefined, IFINDEX + 2, '/state/a', 'up');
      t.true((c.unclaimed ?? '').includes(run), c.unclaimed);
      c.release();
    } finally { process.env.WDP_RUN_DIR = dir; }
  }
});
