// One service port's candidate backends, as compileService collects them from the port's
// EndpointSlices (deduplicated, in listed order) and hands them to a ServiceSink.
import type { Family } from '../ir/ir.js';
import type { NextHop } from './next-hops.js';
import { dropRefs } from './service-output.js';

/** One service port's candidate backends, by column: scratch reused for every port, so a full
 * compile makes no object per endpoint (100k short-lived objects would be ~11 MB of garbage a
 * compile). */
export class Candidates {
  n = 0;
  readonly id: number[] = []; readonly addr: string[] = []; readonly port: number[] = []; readonly family: Family[] = [];
  // the IPv4 address as an int32 (0 for IPv6): the duplicate check compares these before the strings,
  // which are distinct objects even when equal (a content compare each: ~450k at 10k x 10)
  readonly key: number[] = [];
  readonly state: number[] = []; readonly node: Array<string | undefined> = []; readonly zone: Array<string | undefined> = [];
  readonly hop: Array<NextHop | null> = [];
  // the endpoint's hints.forZones / hints.forNodes (the model's arrays)
  readonly zoneHints: Array<string[] | undefined> = []; readonly nodeHints: Array<string[] | undefined> = [];
  // the endpoint's terminating condition: which of two copies of one address wins (compiler.ts)
  readonly terminating: boolean[] = [];
  push(id: number, addr: string, key: number, port: number, family: Family, state: number, terminating: boolean, node: string | undefined, zone: string | undefined, hop: NextHop | null, zoneHints: string[] | undefined, nodeHints: string[] | undefined): void {
    const i = this.n++;
    this.id[i] = id; this.addr[i] = addr; this.key[i] = key; this.port[i] = port; this.family[i] = family; this.state[i] = state;
    this.terminating[i] = terminating; this.node[i] = node; this.zone[i] = zone; this.hop[i] = hop; this.zoneHints[i] = zoneHints; this.nodeHints[i] = nodeHints;
  }
  /** Candidate i takes another copy's conditions, node and hints (same address, port and id). */
  retake(i: number, state: number, terminating: boolean, node: string | undefined, zone: string | undefined, zoneHints: string[] | undefined, nodeHints: string[] | undefined): void {
    this.state[i] = state; this.terminating[i] = terminating; this.node[i] = node; this.zone[i] = zone; this.zoneHints[i] = zoneHints; this.nodeHints[i] = nodeHints;
  }
  /** Drops the references (strings, next hops) so scratch holds nothing between compiles. */
  release(): void {
    this.n = 0;
    dropRefs(this.addr, ''); dropRefs(this.node, undefined); dropRefs(this.zone, undefined); dropRefs(this.hop, null); dropRefs(this.zoneHints, undefined); dropRefs(this.nodeHints, undefined);
  }
}
