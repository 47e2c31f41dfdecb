// A rehearsal of the one-object apply, run once when the control plane has started: a throwaway
// ControlPlaneCore (its own compiler, no store, a dataplane that only encodes the diff as the
// workers' dataplane does) applies a node, a Service and its EndpointSlice, then moves one
// endpoint twice. Nothing of it touches the daemon's state.
//
// Why: V8 compiles a function when it first runs. The first one-endpoint change after a start
// ran the incremental path — validation of one object, the unchanged check, the address checks,
// the incremental compile, the diff view, the encode — for the first time, and paid for compiling
// it: 5–40 ms until packets saw it (most of it between the transaction's start and the post to
// the workers) where later changes took ~1 ms, the slowest change of a run in most runs
// (docs/performance.md, "One-endpoint change: what the slow ones had in common"). The full sync
// does not warm this path (it takes the full compile's). The rehearsal costs a few ms of the main
// thread once, while the daemon waits for its first request; a request that arrives meanwhile
// waits for it (it runs to its end between two events, ~5–20 ms on a cold start).
import { ControlPlaneCore } from './controlplane.js';
import { encodeDiff } from '../ir/diff-wire.js';
import type { IrDiff } from '../ir/diff.js';
import type { CounterSnapshot, Dataplane, FlowInfo, Programmed, TraceResult } from '../core/dataplane-types.js';

/** The workers' dataplane as far as the main thread goes: the diff encoded for posting. */
class EncodeOnlyDataplane implements Dataplane {
  private gen = 0;
  async apply(diff: IrDiff): Promise<Programmed> {
    encodeDiff(diff);
    return { generation: ++this.gen, programmedAtNs: Number(process.hrtime.bigint()) };
  }
  async counters(): Promise<CounterSnapshot> { return { generation: this.gen, global: {}, reasons: {}, frontends: {}, backends: {} }; }
  async conntrack(): Promise<FlowInfo[]> { return []; }
  async trace(): Promise<TraceResult> { throw new Error('a rehearsal dataplane traces nothing'); }
  generation(): number { return this.gen; }
  async close(): Promise<void> { /* nothing held */ }
}

const node = {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'rehearsal' },
  spec: { nodeName: 'rehearsal', nodeAddresses: ['192.0.2.1'], routes: [{ prefix: '10.128.0.0/9', port: 1, nextHopMac: '02:00:00:00:00:fe', localMac: '02:00:00:00:00:01' }] },
};
const service = {
  apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'rehearsal', name: 'web' },
  spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] },
};
const slice = (first: string) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { namespace: 'rehearsal', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: [first, '10.128.0.2', '10.128.0.3'].map((a) => ({ addresses: [a], conditions: { ready: true }, nodeName: 'rehearsal' })),
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
});

/** Runs the rehearsal; resolves when done, with each step's object actions (e.g. "created,created,
 * created"), or the error that ended it. Never rejects: a rehearsal that fails costs only its
 * purpose. */
export async function rehearseOneObjectChange(): Promise<string[]> {
  const steps: string[] = [];
  try {
    const core = new ControlPlaneCore(new EncodeOnlyDataplane(), null);
    const step = async (raws: unknown[]) => { steps.push((await core.apply(raws)).objects.map((o) => o.action).join(',')); };
    await step([node, service, slice('10.128.0.1')]);
    for (const first of ['10.128.0.9', '10.128.0.1']) await step([slice(first)]);
    await step([slice('10.128.0.1')]);
  } catch (e) { steps.push(`failed: ${(e as Error).message}`); }
  return steps;
}
