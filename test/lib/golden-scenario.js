// The golden scenarios' runner (test/golden-core.test.js): a scenario is data —
//   { tables: Ir, opts?: core/model options,
//     steps: [{ label, in: frame, expect, inPort?, now? } | { apply: Ir } | { check: (state) => void }] }
// — and runScenario() puts every step's frame through both the Wasm core and the reference model
// over the same tables, asserting on each the expected verdict, reason, out port and (when given)
// the output bytes, and verifying every forwarded or rejected frame's checksums from scratch.
// `{ apply: Ir }` switches both to new tables mid-scenario; `{ check }` asserts on the core's and
// the model's state ({ core, model, out }) at that point. Expected frames are built
// independently with src/packet/build.ts, never with the core or the model.
import { Core } from '../../dist/src/core/host.js';
import { ReferenceModel } from '../../dist/src/reference/model.js';
import * as B from '../../dist/src/packet/build.js';
import { verifyChecksums } from '../../dist/src/packet/checksum.js';
import { summarize, MAC, L } from './packets.js';

export const CLIENT_PORT = 3;   // dataplane port client frames arrive on (a step's default inPort)
export const BE_PORT = 1;       // backends' out port

// expectations
export const fwd = (outPort, frame) => ({ verdict: 'forward', reason: 'fwd_nat', outPort, frame });
export const reply = (frame) => ({ verdict: 'forward', reason: 'fwd_reply', outPort: CLIENT_PORT, frame });
export const dropped = (reason) => ({ verdict: 'drop', reason });

/** The header fields of the ICMP errors the core builds, as the kernel's icmp_send sets them: TTL
 * 64; IPv4 TOS 0xc0 (precedence internetwork control) with the quoted packet's TOS bits (0x1e), no
 * DF and an ID of its own — a core numbers its IPv4 errors 1, 2, ... from its creation, so one
 * errorHeader(fam) per scenario, called once per expected IPv4 error, in their order. IPv6: hop
 * limit 64, traffic class 0; the flow label is the error's own (answerError). */
export function errorHeader(fam) {
  let n = 0;
  return (quotedTos = 0) => (fam === 4 ? { ttl: 64, tos: 0xc0 | (quotedTos & 0x1e), id: ++n, df: false } : { ttl: 64 });
}

/** The automatic flow labels of the ICMPv6 errors the core builds (assembly/flow-label.ts, as
 * icmp6_send's: one per source, destination, type and code), by "src dst type/code": data, so a
 * change of the rule shows as changed answers here. */
const V6_ERROR_LABELS = {
  'fd00:168::1 fd00:1::5 3/0': 0x4d311,
  'fd00:168::1 fd00::1 3/0': 0xf540f,
  'fd00:172::3 fd00::1 2/0': 0xb3112,
  'fd00:1::1 fd00:1::5 3/0': 0xb8871,
  'fd00:96::a fd00::1 1/4': 0x61fa7,
  'fd00:96::a fd00::1 2/0': 0xc4a5c,
  'fd00:96::a fd00::1 3/0': 0x4e79a,
  'fd00::1 fd00:1::5 2/0': 0x04cbc,
  'fd00::fe fd00::1 3/0': 0x40716,
  'fd00::fe fd00::1 1/4': 0x9b560,
  'fd00:168::1 fd00::1 1/4': 0xbd66e,
  '2001:db8:7::7 fd00::1 1/4': 0xaf5c2,
  'fd00:168::1 fd00:168::1 1/4': 0x741ff,
};
const KIND_TYPE = { port_unreachable: [1, 4], packet_too_big: [2, 0], time_exceeded: [3, 0] };

/** An ICMP error the core answers with (B.icmpError's spec): an IPv6 one with its flow label. */
export function answerError(spec) {
  if (!String(spec.src).includes(':')) return B.icmpError(spec);
  const [type, code] = spec.icmpType !== undefined ? [spec.icmpType, spec.icmpCode ?? 0] : KIND_TYPE[spec.kind];
  const key = `${spec.src} ${spec.dst} ${type}/${code}`;
  const flowLabel = V6_ERROR_LABELS[key];
  if (flowLabel === undefined) {
    throw new Error(`answerError: no flow label for ${key} in V6_ERROR_LABELS`);
  }
  return B.icmpError({ ...spec, flowLabel });
}

// client-side and backend-side frames of one flow
export const cli = (s) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, ...s });
export const toBe = (s) => B.frame({ srcMac: MAC.beSrc, dstMac: MAC.beDst, ...s });
export const fromBe = (s) => B.frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, ...s });
export const toCli = (s) => B.frame({ srcMac: MAC.node, dstMac: MAC.client, ...s });

/** Runs `scenario`'s steps; returns { core, model, out } — out[label]: the core's output bytes. */
export function runScenario(t, { tables, opts = {}, steps }) {
  const core = Core.create({ flows: 4096, batchMax: 64, ...opts });
  core.applyIr(tables);
  const model = new ReferenceModel(tables, { flows: 4096, ...opts });
  const out = {};
  for (const st of steps) {
    if (st.apply) { core.applyIr(st.apply); model.setIr(st.apply); continue; }
    if (st.check) { st.check({ core, model, out }); continue; }
    const { label, expect, inPort = CLIENT_PORT, now = 1000 } = st;
    const input = [{ frame: st.in, inPort }];
    const c = summarize(core.run(input, now)[0]);
    const m = summarize(model.processBatch(input, now)[0]);
    const want = { verdict: expect.verdict, reason: expect.reason, outPort: expect.outPort ?? L.PORT_NONE };
    for (const [who, r] of [['core', c], ['model', m]]) {
      t.deepEqual({ verdict: r.verdict, reason: r.reason, outPort: r.outPort }, want, `${label}: ${who} verdict`);
      if (expect.frame) t.is(r.hex, B.toHex(expect.frame), `${label}: ${who} output bytes`);
      if (r.verdict === 'forward' || r.verdict === 'reject') t.deepEqual(verifyChecksums(B.fromHex(r.hex)), [], `${label}: ${who} checksums`);
    }
    out[label] = B.fromHex(c.hex);
  }
  return { core, model, out };
}
