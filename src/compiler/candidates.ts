// One service port's candidate backends, as compileService collects them from the port's
// EndpointSlices (deduplicated, in listed order) and hands them to a ServiceSink.
import type { Family } from '../ir/ir.js';
import type { EndpointSpec } from '../model/types.js';
import type { NextHop } from './next-hops.js';
import { dropRefs } from './service-output.js';

/** One service port's candidates, by column: scratch reused for every port, so a full
 * compile makes no object per endpoint (100k short-lived objects would be ~11 MB of garbage a
 * compile). What is read of the endpoint only now and then (its node, zone, hints, terminating
 * condition) is read from the endpoint itself (`ep`): five columns fewer to store per endpoint.
 * compileService appends rows by storing into the columns itself (row n, then n + 1): a push()
 * call per endpoint cost while its code was not optimised yet, as in a daemon's one full sync. */
export class Candidates {
  n = 0;
  readonly id: number[] = []; readonly addr: string[] = []; readonly port: number[] = []; readonly family: Family[] = [];
  // the IPv4 address as an int32 (0 for IPv6): the duplicate check compares these before the strings,
  // which are distinct objects even when equal (a content compare each: ~450k at 10k x 10)
  readonly key: number[] = [];
  readonly state: number[] = [];
  readonly hop: Array<NextHop | null> = [];
  // the endpoint whose conditions, node, zone and hints the candidate has: of two copies of one
  // address, the one that wins (compiler.ts)
  readonly ep: Array<EndpointSpec | null> = [];
  /** Candidate i takes another copy's conditions, node and hints (same address, port and id). */
  retake(i: number, state: number, ep: EndpointSpec): void { this.state[i] = state; this.ep[i] = ep; }
  /** Drops the references (strings, next hops, endpoints) so scratch holds nothing between compiles. */
  release(): void {
    this.n = 0;
    dropRefs(this.addr, ''); dropRefs(this.hop, null); dropRefs(this.ep, null);
  }
}
