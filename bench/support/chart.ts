/** A self-contained SVG of a bench run: latency per step (p50/p95/p99) and completed flows per second. */

export interface ChartInput {
  title: string;
  steps: { name: string; p50: number; p95: number; p99: number }[];
  /** Named series of [seconds since start, flows completed in that second]. */
  throughput: { name: string; points: [number, number][] }[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = { p50: '#3b82f6', p95: '#f59e0b', p99: '#ef4444' };
const SERIES = ['#2563eb', '#16a34a', '#9333ea', '#dc2626'];

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

export function renderChart(input: ChartInput): string {
  const W = 900;
  const rowH = 26;
  const left = 140;
  const right = 40;
  const top = 60;
  const barsH = Math.max(1, input.steps.length) * rowH;
  const tpTop = top + barsH + 90;
  const tpH = 220;
  const H = tpTop + tpH + 60;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(input.title)}</text>`);

  // 1. Latency per step, log-free linear scale to the largest p99.
  const maxLat = niceMax(Math.max(...input.steps.map((s) => s.p99).filter(Number.isFinite), 1));
  const plotW = W - left - right;
  const x = (ms: number) => left + (plotW * Math.min(ms, maxLat)) / maxLat;
  out.push(`<text x="${left}" y="${top - 22}" font-weight="bold">Latency per step (ms)</text>`);
  let lx = left + 200;
  for (const [k, c] of Object.entries(COLORS)) {
    out.push(`<rect x="${lx}" y="${top - 32}" width="12" height="12" fill="${c}"/><text x="${lx + 16}" y="${top - 22}">${k}</text>`);
    lx += 60;
  }
  for (let i = 0; i <= 5; i++) {
    const v = (maxLat * i) / 5;
    out.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${top + barsH}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${x(v)}" y="${top + barsH + 16}" text-anchor="middle" fill="#555">${Math.round(v)}</text>`);
  }
  input.steps.forEach((s, i) => {
    const y = top + i * rowH;
    out.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(s.name)}</text>`);
    const bars: [keyof typeof COLORS, number][] = [
      ['p99', s.p99],
      ['p95', s.p95],
      ['p50', s.p50],
    ];
    for (const [k, v] of bars)
      if (Number.isFinite(v))
        out.push(
          `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(v) - left)}" height="${rowH - 10}" fill="${COLORS[k]}"><title>${esc(s.name)} ${k}: ${v.toFixed(1)} ms</title></rect>`,
        );
    out.push(
      `<text x="${Math.min(x(s.p99) + 4, W - right)}" y="${y + 15}" fill="#333" font-size="10">${Number.isFinite(s.p50) ? `${s.p50.toFixed(0)} / ${s.p95.toFixed(0)} / ${s.p99.toFixed(0)}` : ''}</text>`,
    );
  });

  // 2. Throughput over time.
  const allPts = input.throughput.flatMap((s) => s.points);
  const maxT = Math.max(1, ...allPts.map((p) => p[0] + 1));
  const maxY = niceMax(Math.max(1, ...allPts.map((p) => p[1])));
  const tx = (t: number) => left + (plotW * t) / maxT;
  const ty = (v: number) => tpTop + tpH - (tpH * v) / maxY;
  out.push(`<text x="${left}" y="${tpTop - 20}" font-weight="bold">Completed flows per second</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (maxY * i) / 4;
    out.push(
      `<line x1="${left}" y1="${ty(v)}" x2="${W - right}" y2="${ty(v)}" stroke="#e5e7eb"/><text x="${left - 8}" y="${ty(v) + 4}" text-anchor="end" fill="#555">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const t = (maxT * i) / 5;
    out.push(`<text x="${tx(t)}" y="${tpTop + tpH + 16}" text-anchor="middle" fill="#555">${Math.round(t)} s</text>`);
  }
  input.throughput.forEach((s, i) => {
    const color = SERIES[i % SERIES.length];
    if (s.points.length)
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.points.map(([t, v]) => `${tx(t + 0.5).toFixed(1)},${ty(v).toFixed(1)}`).join(' ')}"/>`);
    out.push(
      `<rect x="${left + 300 + i * 200}" y="${tpTop - 30}" width="12" height="12" fill="${color}"/><text x="${left + 316 + i * 200}" y="${tpTop - 20}">${esc(s.name)}</text>`,
    );
  });
  out.push(`<line x1="${left}" y1="${tpTop + tpH}" x2="${W - right}" y2="${tpTop + tpH}" stroke="#999"/>`);
  out.push('</svg>');
  return out.join('\n');
}

/** Completion timestamps (ms since the phase started) → flows per whole second. */
export function perSecond(completionsMs: number[]): [number, number][] {
  if (!completionsMs.length) return [];
  const last = Math.floor(Math.max(...completionsMs) / 1000);
  const buckets = new Array<number>(last + 1).fill(0);
  for (const t of completionsMs) buckets[Math.floor(t / 1000)]! += 1;
  return buckets.map((v, i) => [i, v]);
}
