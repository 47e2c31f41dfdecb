// Names of enums defined in assembly/layout.ts, derived from the constant names so the layout file
// stays the one place they are defined (REASON_DROP_TRUNCATED_L2 -> "drop_truncated_l2").
import * as L from '../../assembly/layout.js';

function enumNames(prefix: string, exclude: string[] = []): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(L)) {
    if (!k.startsWith(prefix) || exclude.includes(k) || typeof v !== 'number') continue;
    out[v] = k.slice(prefix.length).toLowerCase();
  }
  return out;
}

/** reason code -> name; holes (reserved codes) are undefined. */
export const REASON_NAMES: string[] = enumNames('REASON_', ['REASON_COUNT']);
/** global counter index -> name (rx_packets, ct_active, ...). */
export const GLOBAL_COUNTER_NAMES: string[] = enumNames('GC_', ['GC_COUNT']);
export const VERDICT_NAMES = ['drop', 'forward', 'reject', 'to_host'] as const;
export type VerdictName = (typeof VERDICT_NAMES)[number];
export const CT_STATE_NAMES = ['none', 'tcp_syn', 'tcp_established', 'tcp_closing', 'udp', 'udp_replied', 'sctp_established',
  'tcp_syn_recv', 'tcp_midstream', 'tcp_half_closed_client', 'tcp_half_closed_backend',
  'sctp_closed', 'sctp_cookie_wait', 'sctp_cookie_echoed', 'sctp_shutdown', 'sctp_shutdown_ack_sent', 'sctp_heartbeat_sent'];
export const BACKEND_STATE_NAMES = ['absent', 'ready', 'terminating_serving', 'not_serving'];
export const TRACE_CT_NAMES = enumNames('TRCT_');
export const TRACE_SELECT_NAMES = enumNames('TRSEL_');

/** stage bit -> name, in bit order. */
export const TRACE_STAGE_NAMES: Array<[number, string]> = Object.entries(L)
  .filter(([k, v]) => k.startsWith('TS_') && typeof v === 'number')
  .map(([k, v]) => [v as number, k.slice(3).toLowerCase()] as [number, string])
  .sort((a, b) => a[0] - b[0]);

export const CT_FLAG_NAMES: Array<[number, string]> = [
  [L.CTF_SNAT, 'snat'], [L.CTF_REPLIED, 'replied'], [L.CTF_AFFINITY, 'affinity'], [L.CTF_FALLBACK, 'fallback'],
  [L.CTF_CONFIRMED, 'confirmed'], [L.CTF_HAIRPIN, 'hairpin'],
  // the node itself is the flow's client or backend: its packets keep their TTL (docs/core.md "Time exceeded")
  [L.FLOW_NODE, 'node'],
];

export function reasonName(code: number): string {
  return REASON_NAMES[code] ?? `reason_${code}`;
}

export function stageNames(bits: number): string[] {
  return TRACE_STAGE_NAMES.filter(([b]) => (bits & b) !== 0).map(([, n]) => n);
}
