// `wdp bench io`: how fast frames move through the native ports, next to the kernel's own
// forwarding of the same traffic between the same namespaces, measured in one run.
//
//   S (sender, trafgen) --veth s0|f0-- F (forwarder) --veth f1|d0-- D (receiver)
//
//   af_packet  F runs no IP forwarding; a worker thread moves frames f0 → f1 through two
//              AfPacketPorts (TPACKET_V3 ring in, sendmmsg out) with a trivial loop that only
//              sets the out port — no core, no NAT: the cost of the I/O path itself.
//   tap        TAPs tS (in S) and tD (in D) replace the veths as S's and D's interfaces; the
//              worker reads frames from tS's fd and writes them to tD's.
//   kernel     F has ip_forward=1 and static neighbours; the kernel routes S → D.
//
// Offered load: trafgen (netsniff-ng) with 60-byte (64 on the wire) UDP frames by default, one
// sender process. Delivered: rx_packets of D's interface over the measuring window, so every
// mode is counted the same way, outside the thing measured. The offered rate is reported too:
// when it is close to the delivered rate the generator, not the path, was the limit (likely on a
// 2-core machine where generator, forwarder and softirq share the cores).
// Namespaces are created and removed by this function (NetnsLab: unique names, removed on exit).
// It prints nothing; progress goes to onProgress.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, canUseNetns, run } from '../netns.js';
import type { ChildProcess } from 'node:child_process';
import { DESC_SIZE, D_OUT_PORT, D_VERDICT, V_FORWARD } from '../../assembly/layout.js';
import { IO_BENCH_DEFAULTS as D } from './defaults.js';
import { within } from '../util/within.js';

export interface IoBenchOptions {
  /** Measuring window per mode (default 3). */
  seconds?: number;
  /** Frames per rx/tx burst in the forwarder (default 256). */
  batch?: number;
  /** Frame length without FCS (default 60, i.e. 64 bytes on the wire). */
  size?: number;
  /** Traffic before the window opens, per mode (default 0.5 s). */
  warmupSeconds?: number;
  /** Modes to run (default all three). */
  modes?: IoMode[];
  onProgress?: (phase: string, done: number, total: number) => void;
  /** Accepted for the CLI's sake and ignored: this suite reports through onProgress only. */
  progress?: unknown;
}

export type IoMode = 'af_packet' | 'tap' | 'kernel';

export interface IoBenchRow {
  mode: IoMode;
  forwarded_mpps: number | null;
  offered_mpps: number | null;
  loss_pct: number | null;
  error?: string;
}

export interface IoBenchResult {
  af_packet_mpps: number | null;
  tap_mpps: number | null;
  kernel_forward_mpps: number | null;
  af_packet_offered_mpps: number | null;
  tap_offered_mpps: number | null;
  kernel_offered_mpps: number | null;
  seconds: number;
  frame_bytes: number;
  batch: number;
  rows: IoBenchRow[];
  notes: string[];
}

const MAC = { s0: '02:b0:00:00:00:01', f0: '02:b0:00:00:00:02', f1: '02:b0:00:00:00:03', d0: '02:b0:00:00:00:04', tS: '02:b0:00:00:00:05', tD: '02:b0:00:00:00:06' };
const IP = { s: '10.201.1.2', f0: '10.201.1.1', f1: '10.201.2.1', d: '10.201.2.2' };

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** rx: frames delivered to the interface; tx: frames the sender offered (sent + dropped). */
function linkCounters(ns: string, ifname: string): { rx: number; tx: number } {
  const r = run('ip', ['-s', '-j', '-n', ns, 'link', 'show', 'dev', ifname]);
  if (r.code !== 0) throw new Error(`cannot read counters of ${ifname} in ${ns}: ${r.stderr.trim()}`);
  const s = (JSON.parse(r.stdout) as Array<{ stats64?: { rx: { packets: number }; tx: { packets: number; dropped?: number } } }>)[0]?.stats64;
  if (!s) throw new Error(`no stats64 for ${ifname} in ${ns}`);
  // Offered load = what the sender pushed at its interface, including what the device had to
  // drop because the next hop (TAP reader, veth peer backlog) did not keep up.
  return { rx: s.rx.packets, tx: s.tx.packets + (s.tx.dropped ?? 0) };
}

function trafgenConfig(dst: string, src: string, size: number): string {
  // eth(14) + ipv4(20) + udp(8) + padding; trafgen fills in lengths and the IP checksum.
  const pad = Math.max(0, size - 42);
  return `{ eth(da=${dst}, sa=${src}), ipv4(saddr=${IP.s}, daddr=${IP.d}, ttl=64), udp(sp=40000, dp=5001), fill(0x00, ${pad}) }\n`;
}

interface ForwarderInit { wdpIoForwarder: true; inHandle: number; outHandle: number; batch: number; stop: SharedArrayBuffer }
interface ForwarderDone { forwarded: number; received: number; error?: string }

/** Worker side: move frames in → out until told to stop. */
async function forwarderMain(d: ForwarderInit): Promise<void> {
  const out: ForwarderDone = { forwarded: 0, received: 0 };
  try {
    const { NativePort, wait } = await import('../ports/native.js');
    const inPort = NativePort.fromHandle(d.inHandle, { index: 0 });
    const outPort = NativePort.fromHandle(d.outHandle, { index: 1 });
    const slotSize = 2048, descOff = 0, arenaOff = Math.ceil((d.batch * DESC_SIZE) / 64) * 64;
    const mem = new WebAssembly.Memory({ initial: Math.ceil((arenaOff + d.batch * slotSize) / 65536) + 1 });
    const area = { memory: mem.buffer, arenaOff, slotSize, descOff };
    const dv = new DataView(mem.buffer);
    const stop = new Int32Array(d.stop);
    parentPort!.postMessage({ ready: true });
    // Poll-mode with a short spin before sleeping: blocking right away costs a wake-up (IPI +
    // context switch, paid partly by the sender) per frame at moderate rates, which is what
    // limits TAP most. The spin burns CPU only while traffic is paused.
    let idle = 0;
    while (Atomics.load(stop, 0) === 0) {
      const n = inPort.rxBurst(area, 0, d.batch);
      if (n === 0) {
        if (++idle > 256) { wait([inPort], 5); idle = 0; }
        continue;
      }
      idle = 0;
      out.received += n;
      // The whole "dataplane": everything received goes out of port 1.
      for (let i = 0; i < n; i++) { const o = descOff + i * DESC_SIZE; dv.setUint16(o + D_OUT_PORT, 1, true); dv.setUint8(o + D_VERDICT, V_FORWARD); }
      out.forwarded += outPort.txBurst(area, n);
    }
  } catch (e) {
    out.error = (e as Error).message;
  }
  parentPort!.postMessage(out);
}

if (!isMainThread && (workerData as Partial<ForwarderInit> | null)?.wdpIoForwarder) void forwarderMain(workerData as ForwarderInit);

/** Starts the forwarder worker; resolves once it is in its loop (worker start-up and module
 * loading take a while on a busy machine, and must not eat into the measuring window). */
async function startForwarder(inHandle: number, outHandle: number, batch: number): Promise<{ stop: () => Promise<ForwarderDone> }> {
  const stop = new SharedArrayBuffer(4);
  const init: ForwarderInit = { wdpIoForwarder: true, inHandle, outHandle, batch, stop };
  const w = new Worker(new URL(import.meta.url), { workerData: init });
  let result: ForwarderDone | undefined;
  let failure: Error | undefined;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => { markReady = r; });
  w.on('message', (m: ForwarderDone | { ready: true }) => { if ('ready' in m) markReady(); else { result = m; markReady(); } });
  w.on('error', (e) => { failure = e; markReady(); });
  const exited = new Promise<void>((r) => w.once('exit', () => { markReady(); r(); }));
  await within(ready, 30000);
  if (failure || result?.error) {
    await w.terminate();
    throw failure ?? new Error(`forwarder: ${result?.error}`);
  }
  return {
    stop: async () => {
      Atomics.store(new Int32Array(stop), 0, 1);
      const t = setTimeout(() => { void w.terminate(); }, 5000);
      await exited;
      clearTimeout(t);
      if (failure) throw failure;
      return result ?? { forwarded: 0, received: 0, error: 'forwarder exited without a report' };
    },
  };
}

export async function runIoBench(opts: IoBenchOptions = {}): Promise<IoBenchResult> {
  const seconds = opts.seconds ?? D.seconds;
  const batch = opts.batch ?? D.batch;
  const size = opts.size ?? D.size;
  const warmup = opts.warmupSeconds ?? D.warmupSeconds;
  const modes = opts.modes ?? ['af_packet', 'tap', 'kernel'];
  if (!(seconds > 0 && seconds <= 3600)) throw new Error(`seconds must be in (0, 3600], got ${seconds}`);
  if (!Number.isInteger(batch) || batch < 1 || batch > 4096) throw new Error(`batch must be an integer 1..4096, got ${batch}`);
  if (!Number.isInteger(size) || size < 60 || size > 1514) throw new Error(`size must be an integer 60..1514 (frame without FCS, MTU 1500), got ${size}`);
  if (!(warmup >= 0 && warmup <= 60)) throw new Error(`warmupSeconds must be in [0, 60], got ${warmup}`);
  for (const m of modes) if (!['af_packet', 'tap', 'kernel'].includes(m)) throw new Error(`unknown io bench mode ${m}`);
  if (!canUseNetns()) throw new Error('the io benchmark needs root (network namespaces, raw sockets) and iproute2');
  // `trafgen -v` exits 1 even when it works, so look for the binary on PATH instead.
  if (run('sh', ['-c', 'command -v trafgen']).code !== 0) throw new Error('the io benchmark needs trafgen (Debian package netsniff-ng)');

  const progress = opts.onProgress ?? (() => {});
  const notes: string[] = [];
  const rows: IoBenchRow[] = [];
  const lab = new NetnsLab('bio');
  const tmp = mkdtempSync(join(tmpdir(), 'wdp-io-'));
  const total = modes.length;
  try {
    progress('topology', 0, total);
    const S = lab.namespace('s'), F = lab.namespace('f'), D = lab.namespace('d');
    for (const ns of [S, F, D]) for (const k of ['all', 'default']) lab.sysctl(ns, `net.ipv6.conf.${k}.disable_ipv6`, '1');
    lab.veth(S, 's0', F, 'f0', { macA: MAC.s0, macB: MAC.f0 });
    lab.veth(F, 'f1', D, 'd0', { macA: MAC.f1, macB: MAC.d0 });
    lab.addr(S, 's0', `${IP.s}/24`);
    lab.addr(F, 'f0', `${IP.f0}/24`);
    lab.addr(F, 'f1', `${IP.f1}/24`);
    lab.addr(D, 'd0', `${IP.d}/24`);
    lab.route(S, '10.201.2.0/24', IP.f0);
    lab.neigh(S, 's0', IP.f0, MAC.f0);
    lab.neigh(F, 'f1', IP.d, MAC.d0);

    const measure = async (mode: IoMode, txNs: string, txIf: string, rxNs: string, rxIf: string, dstMac: string, srcMac: string): Promise<IoBenchRow> => {
      const cfg = join(tmp, `${mode}.cfg`);
      writeFileSync(cfg, trafgenConfig(dstMac, srcMac, size));
      // -P 1: one generator process; --no-sock-mem / -Q: leave the host's socket buffer sysctls
      // and IRQ affinities alone; -C: no CPU statistics on exit.
      // trafgen forks its sender and the parent does not pass SIGINT on, so it runs in its own
      // process group and the whole group is signalled; otherwise a stray sender keeps loading
      // the link (and the CPUs) during the next mode.
      const gen: ChildProcess = lab.spawn(txNs, 'trafgen', ['-o', txIf, '-i', cfg, '-P', '1', '--no-sock-mem', '-Q', '-C'], { stdio: 'ignore', detached: true });
      const genExit = new Promise<number | null>((r) => gen.once('exit', (c) => r(c)));
      const signalGroup = (sig: NodeJS.Signals) => { try { if (gen.pid) process.kill(-gen.pid, sig); } catch { /* already gone */ } };
      try {
        // trafgen takes a moment to set up its ring (longer on a loaded machine): the window
        // opens only once the sender's counter moves, then after the warm-up.
        const start = linkCounters(txNs, txIf).tx;
        for (let k = 0; k < 200 && gen.exitCode === null && linkCounters(txNs, txIf).tx === start; k++) await sleep(50);
        await sleep(warmup * 1000);
        if (gen.exitCode !== null) throw new Error(`trafgen exited early with code ${gen.exitCode}`);
        const rx0 = linkCounters(rxNs, rxIf).rx, tx0 = linkCounters(txNs, txIf).tx, t0 = performance.now();
        await sleep(seconds * 1000);
        const rx1 = linkCounters(rxNs, rxIf).rx, tx1 = linkCounters(txNs, txIf).tx, t1 = performance.now();
        const secs = (t1 - t0) / 1000;
        const fwd = (rx1 - rx0) / secs / 1e6, offered = (tx1 - tx0) / secs / 1e6;
        return { mode, forwarded_mpps: fwd, offered_mpps: offered, loss_pct: offered > 0 ? Math.max(0, (1 - fwd / offered) * 100) : null };
      } finally {
        signalGroup('SIGINT'); // trafgen restores what it changed on SIGINT
        await within(genExit, 3000);
        signalGroup('SIGKILL');
        // the forked sender may outlive the parent by a moment: wait until the group is empty
        for (let k = 0; k < 60; k++) {
          try { if (gen.pid) process.kill(-gen.pid, 0); } catch { break; }
          await sleep(50);
        }
      }
    };

    let done = 0;
    for (const mode of modes) {
      progress(mode, done, total);
      try {
        if (mode === 'kernel') {
          lab.sysctl(F, 'net.ipv4.ip_forward', '1');
          try { rows.push(await measure('kernel', S, 's0', D, 'd0', MAC.f0, MAC.s0)); }
          finally { lab.sysctl(F, 'net.ipv4.ip_forward', '0'); }
        } else {
          const native = await import('../ports/native.js');
          const avail = native.nativeAvailable();
          if (!avail.ok) throw new Error(avail.reason);
          lab.sysctl(F, 'net.ipv4.ip_forward', '0');
          let inPort, outPort;
          let txNs: string, txIf: string, rxNs: string, rxIf: string, dst: string, src: string;
          if (mode === 'af_packet') {
            inPort = new native.AfPacketPort({ ifname: 'f0', netns: F, index: 0, promisc: false });
            outPort = new native.AfPacketPort({ ifname: 'f1', netns: F, index: 1, promisc: false });
            [txNs, txIf, rxNs, rxIf, dst, src] = [S, 's0', D, 'd0', MAC.f0, MAC.s0];
          } else {
            inPort = new native.TapPort({ ifname: 'tS', netns: S, index: 0, deviceMac: MAC.tS });
            outPort = new native.TapPort({ ifname: 'tD', netns: D, index: 1, deviceMac: MAC.tD });
            [txNs, txIf, rxNs, rxIf, dst, src] = [S, 'tS', D, 'tD', MAC.tD, MAC.tS];
          }
          const fwd = await startForwarder(inPort.handle, outPort.handle, batch);
          try {
            const row = await measure(mode, txNs, txIf, rxNs, rxIf, dst, src);
            const r = await fwd.stop();
            if (r.error) throw new Error(`forwarder: ${r.error}`);
            const st = inPort.stats();
            if (st.rxDropped > 0) notes.push(`${mode}: the forwarder's input dropped ${st.rxDropped} frames (ring/queue full)`);
            rows.push(row);
          } finally {
            await fwd.stop().catch(() => undefined);
            inPort.close();
            outPort.close();
          }
        }
      } catch (e) {
        rows.push({ mode, forwarded_mpps: null, offered_mpps: null, loss_pct: null, error: (e as Error).message });
        notes.push(`${mode}: ${(e as Error).message}`);
      }
      progress(mode, ++done, total);
    }
  } finally {
    await lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
  const pick = (m: IoMode, k: 'forwarded_mpps' | 'offered_mpps') => rows.find((r) => r.mode === m)?.[k] ?? null;
  const round = (v: number | null) => (v === null ? null : Math.round(v * 1e4) / 1e4);
  for (const r of rows) { r.forwarded_mpps = round(r.forwarded_mpps); r.offered_mpps = round(r.offered_mpps); r.loss_pct = r.loss_pct === null ? null : Math.round(r.loss_pct * 10) / 10; }
  return {
    af_packet_mpps: pick('af_packet', 'forwarded_mpps'),
    tap_mpps: pick('tap', 'forwarded_mpps'),
    kernel_forward_mpps: pick('kernel', 'forwarded_mpps'),
    af_packet_offered_mpps: pick('af_packet', 'offered_mpps'),
    tap_offered_mpps: pick('tap', 'offered_mpps'),
    kernel_offered_mpps: pick('kernel', 'offered_mpps'),
    seconds,
    frame_bytes: size,
    batch,
    rows,
    notes,
  };
}
