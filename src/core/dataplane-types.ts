// The dataplane as the control layer sees it. Implementations:
//   LocalDataplane  (src/core/dataplane.ts)  — a Core in this thread (tests, demo, bench)
//   WorkerDataplane (src/daemon/)            — Cores in forwarding worker threads
// The API server and CLI only use this interface.
import type { Ir, Proto } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';

export interface CounterSnapshot {
  generation: number;
  global: Record<string, number>;          // GC_* names lower-cased without prefix: rx_packets, ct_active, ...
  reasons: Record<string, number>;         // reason name -> packets (e.g. drop_truncated_l2, reject_no_endpoints)
  frontends: Record<number, { packets: number; bytes: number }>;  // by frontend id
  backends: Record<number, { packets: number; bytes: number }>;   // by backend id
  /** With several workers: each worker's own global counters and reasons (the fields above are
   * their sums), e.g. to see how fanout spread the traffic and what each handed over. */
  workers?: Array<{ worker: number; global: Record<string, number>; reasons: Record<string, number> }>;
}

export interface FlowInfo {
  flow: number;
  proto: Proto | 'OTHER';
  family: 4 | 6;
  client: string; clientPort: number;
  vip: string; vipPort: number;
  backend: string; backendPort: number;
  natSource?: string; natSourcePort?: number;   // when masqueraded / hairpin SNAT
  state: string;                                 // tcp_syn | tcp_syn_recv | tcp_midstream | tcp_established | tcp_half_closed_client | tcp_half_closed_backend | tcp_closing | udp | udp_replied |
                                                 // sctp_closed | sctp_cookie_wait | sctp_cookie_echoed | sctp_established | sctp_shutdown | sctp_shutdown_ack_sent | sctp_heartbeat_sent
  frontendId: number; backendId: number;
  ageMs: number; idleMs: number;
  flags: string[];                               // snat, replied, affinity, fallback, confirmed, hairpin, node
  /** Its backend left the endpoints (no id names it: backendId 0 — and frontendId 0 once its
   * Service port is gone too); it goes on to `backend`, or is re-selected by its next packet
   * (docs/core.md "Original-direction hit"). */
  backendLeft?: true;
}

export interface FlowFilter {
  service?: string; frontendId?: number; backend?: string; client?: string; proto?: Proto; limit?: number;
  includeExpired?: boolean;   // also list entries past their timeout that expiry has not freed yet
}

export interface TracePacketSpec {
  src: string; dst: string; proto: Proto | 'ICMP';
  sport?: number; dport?: number;
  tcpFlags?: string;        // e.g. "S", "A", "SA", "R", "F" (default "S")
  inPort?: number;          // dataplane port index the packet arrives on (default 0)
  srcMac?: string; dstMac?: string;
}

export interface TraceResult {
  verdict: 'drop' | 'forward' | 'reject' | 'to_host';
  reason: string;
  outPort: number | null;
  stages: string[];          // e.g. ["parsed","service_match","ct_new","backend_selected","dnat"]
  frontend?: { id: number; service: string; portName: string; kind: string; addr: string; port: number };
  backend?: { id: number; addr: string; port: number; state: string };
  conntrack: string;         // none | hit_orig | hit_reply | new | reselect
  selection: string;         // none | maglev | affinity | fallback_terminating | existing
  hash: number;
  output?: { src: string; dst: string; sport?: number; dport?: number; hex: string };
}

/** What an apply returns: the generation now in force, and when the last part of the dataplane
 * switched to it (process.hrtime.bigint() as a number of ns: the monotonic clock every thread of
 * the process shares) — packets see the change from then on. */
export interface Programmed { generation: number; programmedAtNs: number }

export interface Dataplane {
  /** Apply a diff (and remember `ir` as the new whole state). Atomic: a batch sees old or new. */
  /** Programs `diff` (`ir` is the whole Ir after it). `undo`, when given, is the diff back to the
   * state before: a dataplane that can fail part-way (several workers) uses it to put the parts
   * that took the diff back, so a refused apply leaves every part on the previous tables. */
  apply(diff: IrDiff, ir: Ir, undo?: IrDiff): Promise<Programmed>;
  counters(): Promise<CounterSnapshot>;
  conntrack(filter?: FlowFilter): Promise<FlowInfo[]>;
  trace(spec: TracePacketSpec): Promise<TraceResult>;
  generation(): number;
  close(): Promise<void>;
}
