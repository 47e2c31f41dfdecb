// What live trace and capture sessions are, and what they report (shared by the worker, the
// worker dataplane, the API routes and the CLI).
import type { FlowInfo, TraceResult } from '../core/dataplane-types.js';
import type { PacketFilter } from './filter.js';

export type ObserveSpec =
  | { kind: 'trace'; session: number; filter: PacketFilter; rate: number }
  | { kind: 'capture'; session: number; filter: PacketFilter; port: number; direction: 'in' | 'out' | 'both'; snaplen: number };

type DistributiveOmitSession<T> = T extends unknown ? Omit<T, 'session'> : never;
/** A live trace or capture without its session number (the dataplane assigns it). */
export type ObserveRequest = DistributiveOmitSession<ObserveSpec>;

export interface TupleView { src: string; dst: string; proto: string; sport?: number; dport?: number }

/** One traced packet: the dry-run trace's explanation plus what only a real packet has. */
export interface LiveTraceEvent extends TraceResult {
  time: string;              // ISO time the batch was processed
  worker: number;            // forwarding worker that processed it
  inPort: number;            // dataplane port index it arrived on
  input: TupleView;          // addresses/ports before translation (`output` is after)
  maglevSlot?: number;       // Maglev table slot the hash picked (selection "maglev")
  flow?: FlowInfo;           // the conntrack entry after this packet (hit or created)
}

export interface CapturedFrame { tsNs: bigint; dir: 'in' | 'out'; origLen: number; data: Uint8Array }

/** One message per batch and session from a worker. */
export interface ObserveEvents { session: number; worker: number; trace: LiveTraceEvent[]; frames: CapturedFrame[] }
