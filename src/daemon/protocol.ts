// Messages between the daemon's main thread (control API, WorkerDataplane) and its forwarding
// workers. Everything crosses by structured clone on a dedicated MessageChannel; the worker
// drains it synchronously between batches (receiveMessageOnPort), so a diff is applied between
// two batches — never during one.
import type { IrDiffWire } from '../ir/diff-wire.js';
import type { CounterSnapshot, FlowFilter, FlowInfo, TracePacketSpec, TraceResult } from '../core/dataplane-types.js';
import type { PortStats } from '../ports/port.js';
import type { L2Port, Neighbour } from './l2.js';
import type { ObserveEvents, ObserveSpec } from '../observe/types.js';
import type { FlowRecords, ImportStats } from '../core/flow-export.js';
import type { SteerPlan } from './steering.js';
import type { ImageStartResult, WorkerImageInit } from './table-image-file.js';

export interface WorkerPortSpec extends L2Port {
  type: 'tap' | 'afpacket' | 'afxdp';
  ifname: string;
  netns?: string;              // TAP: create the device inside this namespace
  ring?: 'v2' | 'v3';          // AF_PACKET receive ring version (config `ring`)
  rxRing?: number;             // AF_XDP RX/fill ring size (config `rxRing`)
  xdpMode?: 'native' | 'generic'; // AF_XDP: where the XDP program runs (config `xdpMode`)
  offloads?: boolean;          // finish offloaded frames in the port (config `offloads`, default on)
  persist?: boolean;           // TAP: persistent device, re-attached on start (config `persist`)
  mtu?: number;                // TAP: the device's MTU (config `mtu`); absent: the kernel's
  deviceMac?: string;          // TAP: the kernel side's MAC (a host port: the uplink's, so the
                               // node keeps one MAC on the wire)
  probe: string[];             // pods configured without a MAC, routes' via next hops: resolved by ARP/NS here
  optional?: boolean;          // a saved runtime port at start: one that cannot be opened is left
                               // out (its pod went away), not a failed start
  absent?: boolean;            // a config-file port whose interface is missing at start: not
                               // opened; what is routed to it is dropped (port_absent) until
                               // the daemon opens it (addPort)
  fanout?: { group: number;    // AF_PACKET: opened by every worker in this PACKET_FANOUT group
    xsk?: SharedArrayBuffer };   // AF_XDP: worker 0's port handle (Int32 [0]), whose XDP program
                                 // and XSKMAP the other workers' ports join with their queues
}

export interface WorkerInit {
  worker: number;
  workers: number;             // how many workers the daemon runs
  ports: WorkerPortSpec[];
  nodeAddresses: string[];
  core: { flows?: number; batchMax?: number; timeouts?: Record<string, number>; wasmPath?: string; hugePages?: boolean;
    /** Several workers: the reject rate limit's node-wide block (src/core/shared-reject-limit.ts). */
    rejectLimit?: SharedArrayBuffer };
  probeIntervalMs: number;
  /** Adaptive busy-poll: keep polling this long after the last frame before blocking (0: never spin). */
  busyPollUs?: number;
  /** The established-flow path in the kernel behind the worker's AF_XDP ports (kernel-path.ts). */
  kernelPath?: { capacity: number; lifetimeMs: number };
  /** The worker thread's nice value (src/daemon/thread-priority.ts); 0/absent: unchanged. */
  workerNice?: number;
  /** SCHED_FIFO priority of the worker thread (1..99); 0/absent: normal scheduling. */
  workerRealtimePriority?: number;
  /** The CPU the worker thread is pinned to (config `workerCpus`); absent: not pinned. */
  cpu?: number;
  /** Learned neighbours stay reachable this long after they were last heard from, then are
   * re-verified by unicast probes (NeighbourCache). Default 30 s. */
  neighbourReachableMs?: number;
  /** Which frontend addresses the uplinks answer ARP/ND for, besides the node addresses. Default: none. */
  announce?: { loadBalancerIPs: boolean; externalIPs: boolean };
  portBackend: 'auto' | 'native' | 'relay';
  /** Open ports inside this namespace (used when the daemon process itself is not inside the
   * namespace that holds the interfaces — in-process tests). */
  portNetns?: string;
  /** Start with forwarding held (no port is read) until a `forward` message: the daemon first
   * restores state, neighbours and flows (docs/running.md, restarts). */
  startHeld?: boolean;
  /** Several workers share the (fanout) ports: the rings frames are handed over by (steering.ts). */
  steer?: SteerPlan;
  /** Resume from this worker's table image when it matches (table-image-file.ts): forwarding
   * then starts before the control plane has restored, even with startHeld. */
  image?: WorkerImageInit;
}

export type ToWorker =
  | { type: 'apply'; id: number; diff: IrDiffWire }       // decodeDiff() gives the IrDiffData
  | { type: 'counters'; id: number }
  | { type: 'conntrack'; id: number; filter?: FlowFilter }
  | { type: 'trace'; id: number; spec: TracePacketSpec }
  | { type: 'ports'; id: number }
  | { type: 'addPort'; id: number; spec: WorkerPortSpec }
  // absent: a config-file port closed while its interface is gone; its index stays in the tables,
  // so what is routed to it is dropped and counted (slowpath_port_absent) until it is added again
  | { type: 'removePort'; id: number; index: number; absent?: boolean }
  | { type: 'setPortMtu'; id: number; index: number; mtu: number } // read by the main thread (a TAP in a pod's namespace)
  | { type: 'forgetNeighbour'; id: number; addr: string }
  | { type: 'observe-start'; id: number; spec: ObserveSpec }   // live trace / capture (src/observe)
  | { type: 'observe-stop'; id: number; session: number }
  | { type: 'nodeAddresses'; id: number; addresses: string[] } // answered on uplinks from now on
  | { type: 'stop'; id: number }
  | { type: 'exportFlows'; id: number }
  | { type: 'importFlows'; id: number; records: FlowRecords; extraAgeMs: number; neighbours: Neighbour[] }
  | { type: 'forward'; id: number; on: boolean }
  | { type: 'steerPeers'; id: number; wakers: number[] }        // every worker's native waker, by index
  // at a clean stop, forwarding paused: this worker's table image to dir (table-image-file.ts)
  | { type: 'writeImage'; id: number; dir: string; revision: string; inputsHash: string };

export interface PortInfo { name: string; index: number; mac: string; kind: string; stats: PortStats;
  /** the egress MTU the worker's core checks (the interface's; 0 = unknown, unchecked) */
  mtu?: number }

export type FromWorker =
  // waker: the worker's native waker handle (worker-wake.ts), 0 without native ports
  | { type: 'ready'; ports: PortInfo[]; waker: number; image?: ImageStartResult }
  // the control plane's first apply over a table image: compared, flows' ids rewritten
  | { type: 'image-caught-up'; result: NonNullable<ImageStartResult['catchUp']> }
  | { type: 'fatal'; message: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'neighbour'; neighbour: Neighbour }
  | { type: 'neighbour-lost'; neighbour: Neighbour }
  | { type: 'observe'; events: ObserveEvents }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> };

export type { CounterSnapshot, FlowInfo, TraceResult, FlowRecords, ImportStats };
