// Closing an HTTP API in bounded time. A fastify close stops accepting, closes the idle
// keep-alive connections and answers 503 to new requests on open ones (return503OnClosing), but
// waits for every request in flight: an apply waiting on a hung worker, a body that never finishes
// arriving, a live trace or capture that runs for an hour. Given `graceMs`, the close lets those
// finish on their own; then answers each one not yet answered 503 (a Kubernetes Status naming
// why), ends the streams already under way (their answers begun: hijacked replies) and closes
// every connection. What the handlers still do after that goes nowhere (the reply is taken over).
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The time in-flight requests get at a close before they are answered 503 (the daemon's stop:
 * well inside a pod's termination grace period with the rest of the stop). */
export const API_CLOSE_GRACE_MS = 2_000;

/** How a bounded close went: the requests answered 503 (`answered`) and the streams ended
 * (`ended`) at the end of the grace. */
export interface BoundedCloseResult { answered: number; ended: number }

export class InFlightRequests {
  private readonly replies = new Set<FastifyReply>();

  /** Tracks `app`'s requests from their headers on (before their body is read). */
  constructor(app: FastifyInstance) {
    app.addHook('onRequest', async (_req, reply) => {
      this.replies.add(reply);
      reply.raw.once('close', () => this.replies.delete(reply));
    });
  }

  get size(): number { return this.replies.size; }

  /** Closes `app`: the requests in flight get `graceMs`, then those not answered are answered
   * `answer` (503), the streams are ended and every connection is closed. */
  async close(app: FastifyInstance, graceMs: number, answer: () => Record<string, unknown>): Promise<BoundedCloseResult> {
    const result: BoundedCloseResult = { answered: 0, ended: 0 };
    const closing = app.close();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); });
    const late = await Promise.race([closing.then(() => false), graceOver]);
    clearTimeout(timer);
    if (late) {
      const body = JSON.stringify(answer());
      for (const reply of this.replies) {
        const raw = reply.raw;
        if (raw.writableEnded || raw.destroyed) continue;
        if (!raw.headersSent) {
          // taken over: the handler's own answer, if it ever comes, is not sent
          if (!reply.sent) reply.hijack();
          raw.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
          raw.end(body);
          result.answered++;
        } else {
          raw.end();
          result.ended++;
        }
      }
      // the answers just written leave before their connections are closed
      await new Promise((r) => setImmediate(r));
      app.server.closeAllConnections();
    }
    await closing;
    return result;
  }
}
