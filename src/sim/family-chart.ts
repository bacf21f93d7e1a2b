/**
 * A hand-written SVG chart of a judged family: one mark per scenario, its cost over the cheapest
 * SLO-meeting baseline across (log scale) and its attainment against the SLO up (points), coloured
 * by traffic shape. The lower-left of 1.0x and above the SLO line is where the policy wins; a
 * cross is a missed SLO; scenarios no baseline meets have no cost ratio and are drawn in a strip
 * on the right. Values outside the axes sit on the edge, drawn hollow.
 */
import { COLORS, esc } from './chart.js';
import { FAMILY_SHAPES } from './family.js';
import { type ScenarioRuns, type Summary, judge } from './score.js';

const WIDTH = 900;
const HEIGHT = 560;
const LEFT = 70;
const TOP = 60;
const PLOT_W = 600;
const PLOT_H = 420;
const STRIP = 40;
/** The cost axis: log2 from a quarter to four times the cheapest baseline. */
const COST_MIN = 0.25;
const COST_MAX = 4;
/** The attainment axis, points against the SLO. */
const POINTS_MIN = -10;
const POINTS_MAX = 5;

/** Where one verdict is drawn: plot coordinates, and whether it was clipped to an edge. */
export interface FamilyMark {
  name: string;
  shape: string;
  x: number;
  y: number;
  clipped: boolean;
  met: boolean;
  /** No baseline meets the SLO, so there is no cost ratio: drawn in the strip. */
  unranked: boolean;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

function costX(ratio: number): number {
  return LEFT + ((Math.log2(ratio) - Math.log2(COST_MIN)) / (Math.log2(COST_MAX) - Math.log2(COST_MIN))) * PLOT_W;
}

function pointsY(points: number): number {
  return TOP + ((POINTS_MAX - points) / (POINTS_MAX - POINTS_MIN)) * PLOT_H;
}

/** Places every scenario by its verdict (exported for the tests: every mark lies inside the drawing). */
export function familyMarks(scenarios: readonly ScenarioRuns[]): FamilyMark[] {
  return scenarios.map((r) => {
    const v = judge(r);
    const points = (v.attainment - r.attainment) * 100;
    const shape = typeof v.params?.shape === 'string' ? v.params.shape : 'other';
    const unranked = v.costRatio === undefined;
    const ratio = v.costRatio ?? 1;
    // (1 - 0.95) * 100 is a hair over 5: a scenario exactly at an edge is on the axis
    const clippedCost = ratio < COST_MIN - 1e-9 || ratio > COST_MAX + 1e-9;
    const clippedPoints = points < POINTS_MIN - 1e-9 || points > POINTS_MAX + 1e-9;
    return {
      name: v.name,
      shape,
      x: unranked ? LEFT + PLOT_W + STRIP / 2 : costX(clamp(ratio, COST_MIN, COST_MAX)),
      y: pointsY(clamp(points, POINTS_MIN, POINTS_MAX)),
      clipped: (!unranked && clippedCost) || clippedPoints,
      met: !v.attainmentFail,
      unranked,
    };
  });
}

function colorOf(shape: string): string {
  const i = (FAMILY_SHAPES as readonly string[]).indexOf(shape);
  return i < 0 ? '#000000' : COLORS[i % COLORS.length]!;
}

/** Renders the chart of a judged family with its summary line. */
export function renderFamilyChart(title: string, scenarios: readonly ScenarioRuns[], summary: Summary): string {
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(
    `<text x="${LEFT}" y="42" fill="#333">${esc(
      `SLO met on ${summary.slo_met_where_baseline_meets} of ${summary.baseline_meets} where a baseline meets it; cost <= 1.0x on ${(summary.cost_share_le_1 * 100).toFixed(0)}%, median ${summary.median_cost_ratio}x; <= 2 flaps/h on ${(summary.flap_share_le_2 * 100).toFixed(0)}%`,
    )}</text>`,
  );
  // the winning quadrant: at or below 1.0x, SLO met
  out.push(`<rect x="${LEFT}" y="${pointsY(POINTS_MAX)}" width="${(costX(1) - LEFT).toFixed(1)}" height="${(pointsY(0) - pointsY(POINTS_MAX)).toFixed(1)}" fill="#e8f5e9"/>`);
  for (const r of [0.25, 0.5, 0.8, 1, 1.25, 2, 4]) {
    const x = costX(r).toFixed(1);
    const stroke = r === 1 ? '#666' : r === 0.8 ? '#999' : '#e4e4e4';
    out.push(`<line x1="${x}" x2="${x}" y1="${TOP}" y2="${TOP + PLOT_H}" stroke="${stroke}"${r === 0.8 ? ' stroke-dasharray="4 3"' : ''}/>`);
    out.push(`<text x="${x}" y="${TOP + PLOT_H + 16}" text-anchor="middle" fill="#555">${r}x</text>`);
  }
  for (let p = POINTS_MIN; p <= POINTS_MAX; p += 5) {
    const y = pointsY(p).toFixed(1);
    out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${y}" y2="${y}" stroke="${p === 0 ? '#666' : '#e4e4e4'}"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(pointsY(p) + 4).toFixed(1)}" text-anchor="end" fill="#555">${p > 0 ? '+' : ''}${p}</text>`);
  }
  out.push(`<rect x="${LEFT}" y="${TOP}" width="${PLOT_W}" height="${PLOT_H}" fill="none" stroke="#999"/>`);
  out.push(`<rect x="${LEFT + PLOT_W}" y="${TOP}" width="${STRIP}" height="${PLOT_H}" fill="#f4f4f4" stroke="#999"/>`);
  out.push(`<text x="${LEFT + PLOT_W + STRIP / 2}" y="${TOP - 6}" text-anchor="middle" fill="#555">none</text>`);
  out.push(`<text x="${LEFT + PLOT_W / 2}" y="${TOP + PLOT_H + 36}" text-anchor="middle" fill="#333">cost over the cheapest baseline that meets the SLO (log scale; the dashed line is 0.8x; none: no baseline meets it)</text>`);
  out.push(`<text transform="translate(20 ${TOP + PLOT_H / 2}) rotate(-90)" text-anchor="middle" fill="#333">attainment minus the SLO, points</text>`);
  const marks = familyMarks(scenarios);
  for (const m of marks) {
    const color = colorOf(m.shape);
    const x = m.x.toFixed(1);
    const y = m.y.toFixed(1);
    const label = `<title>${esc(m.name)}</title>`;
    if (!m.met) {
      out.push(`<path d="M${(m.x - 4).toFixed(1)},${(m.y - 4).toFixed(1)}l8,8m0,-8l-8,8" stroke="${color}" stroke-width="2">${label}</path>`);
    } else {
      out.push(`<circle cx="${x}" cy="${y}" r="4" fill="${m.clipped ? 'none' : color}" stroke="${color}" fill-opacity="0.75">${label}</circle>`);
    }
  }
  // legend: the shapes, and what the marks mean
  const legendX = LEFT + PLOT_W + STRIP + 20;
  FAMILY_SHAPES.forEach((shape, i) => {
    const y = TOP + 10 + i * 20;
    out.push(`<circle cx="${legendX}" cy="${y}" r="4" fill="${colorOf(shape)}"/>`);
    out.push(`<text x="${legendX + 10}" y="${y + 4}">${esc(shape)}</text>`);
  });
  const notesY = TOP + 10 + FAMILY_SHAPES.length * 20 + 20;
  out.push(`<path d="M${legendX - 4},${notesY - 4}l8,8m0,-8l-8,8" stroke="#333" stroke-width="2"/><text x="${legendX + 10}" y="${notesY + 4}">SLO missed</text>`);
  out.push(`<circle cx="${legendX}" cy="${notesY + 20}" r="4" fill="none" stroke="#333"/><text x="${legendX + 10}" y="${notesY + 24}">off the axis</text>`);
  out.push(`<text x="${legendX - 4}" y="${notesY + 50}" fill="#555">${scenarios.length} scenarios</text>`);
  out.push('</svg>');
  return out.join('\n');
}
