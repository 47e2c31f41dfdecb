// traceroute output read by the e2e-traceroute tests.

/** The address each hop answered from ('*' for none), by hop number, from traceroute -n -q 1 output. */
export function hops(out) {
  const m = new Map();
  for (const line of out.split('\n')) {
    const h = line.match(/^\s*(\d+)\s+(\S+)/);
    if (h) m.set(Number(h[1]), h[2]);
  }
  return m;
}
