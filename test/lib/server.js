// One way for a test to start the control plane: the HTTP API over a LocalDataplane (a Core in
// the test's thread) on an ephemeral loopback port, closed when the test ends.
import { createControlPlane } from '../../dist/src/api/server.js';
import { LocalDataplane } from '../../dist/src/core/dataplane.js';

/**
 * Starts a control plane with `opts` (createControlPlane's options; healthz off unless given) and
 * returns { cp, dp, req, close }. req(method, path, body?, headers?) answers { status, json, text,
 * headers } (json undefined when the body is not JSON), sends a body as application/json unless
 * headers say otherwise, and sends opts.token as a bearer token.
 * close() is idempotent and also runs at t.teardown.
 */
export async function startControlPlane(t, opts = {}) {
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, ...opts });
  let closed = false;
  const close = async () => { if (!closed) { closed = true; await cp.close(); } };
  t.teardown(close);
  const auth = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const req = async (method, path, body, headers = {}) => {
    // bodies go as JSON: the API refuses other content types (a browser's text/plain, forms)
    const r = await fetch(cp.url + path, { method, body, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...auth, ...headers } });
    const text = await r.text();
    let json; try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, headers: r.headers };
  };
  return { cp, dp, req, close };
}
