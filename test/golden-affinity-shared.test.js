// Golden packets (data, test/lib/golden-scenario.js: the core and the reference model, each output
// built independently) for sessionAffinity shared by a Service port's frontends whose sets differ
// (docs/core.md "sessionAffinity per service port"): kube-proxy keeps one affinity set per
// endpoint, which every chain of the port consults for its own endpoints only
// (pkg/proxy/nftables/proxier.go writeServiceToEndpointRules). A ClusterIP (every endpoint) and an
// externalTrafficPolicy Local NodePort (this node's endpoints, FEF_AFFINITY_IN_SET, its cluster
// front the ClusterIP): a pin taken through the ClusterIP on a local endpoint holds through the
// NodePort; one on a remote endpoint is not followed there — the NodePort picks among its own and
// the client's entry names that pick, which the ClusterIP then follows.
import test from 'ava';
import { flowHash, freshPickHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { backend, frontend, mkIr, L } from './lib/packets.js';
import { runScenario, fwd, cli, toBe } from './lib/golden-scenario.js';

const CIP = '10.96.0.10', NODE = '192.168.0.1', NODE_PORT = 30080;
// backends 1 and 3 on this node, 2 elsewhere
const BES = [1, 2, 3].map((i) => backend({ id: i, addr: `10.1.0.${i}`, port: 8080, outPort: 10 + i }));
const LOCAL_BES = [BES[0], BES[2]];
const CLUSTER_IP = frontend({ id: 1, addr: CIP, port: 80, proto: 'TCP', flags: L.FEF_AFFINITY, affinityTimeoutMs: 60_000 }, BES);
const NODE_PORT_FE = frontend({ id: 2, kind: 'NodePort', addr: NODE, port: NODE_PORT, proto: 'TCP', clusterFront: 1,
  flags: L.FEF_AFFINITY | L.FEF_EXTERNAL | L.FEF_AFFINITY_IN_SET, affinityTimeoutMs: 60_000 }, LOCAL_BES);

/** The backend a fresh pick of frontend fe gives (client, dst:dport, sport) at `now`. */
const pick = (fe, client, dst, dport, sport, now) =>
  BES.find((b) => b.id === fe.maglev[freshPickHash(flowHash(parseAddr(client).bytes, parseAddr(dst).bytes, sport, dport, 6), now) % fe.maglev.length]);

const syn = (client, dst, dport, sport) => cli({ proto: 'TCP', src: client, dst, sport, dport, flags: 'S' });
const toB = (client, b, sport) => fwd(b.outPort, toBe({ proto: 'TCP', src: client, dst: b.addr, sport, dport: 8080, flags: 'S', ttl: 63 }));

test('externalTrafficPolicy Local NodePort: a ClusterIP pin on a local endpoint holds through it, one on a remote endpoint is replaced by its own pick', (t) => {
  // a client pinned (ClusterIP, t=1000) to a local backend that a fresh NodePort pick (t=1001)
  // would not give, and one pinned to the remote backend
  let a, b;
  for (let i = 1; i < 500 && !(a && b); i++) {
    const c = `172.20.${i >> 8}.${i & 255}`;
    const first = pick(CLUSTER_IP, c, CIP, 80, 40000, 1000), firstB = pick(CLUSTER_IP, c, CIP, 80, 40000, 1002);
    if (!a && first.id !== 2 && pick(NODE_PORT_FE, c, NODE, NODE_PORT, 40001, 1001).id !== first.id) a = { c, first };
    else if (!b && firstB.id === 2) b = { c, first: firstB };
  }
  t.truthy(a && b);
  const bNode = pick(NODE_PORT_FE, b.c, NODE, NODE_PORT, 40001, 1003);
  t.not(bNode.id, 2);
  runScenario(t, {
    tables: mkIr({ frontends: [CLUSTER_IP, NODE_PORT_FE], backends: BES }),
    steps: [
      { label: 'A through the ClusterIP: a local backend', in: syn(a.c, CIP, 80, 40000), expect: toB(a.c, a.first, 40000), now: 1000 },
      { label: 'A through the NodePort: the same backend (the port\'s pin)', in: syn(a.c, NODE, NODE_PORT, 40001), expect: toB(a.c, a.first, 40001), now: 1001 },
      { label: 'B through the ClusterIP: the remote backend', in: syn(b.c, CIP, 80, 40000), expect: toB(b.c, b.first, 40000), now: 1002 },
      { label: 'B through the NodePort: never the remote backend, a pick among the local ones', in: syn(b.c, NODE, NODE_PORT, 40001), expect: toB(b.c, bNode, 40001), now: 1003 },
      { label: 'B through the ClusterIP again: the latest pin', in: syn(b.c, CIP, 80, 40002), expect: toB(b.c, bNode, 40002), now: 1004 },
    ],
  });
});
