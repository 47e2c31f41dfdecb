// Conntrack timeouts, shared by the host (written into CFG_TO_*) and the reference model, so a
// default Core and a default model agree. Modelled on Linux nf_conntrack / kube-proxy defaults:
// an idle established TCP flow is kept 24 h, kube-proxy's --conntrack-tcp-timeout-established
// (the kernel's own 5 days shortened the way kube-proxy shortens it), so a connection idle for
// hours through wdp lives exactly as long as through kube-proxy. kube-proxy sets no SCTP
// timeout: the SCTP ones are the kernel's nf_conntrack_proto_sctp defaults.
export interface Timeouts {
  tcpSynMs: number; tcpEstablishedMs: number; tcpCloseMs: number;
  udpMs: number; udpRepliedMs: number;
  /** An established SCTP association (COOKIE-ACK seen; the kernel's ESTABLISHED, 210 s: its
   *  HEARTBEATs, every 30 s by default, keep an idle one alive). */
  sctpMs: number;
  /** SCTP COOKIE_WAIT (INIT-ACK seen) and COOKIE_ECHOED (the kernel's 3 s each). */
  sctpHandshakeMs: number;
  /** SCTP SHUTDOWN_SENT / SHUTDOWN_RECD / SHUTDOWN_ACK_SENT (the kernel's 3 s each). */
  sctpShutdownMs: number;
  /** SCTP CLOSED: an INIT not answered yet, an ABORT, a SHUTDOWN-COMPLETE (the kernel's 10 s). */
  sctpClosedMs: number;
  /** SCTP HEARTBEAT_SENT: a flow picked up by a HEARTBEAT, not answered yet (the kernel's 30 s). */
  sctpHeartbeatMs: number;
  /** TCP flows not confirmed in both directions: SYN-ACK seen (the kernel's SYN_RECV, 60 s) or
   *  picked up mid-stream and not yet answered. */
  tcpUnconfirmedMs: number;
  /** Established TCP after a FIN from one side only: the other side may go on sending (the
   *  kernel's FIN_WAIT / CLOSE_WAIT; kube-proxy's --conntrack-tcp-timeout-close-wait, 1 h). */
  tcpHalfClosedMs: number;
  /** How long a first fragment's ports are remembered for the fragments after it (the kernel
   *  waits up to 30 s to reassemble; fragments of one datagram arrive within milliseconds). */
  fragmentMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  tcpSynMs: 60_000, tcpEstablishedMs: 24 * 3600_000, tcpCloseMs: 10_000,
  udpMs: 30_000, udpRepliedMs: 120_000,
  sctpMs: 210_000, sctpHandshakeMs: 3_000, sctpShutdownMs: 3_000, sctpClosedMs: 10_000, sctpHeartbeatMs: 30_000,
  tcpUnconfirmedMs: 60_000,
  tcpHalfClosedMs: 3600_000,
  fragmentMs: 5_000,
};
