// The disk under the state directory failing its reads (EIO) after the kernel evicted a page of
// a memory-mapped file of the store. A read of an evicted page of a shared file mapping that the
// disk cannot serve is not an error a system call returns: the kernel kills the process with
// SIGBUS — for the daemon, all forwarding with it.
//
// Which of the store's files can be mapped: only SQLite's wal-index, state.db-shm (the unix VFS maps
// it shared whenever a WAL database is opened without locking_mode=EXCLUSIVE set first; with it
// the index lives in the connection's heap). The database file is not mapped (better-sqlite3's
// SQLite is built with SQLITE_DEFAULT_MMAP_SIZE=0, and the store never raises mmap_size), nor are
// the table images or the flow checkpoint (read with read(2)). The test reads /proc/<pid>/maps to
// check that.
//
// How the disk is made to fail, only inside what the test makes: ext4 (4 KiB blocks) on a loop
// device over an image file, mounted in a mount namespace of its own; the process doing the
// writes is put in a memory cgroup of its own (v1 `memory`, or v2 with the memory controller);
// after a few commits everything is written back (`sync`), the image is cut to 1 MiB and the loop
// device's capacity set to that (`losetup -c`: every read past it fails with EIO, as a dead disk's
// do), and the cgroup's page cache is reclaimed (v1 memory.force_empty, v2 memory.reclaim),
// evicting the clean, mapped index pages. The next access to the index then needs a read.
//
// With the store's connections sharing the mapped index (before its writing connection took
// locking_mode=EXCLUSIVE), the commit after the failure killed the process with SIGBUS (exit 135).
// Now the store maps no file once open, and the commit is refused with an I/O error. The same is
// shown on a bare connection: with locking_mode=EXCLUSIVE set before WAL mode nothing is mapped.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { rootReason } from './lib/root-gate.js';
import { ChaosRig, loopWorks, sleep } from './lib/chaos.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STORE = new URL('../dist/src/state/store.js', import.meta.url).pathname;
const SQLITE = new URL('../node_modules/better-sqlite3/lib/index.js', import.meta.url).pathname;

/** The memory cgroup to make (v1 `memory` hierarchy, or v2 with the memory controller), and how
 * to reclaim its page cache; null when neither is here. */
function memoryCgroup(name) {
  if (existsSync('/sys/fs/cgroup/memory/memory.force_empty')) return { dir: `/sys/fs/cgroup/memory/${name}`, reclaim: ['memory.force_empty', '0'] };
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      const ctl = spawnSync('cat', [`${root}/cgroup.subtree_control`], { encoding: 'utf8' }).stdout ?? '';
      if (/\bmemory\b/.test(ctl) && existsSync(`${root}/cgroup.procs`)) return { dir: `${root}/${name}`, reclaim: ['memory.reclaim', String(256 << 20)] };
    } catch { /* not here */ }
  }
  return null;
}

const why = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'needs root on Linux';
  for (const tool of ['unshare', 'losetup', 'mkfs.ext4', 'truncate', 'sync', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool}`;
  }
  if (spawnSync('losetup', ['-f']).status !== 0) return 'no loop devices here';
  if (!memoryCgroup('probe')) return 'no memory cgroup controller (v1 memory or v2 memory.reclaim) to evict the mapped pages with';
  return '';
})();

// The process under test: puts itself in the cgroup, writes, then fails the disk and evicts its
// page cache, and commits again. Prints one JSON line: the mappings of files of the state
// directory before the failure, and what the commit after it did.
const CHILD = `
import fs from 'node:fs';
import { execSync } from 'node:child_process';
const [mode, dir, img, loop, cg, reclaimFile, reclaimValue] = process.argv.slice(2);
fs.writeFileSync(cg + '/cgroup.procs', String(process.pid));
const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(dir)).map((l) => l.split(/\\s+/).slice(1, 2).concat(l.split(/\\s+/).slice(5)).join(' '));
let write;
if (mode === 'store') {
  const { StateStore } = await import(${JSON.stringify(STORE)});
  const st = new StateStore(dir);
  st.open();
  const svc = (i, n) => ({ kind: 'Service', key: 'd/s' + i, raw: { metadata: { name: 's' + i, namespace: 'd' }, spec: { n } } });
  write = (i) => st.commit({ upsert: [svc(i, i)], remove: [] });
} else {
  const { default: Database } = await import(${JSON.stringify(SQLITE)});
  fs.mkdirSync(dir, { recursive: true });
  const db = new Database(dir + '/state.db');
  db.pragma('locking_mode = EXCLUSIVE'); // (before WAL mode: the wal-index in this connection's heap)
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
  const put = db.prepare('INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)');
  write = (i) => put.run(i, 'x'.repeat(100));
}
for (let i = 0; i < 5; i++) write(i);
console.log(JSON.stringify({ mapped: maps() })); // (before the failure: a killed process prints nothing after)
execSync('sync');
execSync('truncate -s 1M ' + img + ' && losetup -c ' + loop);
try { fs.writeFileSync(cg + '/' + reclaimFile, reclaimValue); } catch { /* reclaimed what it could */ }
let error = null;
try { write(1); } catch (e) { error = (e.code ? e.code + ': ' : '') + e.message; }
console.log(JSON.stringify({ error }));
process.exit(0);
`;

let runs = 0;
function run(t, mode) {
  const work = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-evict-`));
  const name = `wdp-t${process.pid}-evict-${mode}-${runs++}`;
  const cg = memoryCgroup(name);
  mkdirSync(cg.dir);
  try {
    writeFileSync(join(work, 'child.mjs'), CHILD);
    mkdirSync(join(work, 'mnt'));
    // (the loop device is detached at once: the kernel frees it when the filesystem is unmounted,
    // which the mount namespace's end does on any failure)
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `
      set -e
      truncate -s 64M "$1/img"; mkfs.ext4 -q -F -b 4096 -m 0 "$1/img"
      L=$(losetup -f --show "$1/img"); mount -o errors=continue "$L" "$1/mnt"; losetup -d "$L"
      set +e
      timeout -s KILL 60 "$2" "$1/child.mjs" "$3" "$1/mnt/state" "$1/img" "$L" "$4" "$5" "$6"
      echo "exit $?"
      umount -l "$1/mnt"`, 'sh', work, process.execPath, mode, cg.dir, ...cg.reclaim], { encoding: 'utf8', timeout: 120000 });
    t.is(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const exit = Number(/^exit (\d+)$/.exec(lines.at(-1))?.[1]);
    const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    return { exit, mapped: json[0]?.mapped ?? null, result: json[1] ?? null, stderr: r.stderr };
  } finally {
    for (let i = 0; i < 50 && existsSync(cg.dir); i++) { try { rmdirSync(cg.dir); } catch { spawnSync('sleep', ['0.1']); } }
    rmSync(work, { recursive: true, force: true });
  }
}

const serial = why ? (title, ...rest) => test.skip(`${title} (skipped: ${why})`, ...rest) : test.serial;

serial('the store\'s commit after the disk failed its reads and the mapped wal-index was evicted is refused with an error, not a SIGBUS that kills the process', (t) => {
  const { exit, mapped, result, stderr } = run(t, 'store');
  t.log({ exit, mapped, result });
  t.deepEqual(mapped, [], 'the open store maps no file of the state directory (state.db-shm was the only one)');
  t.is(exit, 0, `the process was killed (exit ${exit}: 135 is SIGBUS) ${stderr.slice(-500)}`);
  t.regex(result?.error ?? '', /I\/O error|IOERR|EIO/);
});


serial('a connection with locking_mode=EXCLUSIVE (the wal-index in its heap) maps no file, and gets an I/O error, not a signal, from the same failure', (t) => {
  const { exit, mapped, result, stderr } = run(t, 'exclusive');
  t.log({ exit, result });
  t.is(exit, 0, `killed: exit ${exit} ${stderr.slice(-500)}`);
  t.deepEqual(mapped, []);
  t.regex(result.error, /IOERR|I\/O error/);
});

// The daemon on such a disk: its state directory's filesystem (the chaos rig's ext4 on a loop
// device) failing its reads after its page cache was reclaimed. It maps no file of the state
// directory, runs on, healthz answers 503 and the store's metrics say so; an apply is refused
// with 500, nothing applied. (Run against the build that mapped state.db-shm, this daemon-level
// run fails only at the mapping check: the daemon is moved into the cgroup after it started, and
// its index pages stayed charged where they were made, so they were not evicted; the store-level
// test above is the one that reproduces the SIGBUS.)
const rigWhy = why || (rootReason(['unshare', 'nsenter', 'mount', 'losetup', 'mkfs.ext4', 'e2fsck']) || (loopWorks() ? '' : 'no loop devices here'));
const rigSerial = rigWhy ? (title, ...rest) => test.skip(`${title} (skipped: ${rigWhy})`, ...rest) : test.serial;
const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'chaos' }, spec: { clusterIP: `10.96.1.${i}`, ports: [{ port: 80, protocol: 'TCP' }] } });

rigSerial('the daemon whose state directory\'s disk fails its reads after its page cache was reclaimed runs on: healthz 503, the store metrics say so, applies refused with 500', async (t) => {
  const cg = memoryCgroup(`wdp-t${process.pid}-evict-daemon-${runs++}`);
  mkdirSync(cg.dir);
  const rig = await ChaosRig.create({ fs: 'ext4' });
  try {
    const d = rig.start();
    t.is(await rig.ready(d), 'ready', d.stderr());
    // the daemon moved into the cgroup (from here: inside, `ip netns exec` mounts a sysfs of its
    // own), with the charges of the pages it maps (cgroup v1), so that its page cache is reclaimed there
    const pid = daemonPid(d);
    try { writeFileSync(`${cg.dir}/memory.move_charge_at_immigrate`, '3'); } catch { /* v2: none */ }
    writeFileSync(`${cg.dir}/cgroup.procs`, String(pid));
    for (let i = 1; i <= 3; i++) t.is((await rig.req('POST', '/api/v1/apply', [svc(i)])).status, 200);
    t.is((await rig.req('GET', '/healthz')).status, 200);
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes(`${rig.dir}/`));
    t.deepEqual(maps, [], 'no file of the state directory is mapped');
    spawnSync('sync');
    const cut = spawnSync('sh', ['-c', `truncate -s 1M "$1" && losetup -c "$2"`, 'sh', rig.image, rig.loop], { encoding: 'utf8' });
    t.is(cut.status, 0, cut.stderr);
    try { writeFileSync(`${cg.dir}/${cg.reclaim[0]}`, cg.reclaim[1]); } catch { /* reclaimed what it could */ }
    const r = await rig.req('POST', '/api/v1/apply', [svc(4)]);
    t.is(r.status, 500, r.text);
    t.regex(r.text, /saving the desired state failed \(nothing applied/);
    t.is((await rig.req('GET', '/healthz')).status, 503);
    t.regex((await rig.req('GET', '/metrics')).text, /^wdp_state_store_writable 0$/m);
    t.is((await rig.req('GET', '/api/v1/namespaces/chaos/services/s4')).status, 404);
    t.is((await rig.req('GET', '/api/v1/namespaces/chaos/services/s3')).status, 200);
    await sleep(1000);
    t.is(d.done, null, `the daemon runs on ${d.stderr().slice(-500)}`);
  } finally {
    await rig.teardown();
    for (let i = 0; i < 50 && existsSync(cg.dir); i++) { try { rmdirSync(cg.dir); } catch { spawnSync('sleep', ['0.1']); } }
  }
});

/** The pid of the `node` the rig's start runs (a child of nsenter / ip netns exec / sh's exec). */
function daemonPid(d) {
  for (let pid = d.pid, depth = 0; depth < 5; depth++) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.startsWith(process.execPath) || cmd.split('\0')[0].endsWith('node')) return pid;
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    if (!kids.length) break;
    pid = Number(kids[0]);
  }
  throw new Error('the daemon\'s node process was not found');
}
