// The non-root demo: the same Wasm core, tables compiled from the same Service/EndpointSlice
// through the same control plane, fed synthetic TCP packets in batches inside this process.
// The rate includes copying every frame into the arena from JS (what a port does natively), so it
// is a lower bound of the core's own speed; `wdp bench` measures properly.
import { LocalDataplane } from '../core/dataplane.js';
import { ControlPlaneCore } from '../api/controlplane.js';
import { frame } from '../packet/build.js';
import * as L from '../../assembly/layout.js';

const VIP = '10.96.0.10';
const PODS = [
  { name: 'pod-a', ip: '10.244.1.11', mac: '02:aa:00:00:00:0b' },
  { name: 'pod-b', ip: '10.244.1.12', mac: '02:aa:00:00:00:0c' },
  { name: 'pod-c', ip: '10.244.1.13', mac: '02:aa:00:00:00:0d' },
];
const say = (s = '') => process.stdout.write(s + '\n');

/** Runs until `durationS` is up or `rounds` one-second measuring rounds are done, whichever is
 * first (at least one of them given). */
export async function runSynthetic(o: { durationS?: number; rounds?: number }): Promise<number> {
  const limitMs = (o.durationS ?? Infinity) * 1000;
  const rounds = o.rounds ?? Infinity;
  say('[1/4] Loading the forwarding core (build/core.wasm) into this process.');
  const dp = new LocalDataplane({ flows: 65536 });
  const core = dp.core;
  const cp = new ControlPlaneCore(dp, null);
  say(`[2/4] Applying Service default/hello (ClusterIP ${VIP}:80 → 3 pods:8080) through the control plane.`);
  await cp.apply([
    {
      apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'demo' },
      spec: { nodeName: 'demo', neighbours: PODS.map((p, i) => ({ address: p.ip, port: i + 1, mac: p.mac, localMac: '02:dd:00:00:00:01' })) },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hello', namespace: 'default' }, spec: { clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'hello-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'hello' } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }],
      endpoints: PODS.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })),
    },
  ]);
  // 4096 distinct client flows (SYN then ACKs): a realistic mix of new and existing connections
  const frames: Uint8Array[] = [];
  for (let c = 0; c < 4096; c++) {
    frames.push(frame({ src: `10.0.${(c >> 8) & 0xff}.${(c & 0xff) || 1}`, dst: VIP, proto: 'TCP', sport: 10000 + c, dport: 80, flags: 'S', dstMac: '02:dd:00:00:00:00' }));
  }
  const bound = 'for ' + [o.durationS !== undefined ? `${o.durationS} s` : '', o.rounds !== undefined ? `${o.rounds} one-second round${o.rounds === 1 ? '' : 's'}` : ''].filter(Boolean).join(' or ');
  say(`[3/4] Running ${frames.length} client flows through the core in batches of ${core.batchMax} ${bound}.`);
  const batch = core.batchMax;
  let sent = 0, forwarded = 0, fi = 0;
  const t0 = performance.now();
  let tick = t0;
  let tickSent = 0;
  let round = 0;
  while (performance.now() - t0 < limitMs && round < rounds) {
    for (let i = 0; i < batch; i++) { core.writeFrame(i, frames[fi], 0); fi = (fi + 1) % frames.length; }
    core.process(batch);
    const dv = core.dv;
    for (let i = 0; i < batch; i++) if (dv.getUint8(core.descOffset(i) + L.D_VERDICT) === L.V_FORWARD) forwarded++;
    sent += batch;
    const now = performance.now();
    if (now - tick >= 1000) {
      round++;
      say(`      round ${round}: ${((sent - tickSent) / ((now - tick) / 1000) / 1e6).toFixed(2)} Mpps`);
      tick = now; tickSent = sent;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const c = await dp.counters();
  say(`[4/4] ${sent} packets in ${secs.toFixed(1)} s = ${(sent / secs / 1e6).toFixed(2)} Mpps (including the JS copy into the arena); ${forwarded} forwarded.`);
  say(`      conntrack: ${c.global.ct_new} flows created, ${c.global.ct_hit} packets matched an existing flow.`);
  const byAddr = new Map<string, number>();
  for (const b of cp.compiler.ir.backends.values()) byAddr.set(b.addr, (byAddr.get(b.addr) ?? 0) + (c.backends[b.id]?.packets ?? 0));
  for (const p of PODS) say(`      ${p.name} (${p.ip}): ${byAddr.get(p.ip) ?? 0} packets`);
  await dp.close();
  return forwarded === sent ? 0 : 1;
}
