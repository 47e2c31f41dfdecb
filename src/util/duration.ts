// The CLI's one reader of duration flags (`wdp demo --duration`, `get counters --rate`, `trace
// --live --duration`, `capture --duration`, the `wdp bench` times): Go's form, as kube-proxy's
// flags and wdp's config take them — one or more number+unit parts ("1m30s", "500ms", "1.5h"; units
// ns, us/µs, ms, s, m, h; an optional sign) — or a bare number in the flag's own unit, so what a
// flag took before (`--duration 30`: seconds, `--min-sync-period 1000`: ms) means what it meant.
// Errors name the flag and say which forms it takes.

import { InvalidArgumentError } from 'commander';

export type DurationUnit = 'us' | 'ms' | 's';

/** One flag: its name ("--duration"), the unit of a bare number and of the value returned, and
 * the bounds of the value in that unit (`min` exclusive with `above`: "more than"). */
export interface DurationFlag {
  flag: string;
  unit: DurationUnit;
  min?: number;
  /** the value must be more than `min`, not at least it (a positive duration: min 0, above). */
  above?: boolean;
  max?: number;
  /** a whole number of `unit` (what a config field in ms or µs takes). */
  integer?: boolean;
}

export class DurationError extends Error {}

const MICROS: Record<string, number> = { ns: 0.001, us: 1, 'µs': 1, 'μs': 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000 };
const UNIT_NAME: Record<DurationUnit, string> = { us: 'microseconds', ms: 'milliseconds', s: 'seconds' };

/** `v` microseconds as Go prints a duration, shortest first ("1h", "1m30s", "50ms", "2.5s"). */
export function formatDuration(us: number): string {
  if (us === 0) return '0s';
  const sign = us < 0 ? '-' : '';
  let rest = Math.abs(us);
  if (rest < 1_000) return `${sign}${+rest.toFixed(3)}µs`;
  if (rest < 1_000_000) return `${sign}${+(rest / 1_000).toFixed(3)}ms`;
  let out = '';
  const h = Math.floor(rest / MICROS.h); if (h) { out += `${h}h`; rest -= h * MICROS.h; }
  const m = Math.floor(rest / MICROS.m); if (m) { out += `${m}m`; rest -= m * MICROS.m; }
  if (rest || !out) out += `${+(rest / MICROS.s).toFixed(6)}s`;
  return sign + out;
}

/** `text` in Go's time.ParseDuration form (an optional sign, then one or more number+unit parts:
 * "1m30s", "500ms", "-1.5h", ".5s"; "0" alone) as microseconds; NaN when it is not one. The one
 * reader of that form: the CLI's duration flags (below) and the config file's durations
 * (src/daemon/config.ts parseDuration). */
export function goDurationMicros(text: string): number {
  const m = /^([+-]?)(.*)$/.exec(text)!;
  const body = m[2];
  if (body === '0') return 0;
  const parts = [...body.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== body) return NaN;
  const us = parts.reduce((sum, p) => sum + Number(p[1]) * MICROS[p[2]], 0);
  return m[1] === '-' ? -us : us;
}

/** The flag's value in its unit; a DurationError naming the flag for anything else. */
export function parseDurationFlag(text: string, f: DurationFlag): number {
  const t = text.trim();
  const forms = `${f.flag} takes a duration like 500ms, 30s, 1m30s or 1h (a bare number is ${UNIT_NAME[f.unit]}), got ${JSON.stringify(text)}`;
  // a bare number is in the flag's own unit; anything else is Go's form
  const bare = /^([+-]?)(\d+(\.\d*)?|\.\d+)$/.exec(t);
  const us = bare ? (bare[1] === '-' ? -1 : 1) * Number(bare[2]) * MICROS[f.unit] : goDurationMicros(t);
  if (!Number.isFinite(us)) throw new DurationError(forms);
  const value = us / MICROS[f.unit];
  const shown = (v: number) => formatDuration(v * MICROS[f.unit]);
  if (f.min !== undefined && (f.above ? !(value > f.min) : !(value >= f.min))) {
    throw new DurationError(f.above && f.min === 0 ? `${f.flag} must be a positive duration, got ${JSON.stringify(text)}`
      : `${f.flag} must be ${f.above ? 'more than' : 'at least'} ${shown(f.min)}, got ${JSON.stringify(text)}`);
  }
  if (f.max !== undefined && value > f.max) throw new DurationError(`${f.flag} must be at most ${shown(f.max)}, got ${JSON.stringify(text)}`);
  // (a float's last bits: 1.1ms is 1100.0000000000002 us)
  const rounded = Math.round(value * 1e6) / 1e6;
  if (f.integer && !Number.isInteger(rounded)) throw new DurationError(`${f.flag} takes a whole number of ${UNIT_NAME[f.unit]}, got ${JSON.stringify(text)}`);
  return rounded;
}

/** parseDurationFlag with its refusal as the caller's own error (`as` makes it from the message,
 * or ends the process itself); any other exception goes on as it is. */
export function durationFlagAs(text: string, f: DurationFlag, as: (message: string) => Error): number {
  try { return parseDurationFlag(text, f); } catch (e) { throw e instanceof DurationError ? as(e.message) : e; }
}

/** The flag as a commander argument parser: its error is a usage error naming the flag. */
export function durationArg(f: DurationFlag): (v: string) => number {
  return (v: string) => durationFlagAs(v, f, (m) => new InvalidArgumentError(m));
}
