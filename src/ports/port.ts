// What a forwarding worker needs from a port. Implementations: native TAP and AF_PACKET
// (src/ports/native.ts, backed by the Rust addon in native/), pcap files (src/ports/pcap.ts).
//
// The contract is batch-at-a-time and copy-once: rxBurst writes frames straight into the core's
// packet arena slots and fills the descriptors (D_LEN, D_IN_PORT); txBurst sends every frame of
// the batch whose verdict is V_FORWARD or V_REJECT and whose D_OUT_PORT equals this port's index.
// `memory` is the Wasm memory's current ArrayBuffer (pass it on every call: it changes on grow).
export interface BurstArea {
  memory: ArrayBuffer | SharedArrayBuffer;
  arenaOff: number;   // byte offset of slot 0
  slotSize: number;
  descOff: number;    // byte offset of descriptor 0
}

export interface PortStats { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; rxDropped: number; txErrors: number; oversize: number }

export interface Port {
  readonly name: string;
  readonly index: number;            // dataplane port index written into D_IN_PORT / read from D_OUT_PORT
  readonly mac: Uint8Array;          // 6 bytes
  /** Receive up to `max` frames into slots first..first+max-1. Returns how many. Never blocks. */
  rxBurst(area: BurstArea, first: number, max: number): number;
  /** Send the frames among the first `count` descriptors that are for this port. Returns how many went out. */
  txBurst(area: BurstArea, count: number): number;
  /** File descriptor a worker can poll on (native ports), or -1. */
  readonly fd: number;
  stats(): PortStats;
  /** removeInterface: also delete an interface that would outlive the port (a persistent TAP);
   * ports without such an interface ignore it. */
  close(opts?: { removeInterface?: boolean }): void;
}
