// A bearer token read from a file that is rewritten while wdp runs: the service account's token
// (in-cluster, or a kubeconfig user's `tokenFile` — kubeadm's kube-proxy kubeconfig points at
// /var/run/secrets/kubernetes.io/serviceaccount/token). The kubelet replaces a projected token at
// 80% of its lifetime (bound tokens live ~1 h), so the file is read again, as client-go's
// cached file token source does:
//
// * the token read is used for at most a minute less 10 s, then the file is read again;
// * a 401 answer forgets a token read before that request went out (the next request reads the
//   file: a token rotated since is used at once, not up to a minute later);
// * surrounding whitespace is not part of the token (a file written with a trailing newline);
// * a file that cannot be read (mid-rotation, or gone) keeps the last good token; with none, the
//   `fallback` (a kubeconfig's `token` beside its `tokenFile`), and without that the request fails
//   with the reason.
// The cost: one small synchronous read per request at most once a minute.
import type { User } from '@kubernetes/client-node';
import { InputFileError, readInputFile } from '../util/input-file.js';

/** The largest token file read (a bound service-account token is ~1 KB). */
const MAX_TOKEN_FILE = 1 << 20;

/** The authProvider name that marks a user whose token comes from a TokenFile. */
export const TOKEN_FILE_PROVIDER = 'wdp-token-file';

export class TokenFile {
  private token: string | null = null;
  private readAt = 0;

  constructor(
    readonly path: string, private readonly fallback?: string,
    private readonly periodMs = 60_000, private readonly leewayMs = 10_000, private readonly now = Date.now,
  ) {}

  /** The token to send now (throws when the file never gave one). */
  current(): string {
    if (this.token !== null && this.now() < this.readAt + this.periodMs - this.leewayMs) return this.token;
    let text: string;
    // (bounded: a token is a few KB; /dev/zero or a wrong file must not fill the heap)
    try { text = readInputFile(this.path, MAX_TOKEN_FILE, `the token file ${this.path}`).trim(); } catch (e) {
      return this.lastGood(e instanceof InputFileError ? e.message : `cannot read the token file ${this.path}: ${(e as Error).message}`);
    }
    if (!text) return this.lastGood(`the token file ${this.path} is empty`);
    // an Authorization header cannot carry control characters (Node refuses to send it)
    if (/[^\t\x20-\x7e\x80-\xff]/.test(text)) return this.lastGood(`the token file ${this.path} holds characters a bearer token cannot have`);
    this.token = text;
    this.readAt = this.now();
    return text;
  }

  private lastGood(why: string): string {
    if (this.token !== null) return this.token;
    if (this.fallback) return this.fallback;
    throw new Error(why);
  }

  /** A request sent at `sentAt` got 401: a token read before then is not used again. */
  reset(sentAt: number): void {
    if (this.readAt <= sentAt) { this.token = null; this.readAt = 0; }
  }
}

/** A KubeConfig authenticator (addAuthenticator) sending `file`'s token for users marked with
 * TOKEN_FILE_PROVIDER. */
export function tokenFileAuthenticator(file: TokenFile) {
  return {
    isAuthProvider: (user: User) => (user?.authProvider as { name?: string } | undefined)?.name === TOKEN_FILE_PROVIDER,
    applyAuthentication: async (_user: User, opts: { headers?: Record<string, unknown> }) => {
      opts.headers ??= {};
      opts.headers.Authorization = `Bearer ${file.current()}`;
    },
  };
}
