// The classic BPF program of a fanout group (src/ports/fanout-program.ts) must compute the owner
// the core's steer() computes for the same address (assembly/owner.ts), or frames land on a worker
// that then hands them over. Run here by a small interpreter of the instructions it uses, against
// the core, for random IPv4 addresses and worker counts; non-IPv4 frames go to worker 0.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { fanoutProgram } from '../dist/src/ports/fanout-program.js';
import { frame } from '../dist/src/packet/build.js';
import { irFrom, mkCore } from './lib/core-fixture.js';

/** Runs a classic BPF program over an IP packet (the network header at 0) of protocol `proto`;
 * returns what the kernel's fanout takes modulo the members. Only what the program may use. */
function runCbpf(prog, ip, proto) {
  const dv = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const pkt = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
  let A = 0, X = 0;
  for (let pc = 0; pc < prog.length / 8;) {
    const code = dv.getUint16(pc * 8, true), jt = dv.getUint8(pc * 8 + 2), jf = dv.getUint8(pc * 8 + 3), k = dv.getUint32(pc * 8 + 4, true);
    pc++;
    switch (code) {
      case 0x28: if (k !== 0xfffff000) throw new Error(`ldh ${k}`); A = proto; break;     // ld h [SKF_AD_PROTOCOL]
      case 0x20: A = pkt.getUint32(k - 0xfff00000); break;                                 // ld w [SKF_NET_OFF + k]
      case 0x15: pc += A === k ? jt : jf; break;                                           // jeq #k
      case 0x07: X = A; break;                                                             // tax
      case 0x74: A = A >>> k; break;                                                       // rsh #k
      case 0xac: A = (A ^ X) >>> 0; break;                                                 // xor x
      case 0x24: A = Math.imul(A, k) >>> 0; break;                                         // mul #k
      case 0x16: return A;                                                                 // ret a
      case 0x06: return k;                                                                 // ret #k
      default: throw new Error(`instruction 0x${code.toString(16)} not interpreted`);
    }
  }
  throw new Error('fell off the end');
}

test('the fanout program picks the worker the core names as owner, on uplinks (source) and pod ports (destination)', (t) => {
  const ir = irFrom({ frontends: [], backends: [] });
  let seed = 12345;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  for (const workers of [2, 3, 5]) {
    const core = mkCore(ir, { steer: { workers, self: 0 } });
    for (let i = 0; i < 300; i++) {
      // unicast, not 0.x or multicast/broadcast (those the core drops before steering)
      const a = ((rnd() & 0x7effffff) | 0x01000000) >>> 0, b = ((rnd() & 0x7effffff) | 0x01000000) >>> 0;
      const ipOf = (x) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
      const f = frame({ src: ipOf(a), dst: ipOf(b), proto: 'UDP', sport: 1000 + (i & 1023), dport: 2000 });
      // no frontend, no SNAT address: the core keys the frame by its destination address
      core.writeFrame(0, f, 0);
      core.steer(0, 1);
      const v = core.descriptor(0).verdict;
      const owner = v === L.STEER_LOCAL ? 0 : v;
      const ip = f.subarray(14);
      t.is(runCbpf(fanoutProgram('dst'), ip, 0x0800) % workers, owner, `dst ${ipOf(b)}, ${workers} workers`);
      // the source on an uplink: the same function of the other address
      const g = frame({ src: ipOf(b), dst: ipOf(a), proto: 'UDP', sport: 1, dport: 2 });
      t.is(runCbpf(fanoutProgram('src'), g.subarray(14), 0x0800) % workers, owner);
    }
  }
  t.is(runCbpf(fanoutProgram('src'), new Uint8Array(40), 0x0806), 0, 'ARP: worker 0');
  t.is(runCbpf(fanoutProgram('dst'), new Uint8Array(40), 0x86dd), 0, 'IPv6: worker 0');
});
