// What the workers and the host port's TAP were last given of the node config in force, so a node
// change (ControlPlaneCore.onNodeChange: whoever applied it) reaches each of them only when it
// changes what they have:
//
//   * the workers: the node addresses their uplinks answer ARP/ND for (by their set: order does
//     not matter); updated one after another, in the order of the changes (settled() waits for
//     them: the daemon's settled() and its stop);
//   * the host port's TAP: the node addresses, the masquerade source per family and the NodePort
//     addresses its rules are for (unset: every node address). A node config without node
//     addresses leaves the TAP as it is (its masquerade source is still taken as given: a later
//     config with the same source and addresses changes nothing).
import { addressKey } from './node-addresses.js';

/** The masquerade source per family (HostAddresses['snat']). */
export interface Snat { v4?: string | undefined; v6?: string | undefined }

/** A node config's part the workers and the host TAP take: canonical addresses. */
export interface NodeGiving {
  addresses: string[];
  nodePorts: string[] | undefined;
  snat: Snat;
}

/** Who a node change is for: the host TAP (`host`: its addresses, masquerade source and NodePort
 * addresses are to be set) and the workers (`workers`: their answered addresses). */
export interface NodeTakers { host: boolean; workers: boolean }

const snatKey = (s: Snat): string => JSON.stringify({ v4: s.v4, v6: s.v6 });
const nodePortsKey = (n: string[] | undefined): string => JSON.stringify(n ?? null);

export class NodeGiven {
  private answering: string;
  private hostSnat: string;
  private hostNodePorts: string[] | undefined;
  private workersDone: Promise<void> = Promise.resolve();

  /** `answering`: the addresses the workers started with; `host`: what the host TAP was set up
   * with (or would be: the same with no host port). */
  constructor(answering: readonly string[], host: { snat: Snat; nodePorts: string[] | undefined }) {
    this.answering = addressKey(answering);
    this.hostSnat = snatKey(host.snat);
    this.hostNodePorts = host.nodePorts;
  }

  /** The NodePort addresses the host TAP's rules are for (undefined: every node address). */
  get nodePorts(): string[] | undefined { return this.hostNodePorts; }

  /** A node change: who it is for, taken as given to them from now on. */
  take(n: NodeGiving): NodeTakers {
    const key = addressKey(n.addresses), snat = snatKey(n.snat);
    if (key === this.answering && snat === this.hostSnat && nodePortsKey(n.nodePorts) === nodePortsKey(this.hostNodePorts)) return { host: false, workers: false };
    this.hostSnat = snat;
    const host = n.addresses.length > 0;
    if (host) this.hostNodePorts = n.nodePorts;
    const workers = key !== this.answering;
    this.answering = key;
    return { host, workers };
  }

  /** Runs `update` (the workers given their addresses) after those queued before it. */
  queueWorkers(update: () => Promise<void>): void {
    this.workersDone = this.workersDone.then(update, update).then(() => undefined, () => undefined);
  }

  /** Resolves once every queued update of the workers has run. */
  settled(): Promise<void> { return this.workersDone; }
}
