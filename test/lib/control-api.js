// A control API over a fresh in-process dataplane for one test, and a request helper that sends
// bodies as JSON (the API refuses other content types) and parses the answer.
import { createControlPlane } from '../../dist/src/api/server.js';
import { LocalDataplane } from '../../dist/src/core/dataplane.js';

export async function startApi(t, opts = {}) {
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, ...opts });
  t.teardown(() => cp.close());
  const req = async (method, path, body, headers = {}) => {
    const r = await fetch(cp.url + path, { method, body, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } });
    const text = await r.text();
    let json; try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text };
  };
  return { cp, dp, req };
}
