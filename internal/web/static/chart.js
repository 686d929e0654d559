// Throughput: tasks finished per 10 s over the last 10 minutes, as
// stacked bars (completed, failed) drawn in inline SVG.

import {s, fill} from './dom.js';

const BIN_MS = 10_000;
const BINS = 60;

export class Throughput {
  constructor(el) {
    this.el = el;
    this.spanMs = BIN_MS * BINS;
    this.reset();
    window.addEventListener('resize', () => this.scheduleDraw());
  }

  reset() {
    this.bins = new Map(); // bin index -> {completed, failed}
    this.counted = new Set(); // task ids, so a task counts once
    this.draw();
  }

  // add counts task id as finished with status at time at (ms).
  add(id, status, at) {
    if (this.counted.has(id)) return;
    this.counted.add(id);
    const k = Math.floor(at / BIN_MS);
    const b = this.bins.get(k) || {completed: 0, failed: 0};
    b[status === 'failed' ? 'failed' : 'completed']++;
    this.bins.set(k, b);
    this.scheduleDraw();
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.draw();
    });
  }

  draw() {
    const W = Math.max(280, this.el.clientWidth || 600), H = 170, left = 34, bottom = 20, top = 8;
    const now = Math.floor(Date.now() / BIN_MS);
    for (const k of this.bins.keys()) if (k <= now - BINS) this.bins.delete(k);
    let max = 1;
    const cols = [];
    for (let i = 0; i < BINS; i++) {
      const b = this.bins.get(now - BINS + 1 + i) || {completed: 0, failed: 0};
      cols.push(b);
      max = Math.max(max, b.completed + b.failed);
    }
    max = niceCeil(max);
    const plotH = H - bottom - top, colW = (W - left) / BINS;
    const y = (v) => top + plotH - (v / max) * plotH;
    const parts = [
      s('line', {class: 'axis', x1: left, y1: y(0), x2: W, y2: y(0)}),
      s('line', {class: 'axis', x1: left, y1: y(max), x2: W, y2: y(max), 'stroke-dasharray': '3 3'}),
      s('text', {x: left - 6, y: y(max) + 4, 'text-anchor': 'end'}, String(max)),
      s('text', {x: left - 6, y: y(0) + 4, 'text-anchor': 'end'}, '0'),
      s('text', {x: left, y: H - 4}, '−10 min'),
      s('text', {x: left + (W - left) / 2, y: H - 4, 'text-anchor': 'middle'}, '−5 min'),
      s('text', {x: W, y: H - 4, 'text-anchor': 'end'}, 'now'),
    ];
    cols.forEach((b, i) => {
      const x = left + i * colW + 1, w = Math.max(1, colW - 2);
      if (b.completed) parts.push(s('rect', {class: 'bar-completed', x, y: y(b.completed), width: w, height: y(0) - y(b.completed)}));
      if (b.failed) {
        const base = y(b.completed);
        parts.push(s('rect', {class: 'bar-failed', x, y: base - (y(0) - y(b.failed)), width: w, height: y(0) - y(b.failed)}));
      }
    });
    fill(this.el, s('svg', {viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
      'aria-label': 'tasks finished per 10 seconds'}, parts));
  }
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return v;
}
