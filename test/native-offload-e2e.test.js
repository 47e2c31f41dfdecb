// End to end through `wdp start` with every interface at the kernel's default offloads (no
// ethtool anywhere): pods on a TAP port and on an AF_PACKET veth port send CHECKSUM_PARTIAL
// frames and TSO super-frames, the client's veth does too; a pod on an AF_XDP port sends partial
// checksums without any header saying so. Real curl through a ClusterIP: small
// requests, multi-MB downloads from each pod, multi-MB uploads to each pod, and a pod as the
// client of a service backed by the other pod, all byte for byte.
import test from 'ava';
import { createHash } from 'node:crypto';
import { podBytes } from '../dist/src/demo/pod-bytes.js';
import { e2eSuite, curlOk, serviceYaml, sliceYaml, logged } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-t', attach: 'tap' }, { name: 'pod-p', attach: 'afpacket' }, { name: 'pod-x', attach: 'afxdp' }], kind: 'oe' });
const { serial, apply } = suite;
const SIZE = 8 << 20;
const VIP = { 'pod-t': '10.96.7.1', 'pod-p': '10.96.7.2', 'pod-x': '10.96.7.3' };

function services(topo) {
  return topo.pods.flatMap((p) => [
    serviceYaml({ name: `bulk-${p.name}`, clusterIP: VIP[p.name], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({
      name: `bulk-${p.name}-1`, service: `bulk-${p.name}`, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' }],
    }),
  ]);
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

async function download(topo, ns, url) {
  const r = await topo.lab.execAsync(ns, 'sh', ['-c', `curl -sS --max-time 90 ${url} | sha256sum`], { timeoutMs: 120_000 });
  return r.stdout.split(' ')[0];
}

async function upload(topo, ns, url) {
  const r = await topo.lab.execAsync(ns, 'sh', ['-c',
    `f=$(mktemp) && head -c ${SIZE} /dev/urandom > $f && sha256sum < $f && curl -sS --max-time 90 --data-binary @$f ${url}; rm -f $f`], { timeoutMs: 120_000 });
  const [local, remote] = r.stdout.trim().split('\n');
  return { want: `${SIZE} ${(local ?? '').split(' ')[0]}`, got: remote, stderr: r.stderr };
}

serial('TCP with default offloads: curl through a ClusterIP to a TAP pod, an AF_PACKET pod and an AF_XDP pod', async (t) => {
  const topo = suite.topo;
  await apply(services(topo));
  await logged(topo, /"port":"pod-x"[^\n]*"kind":"native-afxdp"/, 'the AF_XDP pod port logged as a real AF_XDP port, not a fallback');
  for (const p of topo.pods) {
    const r = await curlOk(topo, topo.ns.client, `http://${VIP[p.name]}/`);
    t.is(r.code, 0, `${p.name}: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
    t.is(r.body, `${p.name}\n`);
  }
});

serial('multi-MB downloads from each pod (pod TSO super-frames) arrive byte for byte', async (t) => {
  const topo = suite.topo;
  const want = sha(podBytes(0, SIZE));
  for (const p of topo.pods) t.is(await download(topo, topo.ns.client, `http://${VIP[p.name]}/bytes/${SIZE}`), want, p.name);
});

serial('multi-MB uploads to each pod (client TSO super-frames) arrive byte for byte', async (t) => {
  const topo = suite.topo;
  for (const p of topo.pods) {
    const r = await upload(topo, topo.ns.client, `http://${VIP[p.name]}/sink`);
    t.is(r.got, r.want, `${p.name}: ${r.stderr}`);
  }
});

serial('a pod as the client: TAP pod <-> AF_PACKET pod through their services, multi-MB both ways', async (t) => {
  const topo = suite.topo;
  const [tap, pkt, xdp] = topo.pods;
  const want = sha(podBytes(0, SIZE));
  t.is(await download(topo, tap.ns, `http://${VIP[pkt.name]}/bytes/${SIZE}`), want, 'TAP pod downloads from the AF_PACKET pod');
  t.is(await download(topo, pkt.ns, `http://${VIP[tap.name]}/bytes/${SIZE}`), want, 'AF_PACKET pod downloads from the TAP pod');
  const up = await upload(topo, pkt.ns, `http://${VIP[tap.name]}/sink`);
  t.is(up.got, up.want, `AF_PACKET pod uploads to the TAP pod: ${up.stderr}`);
  t.is(await download(topo, xdp.ns, `http://${VIP[tap.name]}/bytes/${SIZE}`), want, 'AF_XDP pod downloads from the TAP pod');
  const up2 = await upload(topo, xdp.ns, `http://${VIP[pkt.name]}/sink`);
  t.is(up2.got, up2.want, `AF_XDP pod uploads to the AF_PACKET pod: ${up2.stderr}`);
});
