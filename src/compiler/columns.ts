// What the column stores (backend-table.ts, frontend-table.ts) share: ids live in chunks of
// 2^bits rows, and a row is present when its family column is not 0.

/** The service port a frontend or backend belongs to: the compiler makes one per service port it
 * compiles and hands the same object to both tables for every row of that port. */
export interface PortOwner { readonly service: string; readonly portName: string }

/** The present ids in ascending order, as an array: one pass over the family columns (a
 * generator over 100k ids was ~20 ms). Id 0 is never present. */
export function presentIds(chunks: ReadonlyArray<{ readonly family: Uint8Array }>, chunkBits: number, count: number): number[] {
  const out = new Array<number>(count), size = 1 << chunkBits;
  let n = 0;
  for (let k = 0; k < chunks.length; k++) {
    const fam = chunks[k].family, base = k * size;
    for (let i = k === 0 ? 1 : 0; i < size; i++) if (fam[i] !== 0) out[n++] = base + i;
  }
  return out;
}
