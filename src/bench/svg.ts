// Hand-made SVG charts for `wdp bench --plot`: a line chart for sweeps and grouped bars for
// side-by-side comparisons. No dependency: the output is a few hundred lines of plain SVG that
// any browser or GitHub renders. Nulls (a contender that could not run) are drawn as a labelled
// gap, never as zero.

export interface LineSeries { name: string; points: Array<[number, number | null]> }
export interface LineChartSpec {
  title: string; xLabel: string; yLabel: string;
  series: LineSeries[];
  logX?: boolean; logY?: boolean;
}
export interface BarGroup { label: string; bars: Array<{ name: string; value: number | null }> }
export interface BarChartSpec { title: string; yLabel: string; groups: BarGroup[]; logY?: boolean }

const W = 820, H = 420, M = { l: 80, r: 230, t: 48, b: 64 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function num(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function frame(title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>', '',
  ].join('\n');
}

function scale(lo: number, hi: number, a: number, b: number, log: boolean): (v: number) => number {
  if (log) {
    const l0 = Math.log10(lo), l1 = Math.log10(hi);
    return (v) => a + ((Math.log10(v) - l0) / (l1 - l0 || 1)) * (b - a);
  }
  return (v) => a + ((v - lo) / (hi - lo || 1)) * (b - a);
}

export function lineChart(spec: LineChartSpec): string {
  const pts = spec.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]).filter((y): y is number => y !== null && Number.isFinite(y));
  const body: string[] = [];
  const x0 = M.l, x1 = W - M.r, y0 = H - M.b, y1 = M.t;
  if (!xs.length || !ys.length) {
    body.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`);
    return frame(spec.title, body);
  }
  const logX = Boolean(spec.logX) && xs.every((x) => x > 0);
  const logY = Boolean(spec.logY) && ys.every((y) => y > 0);
  let xlo = Math.min(...xs), xhi = Math.max(...xs);
  if (xlo === xhi) { xlo = logX ? xlo / 2 : xlo - 1; xhi = logX ? xhi * 2 : xhi + 1; }
  let ylo = logY ? Math.min(...ys) / 1.5 : 0, yhi = Math.max(...ys) * 1.1;
  if (!(yhi > ylo)) yhi = ylo + 1;
  const yTicks = logY ? logTicks(ylo, yhi) : niceTicks(ylo, yhi);
  if (logY) { ylo = Math.min(ylo, yTicks[0]); yhi = Math.max(yhi, yTicks[yTicks.length - 1]); }
  const xTicks = logX ? logTicks(xlo, xhi).filter((t) => t >= xlo / 1.0001 && t <= xhi * 1.0001) : niceTicks(xlo, xhi);
  const sx = scale(xlo, xhi, x0, x1, logX), sy = scale(ylo, yhi, y0, y1, logY);
  body.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="black"/>`, `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    body.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#ddd"/>`, `<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${num(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    body.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + 5}" stroke="black"/>`, `<text x="${x}" y="${y0 + 18}" text-anchor="middle">${num(t)}</text>`);
  }
  body.push(`<text x="${(x0 + x1) / 2}" y="${H - 18}" text-anchor="middle">${esc(spec.xLabel)}${logX ? ' (log)' : ''}</text>`);
  body.push(`<text transform="translate(18 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}${logY ? ' (log)' : ''}</text>`);
  spec.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    // a null point breaks the line: the figure is missing, not zero
    let d = '', pen = false;
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y)) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)} `;
      pen = true;
    }
    if (d) body.push(`<path d="${d.trim()}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y)) continue;
      body.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${c}"><title>${esc(s.name)}: ${num(x)} → ${num(y)}</title></circle>`);
    }
    const ly = M.t + 10 + i * 20;
    body.push(`<rect x="${x1 + 16}" y="${ly - 6}" width="14" height="4" fill="${c}"/>`, `<text x="${x1 + 36}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  return frame(spec.title, body);
}

export function barChart(spec: BarChartSpec): string {
  const names = [...new Set(spec.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const vals = spec.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v): v is number => v !== null && Number.isFinite(v));
  const body: string[] = [];
  const x0 = M.l, x1 = W - M.r, y0 = H - M.b, y1 = M.t;
  if (!vals.length) {
    body.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`);
    return frame(spec.title, body);
  }
  const logY = Boolean(spec.logY) && vals.every((v) => v > 0);
  let ylo = logY ? Math.min(...vals) / 2 : 0, yhi = Math.max(...vals) * 1.15;
  const yTicks = logY ? logTicks(ylo, yhi) : niceTicks(ylo, yhi);
  if (logY) { ylo = yTicks[0]; yhi = Math.max(yhi, yTicks[yTicks.length - 1]); }
  const sy = scale(ylo, yhi, y0, y1, logY);
  body.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="black"/>`, `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    body.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#ddd"/>`, `<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${num(t)}</text>`);
  }
  body.push(`<text transform="translate(18 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}${logY ? ' (log)' : ''}</text>`);
  const gw = (x1 - x0) / spec.groups.length;
  const bw = Math.min(48, (gw * 0.8) / Math.max(1, names.length));
  spec.groups.forEach((g, gi) => {
    const gx = x0 + gi * gw + (gw - bw * names.length) / 2;
    names.forEach((n, ni) => {
      const b = g.bars.find((x) => x.name === n);
      const x = gx + ni * bw;
      const c = COLORS[ni % COLORS.length];
      if (!b) return;
      if (b.value === null || !Number.isFinite(b.value)) {
        body.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${y0 - 6}" text-anchor="middle" font-size="10" fill="${c}">n/a</text>`);
        return;
      }
      const top = sy(Math.max(b.value, ylo));
      body.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y0 - top).toFixed(1)}" fill="${c}"><title>${esc(n)}: ${num(b.value)}</title></rect>`);
      body.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="10">${num(b.value)}</text>`);
    });
    body.push(`<text x="${(x0 + gi * gw + gw / 2).toFixed(1)}" y="${y0 + 18}" text-anchor="middle">${esc(g.label)}</text>`);
  });
  names.forEach((n, i) => {
    const ly = M.t + 10 + i * 20;
    body.push(`<rect x="${x1 + 16}" y="${ly - 7}" width="14" height="14" fill="${COLORS[i % COLORS.length]}"/>`, `<text x="${x1 + 36}" y="${ly}" dominant-baseline="middle">${esc(n)}</text>`);
  });
  return frame(spec.title, body);
}

/** Several charts stacked in one SVG file (a suite with both a sweep and bars). */
export function stack(svgs: string[]): string {
  if (svgs.length === 1) return svgs[0];
  const inner = svgs.map((s, i) => s.replace('<svg ', `<svg y="${i * H}" `)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H * svgs.length}" viewBox="0 0 ${W} ${H * svgs.length}">\n${inner}</svg>\n`;
}
