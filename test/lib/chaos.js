// The state-directory chaos rig: a real `wdp start` (one TAP port, in a network namespace of its
// own) whose state directory is a small tmpfs mounted in a mount namespace held by a `sleep`
// process (nothing outside the rig sees it; the test reaches its files through
// /proc/<holder>/root). Operations are applied through the control API while the daemon is killed
// (SIGKILL, or SIGSTOP then SIGKILL as an OOM kill of a stopped process) at random moments; the
// driver (chaos-driver.js) then restarts it and checks what came back against what was
// acknowledged. Everything the rig makes — namespace, TAPs, mount, files — is removed by
// teardown(), also after a failure.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from '../../dist/src/netns.js';
import { within } from './bounded-wait.js';
import { mulberry32 } from '../../dist/src/util/rng.js';


/** One API request over a unix socket: { status, json, text } or { status: 0, error } — never a
 * rejection, so a test can ask a daemon that is stuck, gone or answering garbage. */
export function unixRequest(sock, method, path, body, timeoutMs = 120000) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const r = request({ socketPath: sock, method, path, timeout: timeoutMs, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => { let json; try { json = JSON.parse(text); } catch { /* not JSON */ } resolve({ status: res.statusCode, json, text }); });
      res.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    if (data) r.write(data);
    r.end();
  });
}

export const WDP = new URL('../../bin/wdp.js', import.meta.url).pathname;
const DOUBLE = new URL('./apiserver-double.js', import.meta.url).pathname;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A small seeded PRNG (mulberry32): the same seed draws the same run. */
export function prng(seed) {
  const next = mulberry32(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),   // [lo, hi]
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

let rigs = 0;

export class ChaosRig {
  /** `sizeMiB`: the state directory's size (a full disk is made by filling it). */
  /** `kube`: the daemon is fed by the API-server double (test/lib/apiserver-double.js) run in its
   * namespace; `rig.double(method, path, body)` changes what it serves. */
  static async create({ sizeMiB = 48, checkpointSeconds = 1, config = {}, fs = loopWorks() ? 'ext4' : 'tmpfs', kube = false } = {}) {
    const rig = new ChaosRig();
    rig.n = rigs++;
    rig.work = mkdtempSync(join(tmpdir(), `wdp-chaos${process.pid}-`));
    rig.dir = join(rig.work, 'state');
    rmSync(rig.dir, { recursive: true, force: true });
    execFileSync('mkdir', ['-m', '0700', rig.dir]);
    // the network namespace first: the mount namespace copies /run/netns as it is then
    rig.lab = new NetnsLab('ch');
    rig.ns = rig.lab.namespace('d');
    // the state directory's filesystem: ext4 on a loop device (errors=remount-ro: an error
    // injected through sysfs turns it read-only under the daemon) when loop devices work, else tmpfs
    rig.fs = fs;
    let mountCmd = `mount -t tmpfs -o size=${sizeMiB}m,mode=0700 wdp-chaos "$1"`;
    if (fs === 'ext4') {
      rig.image = join(rig.work, 'fs.img');
      execFileSync('truncate', ['-s', `${sizeMiB}M`, rig.image]);
      execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', rig.image]);
      rig.loop = execFileSync('losetup', ['-f', '--show', rig.image], { encoding: 'utf8' }).trim();
      mountCmd = `mount -o errors=remount-ro ${rig.loop} "$1" && chmod 0700 "$1"`;
    }
    // (the holder dies with this process, SIGKILL: the mount goes with its namespace)
    const pdeath = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0 ? ['setpriv', '--pdeathsig', 'KILL'] : [];
    rig.holder = spawn(pdeath[0] ?? 'unshare', [...pdeath.slice(1), ...(pdeath.length ? ['unshare'] : []), '-m', '--propagation', 'private', 'sh', '-c', `${mountCmd} && echo up && exec sleep 100000`, 'sh', rig.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise((resolve, reject) => {
      let out = '', err = '';
      const t = setTimeout(() => reject(new Error(`the mount namespace did not come up: ${err}`)), 10000);
      rig.holder.stderr.on('data', (d) => { err += d; });
      rig.holder.stdout.on('data', (d) => { out += d; if (out.includes('up')) { clearTimeout(t); resolve(); } });
      rig.holder.on('exit', (c) => { clearTimeout(t); reject(new Error(`the mount namespace holder exited ${c}: ${err}`)); });
    });
    if (kube) await rig.startDouble();
    // mounted: detached now, the loop device is freed by the kernel once its filesystem is unmounted
    if (rig.loop) spawnSync('losetup', ['-d', rig.loop]);
    rig.sock = join(rig.work, 'api.sock');
    rig.configFile = join(rig.work, 'wdp.json');
    rig.config = {
      node: { name: 'node-a', addresses: ['192.168.77.1'] },
      ports: [{ name: 'pods', type: 'tap', ifname: `wdpc${process.pid % 10000}x${rig.n}`, role: 'pod' }],
      api: { listen: `unix:${rig.sock}`, healthz: 'off' }, stateDir: rig.dir, logLevel: 'info',
      conntrack: { flows: 4096, checkpointSeconds },
      ...(kube ? { kubernetes: { kubeconfig: rig.kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: 'off', healthCheckBindAddress: '127.0.0.1', clusterCIDRs: ['10.244.0.0/16'] } } : {}),
      ...config,
    };
    writeFileSync(rig.configFile, JSON.stringify(rig.config));
    rig.daemons = new Set();
    return rig;
  }

  async startDouble() {
    const control = join(this.work, 'double.sock');
    const child = this.lab.spawn(this.ns, process.execPath, [DOUBLE, '--listen', '127.0.0.1:0', '--control', control, '--bookmark-ms', '1000']);
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error('the API-server double did not start')), 15000);
      child.stdout.on('data', (d) => { out += d; const m = /"url":"([^"]+)"/.exec(out); if (m) { clearTimeout(t); resolve(m[1]); } });
      child.on('exit', (c) => { clearTimeout(t); reject(new Error(`the API-server double exited ${c}`)); });
    });
    this.kubeconfig = join(this.work, 'kubeconfig');
    writeFileSync(this.kubeconfig, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'd',
      clusters: [{ name: 'd', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
    }));
    this.doubleSock = control;
    await this.double('POST', '/api/v1/nodes', { metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.77.1' }, { type: 'Hostname', address: 'node-a' }] } });
  }

  /** A request to the API-server double's control socket (its REST paths); resolves { status, json }. */
  double(method, path, body) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const r = request({ socketPath: this.doubleSock, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => { let json; try { json = JSON.parse(text); } catch { /* not JSON */ } resolve({ status: res.statusCode, json, text }); });
      });
      r.on('error', reject);
      if (data) r.write(data);
      r.end();
    });
  }

  /** A file of the state directory as this process reaches it. */
  path(name = '') { return `/proc/${this.holder.pid}/root${this.dir}${name ? `/${name}` : ''}`; }

  /** Runs a command in the state directory's mount namespace. */
  inMountNs(cmd, args) {
    return spawnSync('nsenter', ['-t', String(this.holder.pid), '-m', '--', cmd, ...args], { encoding: 'utf8', timeout: 20000 });
  }

  /** Starts `wdp start`; resolves { pid, child, log(), exited: Promise<{code, signal}> }. */
  start(extraEnv = {}, wrap = []) {
    const child = spawn('nsenter', ['-t', String(this.holder.pid), '-m', '--', 'ip', 'netns', 'exec', this.ns, ...wrap, process.execPath, WDP, 'start', '--config', this.configFile],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...extraEnv } });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const d = {
      child, pid: child.pid, stdout: () => out, stderr: () => err, done: null,
      exited: new Promise((resolve) => child.on('exit', (code, signal) => { d.done = { code, signal }; this.daemons.delete(d); resolve(d.done); })),
    };
    this.daemons.add(d);
    return d;
  }

  /** Resolves 'ready' once the API answers, or the exit ({code, signal}) if it ends first. */
  async ready(d, timeoutMs = 60000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (d.done) return d.done;
      const r = await this.req('GET', '/api/v1/generation', undefined, 2000);
      if (r.status === 200 && !d.done) return 'ready';
      await sleep(50);
    }
    throw new Error(`the daemon was not ready within ${timeoutMs} ms; stderr: ${d.stderr().slice(-2000)}`);
  }

  /** SIGKILL (how 'kill'), SIGSTOP then SIGKILL after `stopMs` ('stop-kill'), SIGTERM ('term'). */
  async kill(d, how = 'kill', stopMs = 0) {
    if (d.done) return d.done;
    try {
      if (how === 'term') process.kill(d.pid, 'SIGTERM');
      else if (how === 'stop-kill') { process.kill(d.pid, 'SIGSTOP'); await sleep(stopMs); process.kill(d.pid, 'SIGKILL'); }
      else process.kill(d.pid, 'SIGKILL');
    } catch { /* gone already */ }
    return d.exited;
  }

  /** One API request over the unix socket: { status, json, text } or { status: 0, error }. */
  req(method, path, body, timeoutMs = 120000) {
    return unixRequest(this.sock, method, path, body, timeoutMs);
  }


  /** Every item of a paged list. */
  async list(path) {
    const items = [];
    let cont = '';
    for (;;) {
      const r = await this.req('GET', `${path}?limit=5000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text ?? r.error}`);
      items.push(...r.json.items);
      cont = r.json.metadata?.continue;
      if (!cont) return items;
    }
  }

  /** Tears everything down (daemons, namespace and its TAPs, the mount, the files). */
  async teardown() {
    for (const d of [...this.daemons]) { try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ } await within(d.exited, 5000); }
    try { this.lab?.destroySync(); } catch { /* best effort */ }
    if (this.holder && this.holder.exitCode === null) {
      const gone = new Promise((r) => this.holder.once('exit', r));
      this.holder.kill('SIGKILL');
      await within(gone, 5000);
    }
    rmSync(this.work, { recursive: true, force: true });
  }

  /** ext4 only: an error injected into the filesystem (errors=remount-ro): from now on every write
   * to it fails, under the running daemon, as when the disk under a real node fails. */
  injectFsError() {
    writeFileSync(`/sys/fs/ext4/${this.loop.split('/').pop()}/trigger_fs_error`, '1');
  }

  /** ext4 only, no daemon running: the filesystem unmounted, checked and repaired, mounted again. */
  repairFs() {
    // (unmounted, the loop device goes — it was detached at mount: autoclear — and a new one is made)
    const r = this.inMountNs('sh', ['-c', `umount "$1" && { e2fsck -fy "$2" >/dev/null 2>&1; [ $? -le 1 ]; } && L=$(losetup -f --show "$2") && mount -o errors=remount-ro "$L" "$1" && chmod 0700 "$1" && losetup -d "$L" && echo "$L"`, 'sh', this.dir, this.image]);
    if (r.status !== 0) throw new Error(`repairing the filesystem failed: ${r.stderr}`);
    this.loop = r.stdout.trim().split('\n').pop();
  }

  /** Remounts the state directory 'ro' or 'rw' (fails while a daemon writes to it). */
  remount(mode) {
    const r = this.inMountNs('mount', ['-o', `remount,${mode}`, this.dir]);
    if (r.status !== 0) throw new Error(`remount ${mode}: ${r.stderr}`);
  }
}

let loopOk;
/** Whether loop devices can be set up here (a container may have none). */
export function loopWorks() {
  if (loopOk !== undefined) return loopOk;
  loopOk = ['losetup', 'mkfs.ext4', 'e2fsck'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0) &&
    spawnSync('losetup', ['-f'], { encoding: 'utf8' }).status === 0;
  return loopOk;
}
