// What the wire's column lists (backend-columns.ts, frontend-columns.ts) share: the owner
// dictionary their rows name, and the checks a receiver makes of a list before it reads a row
// (a message that does not add up is refused, not decoded into undefined fields or clamped
// slices).

/** The owner (service, port name) dictionary of a column list: one entry per run of rows of the
 * same service port, without a lookup (a list's rows come grouped by service port: a compile
 * emits a port's records together). A port whose rows are not together gets more than one entry,
 * which decodes the same. */
export class OwnerRuns {
  readonly service: string[] = [];
  readonly portName: string[] = [];
  of(service: string, portName: string): number {
    const k = this.service.length - 1;
    if (k >= 0 && this.service[k] === service && this.portName[k] === portName) return k;
    this.service.push(service); this.portName.push(portName);
    return k + 1;
  }
}

/** Whether `at` is n + 1 offsets from 0, never decreasing, to `total`: the row i's part of a
 * joined column is [at[i], at[i + 1]). */
export function offsetsFit(at: ArrayLike<number>, n: number, total: number): boolean {
  if (at.length !== n + 1 || at[0] !== 0 || at[n] !== total) return false;
  for (let i = 0; i < n; i++) if (!(at[i] <= at[i + 1])) return false;
  return true;
}

/** Whether every column of `cols` named in `keys` holds n entries. */
export function columnsHold<C>(cols: C, keys: ReadonlyArray<keyof C>, n: number): boolean {
  for (const k of keys) if ((cols[k] as ArrayLike<unknown> | undefined)?.length !== n) return false;
  return true;
}
