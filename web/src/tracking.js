// Faces through a live stream, as `facemark video` follows them (facemark's video tracking module): the detector
// finds a face, the landmark network follows it by cropping the next frame around its last points; the detector
// runs again every `detectEvery` frames, when a track looks lost, and while there is no track. Points are
// smoothed by a One-Euro filter. Constants: TrackerConfig's defaults.

import { boxFromPoints, pointsCropTransform, rollAngle } from "./crops.js";
import { boxOverlap } from "./blazeface.js";

export const TRACKER_DEFAULTS = {
  detectEvery: 30, smooth: true, minCutoff: 1.0, beta: 20.0, dCutoff: 10.0, matchIou: 0.3, matchCover: 0.6,
  reinitIou: 0.5, duplicateIou: 0.6, maxMisses: 2, maxScaleStep: 1.3, maxScaleDrift: 1.3, maxAspectDrift: 1.5,
  maxShift: 0.4, minInside: 0.6, minBox: 8.0, minSimilarity: 0.4,
};
const THUMB_SIZE = 24;

/** One-Euro filter over (P, 2) points (facemark's smoothing module). */
class OneEuroFilter {
  constructor(minCutoff, beta, dCutoff, frequency = 30) {
    Object.assign(this, { minCutoff, beta, dCutoff, frequency });
    this.reset();
  }

  reset() {
    this.x = null;
    this.dx = null;
    this.t = null;
  }

  static alpha(dt, cutoff) {
    const tau = 1 / (2 * Math.PI * cutoff);
    return 1 / (1 + tau / dt);
  }

  filter(points, t, scale) {
    if (!this.x || this.x.length !== points.length) {
      this.x = points.map((p) => [...p]);
      this.dx = points.map(() => [0, 0]);
      this.t = t;
      return points.map((p) => [...p]);
    }
    let dt = 1 / this.frequency;
    if (t !== null && this.t !== null && t > this.t) dt = t - this.t;
    this.t = t;
    const ad = OneEuroFilter.alpha(dt, this.dCutoff);
    return points.map((p, i) => {
      const x = this.x[i], d = this.dx[i];
      const vx = (p[0] - x[0]) / dt, vy = (p[1] - x[1]) / dt;
      d[0] += ad * (vx - d[0]);
      d[1] += ad * (vy - d[1]);
      const speed = Math.hypot(d[0], d[1]) / Math.max(scale, 1e-12);
      const a = OneEuroFilter.alpha(dt, this.minCutoff + this.beta * speed);
      x[0] += a * (p[0] - x[0]);
      x[1] += a * (p[1] - x[1]);
      return [x[0], x[1]];
    });
  }
}

function sizeAspect(box) {
  const w = Math.max(box[2] - box[0], 1e-6), h = Math.max(box[3] - box[1], 1e-6);
  return [Math.sqrt(w * h), w / h];
}

/** A small grey copy of a crop, zero mean and unit norm (all zeros for a flat crop): "still the same face?". */
function thumbnail(crop) {
  const { width: W, data } = crop, n = THUMB_SIZE, cell = W / n;
  const out = new Float32Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0, c = 0;
      for (let yy = Math.floor(y * cell); yy < Math.floor((y + 1) * cell); yy++) {
        for (let xx = Math.floor(x * cell); xx < Math.floor((x + 1) * cell); xx++) {
          const i = (yy * W + xx) * 3;
          s += data[i] + data[i + 1] + data[i + 2];
          c += 3;
        }
      }
      out[y * n + x] = s / Math.max(c, 1);
    }
  }
  const m = out.reduce((a, b) => a + b, 0) / out.length;
  let norm = 0;
  for (let i = 0; i < out.length; i++) { out[i] -= m; norm += out[i] * out[i]; }
  norm = Math.sqrt(norm);
  return norm > 1e-3 * out.length ? out.map((v) => v / norm) : out.fill(0);
}

const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
const finitePoints = (p) => p.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y));

export class FaceTracker {
  constructor(landmarker, config = {}) {
    this.landmarker = landmarker;
    this.config = { ...TRACKER_DEFAULTS, ...config };
    this.reset();
  }

  reset() {
    this.tracks = [];
    this.nextId = 1;
    this.sinceDetection = 0;
    this.stats = { frames: 0, detectorCalls: 0 };
  }

  /** The faces of the next frame (an RGB image), `t` its time in seconds: [{track, box, score, points}]. */
  async update(img, t = null) {
    const cfg = this.config;
    this.stats.frames++;
    this.sinceDetection++;
    if (this.tracks.length) await this.follow(img);
    const needsDetector = !this.tracks.length || this.sinceDetection >= cfg.detectEvery
      || this.tracks.some((tr) => tr.suspect || tr.misses);
    if (needsDetector) await this.detect(img);
    else for (const tr of this.tracks) tr.points = tr.newPoints;
    this.dropDuplicates();
    // lids on eye patches of their own, as a photo's (facemark.pipeline.eyes)
    const refined = await this.landmarker.refineEyes(img, this.tracks.map((tr) => tr.points));
    this.tracks.forEach((tr, i) => { tr.points = refined[i]; });
    return this.tracks.map((tr) => {
      tr.newPoints = null;
      tr.suspect = false;
      let points = tr.points;
      if (tr.filter) points = tr.filter.filter(points, t, sizeAspect(boxFromPoints(points))[0]);
      return { track: tr.id, box: boxFromPoints(points), score: tr.score, points };
    });
  }

  async follow(img) {
    const lm = this.landmarker, net = lm.network;
    const transforms = this.tracks.map((tr) => pointsCropTransform(tr.points, net.size, net.margin, rollAngle(tr.points, lm.scheme)));
    const { crops, points } = await lm.predictTransforms(img, transforms);
    this.tracks.forEach((tr, i) => {
      const thumb = thumbnail(crops[i]);
      const similar = !tr.thumb || dot(tr.thumb, thumb) >= this.config.minSimilarity;
      tr.thumb = thumb;
      tr.newPoints = points[i];
      tr.suspect = !similar || !this.plausible(tr.points, points[i], tr, img.width, img.height);
    });
  }

  plausible(old, now, tr, width, height) {
    const cfg = this.config;
    if (!finitePoints(now)) return false;
    const b0 = boxFromPoints(old), b1 = boxFromPoints(now);
    const [s0] = sizeAspect(b0), [s1, aspect] = sizeAspect(b1);
    if (s1 < cfg.minBox) return false;
    if (!(1 / cfg.maxScaleStep <= s1 / s0 && s1 / s0 <= cfg.maxScaleStep)) return false;
    if (!(1 / cfg.maxScaleDrift <= s1 / tr.refSize && s1 / tr.refSize <= cfg.maxScaleDrift)) return false;
    if (!(1 / cfg.maxAspectDrift <= aspect / tr.refAspect && aspect / tr.refAspect <= cfg.maxAspectDrift)) return false;
    const shift = Math.hypot((b1[0] + b1[2] - b0[0] - b0[2]) / 2, (b1[1] + b1[3] - b0[1] - b0[3]) / 2);
    if (shift > cfg.maxShift * s0) return false;
    const inside = now.filter(([x, y]) => x >= -0.5 && x <= width - 0.5 && y >= -0.5 && y <= height - 0.5).length;
    return inside / now.length >= cfg.minInside;
  }

  confirm(tr, score) {
    tr.score = score;
    tr.misses = 0;
    [tr.refSize, tr.refAspect] = sizeAspect(boxFromPoints(tr.points));
  }

  async detect(img) {
    const cfg = this.config, lm = this.landmarker;
    const found = await lm.candidates(img);
    this.stats.detectorCalls++;
    this.sinceDetection = 0;
    const pairs = [];
    this.tracks.forEach((tr, i) => {
      const boxes = [boxFromPoints(tr.points)];
      if (tr.newPoints && finitePoints(tr.newPoints)) boxes.push(boxFromPoints(tr.newPoints));
      found.forEach((c, j) => {
        const iou = Math.max(...boxes.map((b) => boxOverlap(b, c.landmarkBox)));
        const cover = Math.max(...boxes.map((b) => boxOverlap(b, c.landmarkBox, "min")));
        if (iou >= cfg.matchIou || cover >= cfg.matchCover) pairs.push([iou + cover, i, j]);
      });
    });
    pairs.sort((a, b) => b[0] - a[0]);
    const matches = new Map(), used = new Set();
    for (const [v, i, j] of pairs) {
      if (v > 0 && !matches.has(i) && !used.has(j)) { matches.set(i, j); used.add(j); }
    }
    const restart = [], kept = [];
    this.tracks.forEach((tr, i) => {
      const j = matches.get(i);
      if (j === undefined) {
        if (tr.suspect) return;
        tr.points = tr.newPoints;
        tr.misses++;
        if (tr.misses > cfg.maxMisses) return;
      } else {
        const drifted = !tr.suspect && boxOverlap(boxFromPoints(tr.newPoints), found[j].landmarkBox) < cfg.reinitIou;
        if (tr.suspect || drifted) restart.push([tr, j]);
        else {
          tr.points = tr.newPoints;
          this.confirm(tr, found[j].score);
        }
      }
      kept.push(tr);
    });
    this.tracks = kept;
    found.forEach((c, j) => { if (!used.has(j)) restart.push([null, j]); });
    if (!restart.length) return;
    const points = await lm.landmarksForTransforms(img, restart.map(([, j]) => found[j].transform));
    restart.forEach(([tr, j], k) => {
      if (!tr) {
        tr = { id: this.nextId++, points: points[k], filter: this.newFilter(), misses: 0, thumb: null };
        this.tracks.push(tr);
      } else {
        Object.assign(tr, { points: points[k], thumb: null });
        if (tr.filter) tr.filter.reset();
      }
      this.confirm(tr, found[j].score);
    });
    this.tracks.sort((a, b) => a.id - b.id);
  }

  dropDuplicates() {
    const keep = [];
    for (const tr of this.tracks) {
      const box = boxFromPoints(tr.points);
      if (keep.some((k) => boxOverlap(box, boxFromPoints(k.points)) > this.config.duplicateIou)) continue;
      keep.push(tr);
    }
    this.tracks = keep;
  }

  newFilter() {
    const c = this.config;
    return c.smooth ? new OneEuroFilter(c.minCutoff, c.beta, c.dCutoff) : null;
  }
}
