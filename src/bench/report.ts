// Human-facing output of `wdp bench`: Markdown tables on stdout, progress on stderr. Machines use
// --json instead, so nothing here may write to stdout except the final table.

export interface ProgressSink { write(s: string): unknown; isTTY?: boolean }

/** Progress reporting for steps longer than about a second. On a terminal: one redrawn bar line
 * (throttled to ~10 redraws/s so drawing costs nothing measurable next to the work). Not on a
 * terminal (CI logs, tests): one line per finished step, no carriage returns. Disabled: silent. */
export class Progress {
  private readonly out: ProgressSink;
  private readonly tty: boolean;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly enabled = true, out: ProgressSink = process.stderr) {
    this.out = out;
    this.tty = Boolean(out.isTTY);
  }

  /** A counted step: call tick() as units finish. */
  bar(label: string, total: number): { tick(n?: number): void; done(note?: string): void } {
    let doneUnits = 0;
    const t0 = Date.now();
    const draw = (force: boolean) => {
      if (!this.enabled || !this.tty) return;
      const now = Date.now();
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(`\r${renderBar(label, doneUnits, total, (now - t0) / 1000)}\x1b[K`);
    };
    draw(true);
    // a unit can take minutes (one 100k-service compile): keep the elapsed time moving meanwhile
    const clock = this.enabled && this.tty ? setInterval(() => draw(true), 500) : undefined;
    clock?.unref();
    return {
      tick: (n = 1) => { doneUnits = Math.min(total, doneUnits + n); draw(false); },
      done: (note?: string) => {
        if (clock) clearInterval(clock);
        doneUnits = total;
        if (!this.enabled) return;
        const secs = (Date.now() - t0) / 1000;
        if (this.tty) this.out.write(`\r${renderBar(label, total, total, secs)}${note ? ' ' + note : ''}\x1b[K\n`);
        else this.out.write(`${label}: done in ${secs.toFixed(1)} s${note ? ' — ' + note : ''}\n`);
      },
    };
  }

  /** A single opaque step (one tool invocation): shows elapsed time while it runs. */
  async step<T>(label: string, work: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    if (this.enabled && this.tty) {
      const frames = ['|', '/', '-', '\\'];
      let i = 0;
      this.timer = setInterval(() => {
        this.out.write(`\r${frames[i++ % 4]} ${label} ${((Date.now() - t0) / 1000).toFixed(1)} s\x1b[K`);
      }, 250);
    }
    try {
      const r = await work();
      this.finish(label, t0, 'ok');
      return r;
    } catch (e) {
      this.finish(label, t0, 'failed');
      throw e;
    }
  }

  note(msg: string): void { if (this.enabled) this.out.write(`${msg}\n`); }

  private finish(label: string, t0: number, how: string): void {
    if (this.timer) { clearInterval(this.timer); this.timer = undefined; }
    if (!this.enabled) return;
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    this.out.write(`${this.tty ? '\r' : ''}${label}: ${how} in ${secs} s${this.tty ? '\x1b[K' : ''}\n`);
  }
}

export function renderBar(label: string, done: number, total: number, secs: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(frac * width);
  return `${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${done}/${total} ${secs.toFixed(1)} s`;
}

export type Cell = string | number | null | undefined | boolean;

/** Formats a figure for people: 3 significant digits, thousands kept readable; null as "n/a". */
export function fmt(v: Cell): string {
  if (v === null || v === undefined) return 'n/a';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 1) return v.toPrecision(3).replace(/\.?0+$/, (m) => (m.startsWith('.') ? '' : m));
  if (a === 0) return '0';
  return v.toPrecision(3);
}

function escapeCell(s: string): string { return s.replace(/\|/g, '\\|').replace(/\n/g, ' '); }

/** A GitHub-flavoured Markdown table with padded columns; numeric columns right-aligned. */
export function mdTable(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => headers.map((_, i) => escapeCell(fmt(r[i]))));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined));
  const width = headers.map((h, i) => Math.max(3, h.length, ...text.map((r) => r[i].length)));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i]));
  const lines = [
    `| ${headers.map((h, i) => pad(h, i)).join(' | ')} |`,
    `| ${width.map((w, i) => (numeric[i] ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`,
    ...text.map((r) => `| ${r.map((c, i) => pad(c, i)).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}

/** Two-column "figure | value" table from a flat result object (nested objects skipped). */
export function kvTable(obj: Record<string, unknown>, keys?: string[]): string {
  const ks = keys ?? Object.keys(obj).filter((k) => { const v = obj[k]; return v === null || typeof v !== 'object'; });
  return mdTable(['figure', 'value'], ks.map((k) => [k, obj[k] as Cell]));
}

export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The median of `xs` (the mean of the middle two for an even count; NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
