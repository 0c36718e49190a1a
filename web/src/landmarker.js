// `Landmarker.detect(image)` in the browser: the Python runtime's common path, step for step (facemark's
// size policy, candidates, landmark passes, trust, orientation and kept faces), on onnxruntime-web.
//
// 1. What the detector sees: the image shrunk by a whole factor to at most LOOK_SIDE, inside a virtual border
//    of BORDER_PAD of its shorter side (BlazeFace's shows the image mirrored); above TILED_LOOK_SIDE the detector also looks for a crowd's faces
//    (down to CROWD_FACE_SHARE of the look side, not under CROWD_FACE_PX: a YuNet pass), in a copy shrunk no further
//    than keeps them MIN_FACE_IN_COPY pixels wide. An image thinner than MIN_IMAGE_SIDE is not searched.
// 2. Candidates: each detection's box mapped to the landmark network's framing, turned by its roll.
// 3. Passes: the first crop and its mirror in one batch; a refining pass framed on the points where it pays;
//    trust from the last batch.
// 4. Way up: a face not surely upright is tried the four ways up in its crop; when no face is surely upright,
//    the image's quarter turns are searched too.
// 5. Kept faces: one per face found twice; trust at least DEFAULT_MIN_TRUST (more for unsure and tiled faces).
// Not ported: the `min_face` option (tiles down to a face size asked for), other detectors, and the huge-image
// path (docs/web.md).

import { BlazeFace, boxOverlap, nms } from "./blazeface.js";
import { EyeRefiner } from "./eyes.js";
import { CropTransform, cropImage, pointsCropTransform, rollAngle, squareCropTransform } from "./crops.js";
import { opencvShrink, region } from "./imaging.js";

// size policy
const LOOK_SIDE = 640;
const MAX_DETECT_PIXELS = 50_000_000;
const BORDER_PAD = 0.25;
const TILED_LOOK_SIDE = 1024;
const CROWD_FACE_SHARE = 1 / 30;
const CROWD_FACE_PX = 80.0;
const MIN_FACE_IN_COPY = 24.0;
const MIN_IMAGE_SIDE = 32;
const LONG_IMAGE_ASPECT = 2.0;
// candidates
const FIRST_CROP_MIN_ROLL = (25 * Math.PI) / 180;
// passes
const FRAMING_SHIFT = 0.06;
const FRAMING_SCALE = 0.08;
const FRAMING_ROLL = (10 * Math.PI) / 180;
const ONE_BATCH_DISAGREEMENT = 1.8;
const REFINE_BELOW_TRUST = 0.5;
const ROLL_RECHECK = (15 * Math.PI) / 180;
const MAX_PASSES = 3;
// a face with at least this share of its points beyond the image's edge is refined again (passes.CUT_SHARE)
const CUT_SHARE = 0.1;
// a face found only for reaching beyond the image's edge goes on to refining passes and to the four ways up only
// from this first trust (passes.EDGE_FIRST_TRUST)
const EDGE_FIRST_TRUST = 0.1;
const ORIENTATION_CHECK = 0.02;
// trust
const TRUST_SCALE = 0.074;
// a face is judged by its points inside the image when at least this share of them is (trust.MIN_VISIBLE_SHARE)
const MIN_VISIBLE_SHARE = 0.25;
const MIN_EYE_DISTANCE_SHARE = 0.1;
// orientation
const ORIENTATION_TRUST = 0.2;
const ORIENTATION_STEPS = 4;
const KEEP_DETECTED_WAY = 0.7;
const UNSURE_MIN_TRUST = 0.3;
// kept faces
export const DEFAULT_MIN_TRUST = 0.15;
const TILED_MIN_TRUST = 0.15;
const DUPLICATE_IOU = 0.5;
// a face whose points' box holds this share of another's is the same face seen twice: the better trusted is kept
// (landmarker.NESTED_SHARE)
const NESTED_SHARE = 0.9;

/** A point layout (facemark.scheme.Scheme) from the model's JSON. */
export class Scheme {
  constructor(d) {
    this.name = d.name;
    this.regions = d.regions;
    this.flip = d.flip;
    this.normaliser = d.normaliser;
    this.contours = d.contours || [];
    this.numPoints = d.regions.reduce((n, [, c]) => n + c, 0);
  }

  slice(name) {
    let start = 0;
    for (const [region, count] of this.regions) {
      if (region === name) return [start, start + count];
      start += count;
    }
    throw new Error(`scheme ${this.name} has no region ${name}`);
  }

  flipPoints(points, width) {
    return this.flip.map((j) => [width - 1 - points[j][0], points[j][1]]);
  }

  interOcular(points) {
    const [a, b] = this.normaliser;
    return Math.hypot(points[a][0] - points[b][0], points[a][1] - points[b][1]);
  }
}

/** The landmark network: (N, S, S, 3) crops -> (N, P, 2) crop pixels (facemark.network.predict_crops). */
export class LandmarkNetwork {
  constructor(ort, session, config) {
    this.ort = ort;
    this.session = session;
    this.config = config;
    this.size = config.input_size;
    this.margin = config.margin;
    this.scheme = new Scheme(config.scheme);
  }

  static async create(ort, base, name, options) {
    const config = await (await fetch(`${base}/${name}.json`)).json();
    const session = await ort.InferenceSession.create(`${base}/${name}.onnx`, options);
    return new LandmarkNetwork(ort, session, config);
  }

  /** crops: images of S×S; mirrored[i]: also the left/right mirror of crop i (batched after the crops). */
  async predict(crops) {
    const S = this.size, plane = S * S, n = crops.length;
    const x = new Float32Array(n * 3 * plane);
    crops.forEach((crop, k) => {
      const d = crop.data, base = k * 3 * plane;
      for (let i = 0; i < plane; i++) {
        x[base + i] = Math.fround(d[i * 3] / 127.5) - 1;
        x[base + plane + i] = Math.fround(d[i * 3 + 1] / 127.5) - 1;
        x[base + 2 * plane + i] = Math.fround(d[i * 3 + 2] / 127.5) - 1;
      }
    });
    const out = await this.session.run({ crops: new this.ort.Tensor("float32", x, [n, 3, S, S]) });
    const y = out.points.data, P = this.scheme.numPoints;
    const result = [];
    for (let k = 0; k < n; k++) {
      const pts = [];
      for (let p = 0; p < P; p++) {
        const o = (k * P + p) * 2;
        pts.push([(y[o] + 1) * (S / 2) - 0.5, (y[o + 1] + 1) * (S / 2) - 0.5]);
      }
      result.push(pts);
    }
    return result;
  }
}

function mirrored(crop) {
  const { width: W, height: H, data } = crop;
  const out = { width: W, height: H, data: new Uint8Array(data.length) };
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3, o = (y * W + (W - 1 - x)) * 3;
      out.data[o] = data[i];
      out.data[o + 1] = data[i + 1];
      out.data[o + 2] = data[i + 2];
    }
  }
  return out;
}

const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const average = (a, b) => a.map(([x, y], i) => [(x + b[i][0]) / 2, (y + b[i][1]) / 2]);
const meanDistance = (a, b) => mean(a.map(([x, y], i) => Math.hypot(x - b[i][0], y - b[i][1])));
/** The mean distance over the points `judged` marks (all of them when `judged` is null). */
const judgedDistance = (a, b, judged) => (judged ? mean(a.map(([x, y], i) => Math.hypot(x - b[i][0], y - b[i][1]))
  .filter((d, i) => judged[i])) : meanDistance(a, b));

/** Per point: whether a face is judged by it in an image of `size` ({width, height}; trust.judged_points): the
 * points inside the image, or every point when fewer than MIN_VISIBLE_SHARE of them are; null without a size. */
function judgedPoints(points, size) {
  if (!size) return null;
  const inside = points.map(([x, y]) => x >= -0.5 && x <= size.width - 0.5 && y >= -0.5 && y <= size.height - 0.5);
  const share = inside.filter(Boolean).length / inside.length;
  return share < MIN_VISIBLE_SHARE ? inside.map(() => true) : inside;
}
/** IEEE remainder (Python's math.remainder) of x by y. */
const remainder = (x, y) => x - y * roundHalfEven(x / y);

export function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Whether at least CUT_SHARE of the points lie beyond the edge of an image of `size` (passes._cut_by_edge). */
function cutByEdge(points, size) {
  const judged = judgedPoints(points, size);
  return judged !== null && judged.filter((j) => !j).length / judged.length >= CUT_SHARE;
}

/** (mean ‖reframed − points‖ + mean ‖mirrored − points‖) / eye-corner distance (facemark.trust), over the points
 * inside an image of `size` when given. */
function disagreement(points, reframed, mirror, scheme, size = null) {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = finite.map((p) => p[0]), ys = finite.map((p) => p[1]);
  const side = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  const scale = Math.max(scheme.interOcular(points), MIN_EYE_DISTANCE_SHARE * side);
  const judged = judgedPoints(points, size);
  return (judgedDistance(reframed, points, judged) + judgedDistance(mirror, points, judged)) / scale;
}

const trustFromDisagreement = (d) => (Number.isFinite(d) ? Math.min(Math.max(Math.exp(-d / TRUST_SCALE), 0), 1) : 0);

/** The landmark passes over crops of one image (facemark's passes module). */
class LandmarkPasses {
  constructor(network) {
    this.network = network;
    this.scheme = network.scheme;
    this.size = network.size;
    this.margin = network.margin;
    this.batches = 0; // network calls, for the page's statistics
  }

  framing(points, roll) {
    try {
      return pointsCropTransform(points, this.size, this.margin, roll);
    } catch {
      return new CropTransform(0, 0, 1, this.size);
    }
  }

  /** Per transform: [averaged points, mirror gap (crop sides; over the points inside an image of `size` when
   * given), the crop's points, the mirror's], image pixels. */
  async predictMirrored(img, transforms, size = null) {
    const crops = transforms.map((t) => cropImage(img, t));
    const both = await this.network.predict([...crops, ...crops.map(mirrored)]);
    this.batches++;
    const n = crops.length, S = this.size;
    return transforms.map((t, i) => {
      const direct = both[i], mirror = this.scheme.flipPoints(both[n + i], S);
      const one = t.toImage(direct), other = t.toImage(mirror), points = average(one, other);
      const gap = judgedDistance(direct, mirror, judgedPoints(points, size)) / S;
      return { points, gap, one, other };
    });
  }

  /** Points and trust of each face from its first crop (LandmarkPasses.run); `size`: the image's, to judge faces
   * by their points inside it; `edgeOnly`: per face, whether the detector found it only for reaching beyond the
   * image's edge (refined only from EDGE_FIRST_TRUST). */
  async run(img, transforms, size = null, edgeOnly = null) {
    if (!transforms.length) return [];
    const first = await this.predictMirrored(img, transforms, size);
    const faces = first.map((r) => ({ ...r, framing: r.points, batches: 1 }));
    let todo = faces.map((f, i) => i).filter((i) => !this.framedWell(transforms[i], faces[i], size));
    if (edgeOnly) todo = todo.filter((i) => !edgeOnly[i] || this.oneBatchTrust(faces[i], size) >= EDGE_FIRST_TRUST);
    for (let pass = 0; pass < MAX_PASSES - 1 && todo.length; pass++) {
      const rolls = todo.map((i) => rollAngle(faces[i].points, this.scheme));
      const again = await this.predictMirrored(img, todo.map((i, j) => this.framing(faces[i].points, rolls[j])), size);
      const next = [];
      todo.forEach((i, j) => {
        const f = faces[i], r = again[j];
        Object.assign(f, { framing: f.points, one: r.one, other: r.other, gap: r.gap, points: r.points });
        f.batches++;
        if (Math.abs(remainder(rollAngle(r.points, this.scheme) - rolls[j], 2 * Math.PI)) > ROLL_RECHECK
          || cutByEdge(r.points, size)) next.push(i);
      });
      todo = next;
    }
    for (const f of faces) {
      let d = disagreement(f.framing, f.one, f.other, this.scheme, size);
      if (f.batches === 1) d *= ONE_BATCH_DISAGREEMENT;
      f.trust = trustFromDisagreement(d);
    }
    return faces;
  }

  framedWell(t, f, size = null) {
    if (!(f.gap <= ORIENTATION_CHECK)) return false;
    const g = this.framing(f.points, rollAngle(f.points, this.scheme));
    if (Math.hypot(g.cx - t.cx, g.cy - t.cy) > FRAMING_SHIFT * t.side) return false;
    if (Math.abs(Math.log(g.side / t.side)) > FRAMING_SCALE) return false;
    if (Math.abs(remainder(g.angle - t.angle, 2 * Math.PI)) > FRAMING_ROLL) return false;
    return this.oneBatchTrust(f, size) >= REFINE_BELOW_TRUST;
  }

  /** Trust of a face's first batch, its points being the batch's own average (passes._one_batch_trust). */
  oneBatchTrust(f, size = null) {
    return trustFromDisagreement(ONE_BATCH_DISAGREEMENT * disagreement(f.points, f.one, f.other, this.scheme, size));
  }

  async trustScores(img, pointsList, size = null) {
    if (!pointsList.length) return [];
    const r = await this.predictMirrored(img, pointsList.map((p) => this.framing(p, rollAngle(p, this.scheme))));
    return r.map((x, i) => trustFromDisagreement(disagreement(pointsList[i], x.one, x.other, this.scheme, size)));
  }

  /** Faces whose way up is in doubt: each quarter turn of the crop, re-framed; the way whose mirror images agree
   * best wins, unless by less than KEEP_DETECTED_WAY (orientation.four_ways_up). */
  async fourWaysUp(img, transforms, size = null) {
    const tried = [];
    for (const t of transforms) {
      for (let k = 0; k < ORIENTATION_STEPS; k++) {
        tried.push(t.withAngle(remainder(t.angle + (2 * Math.PI * k) / ORIENTATION_STEPS, 2 * Math.PI)));
      }
    }
    const rough = await this.predictMirrored(img, tried);
    const better = await this.predictMirrored(img, rough.map((r) => this.framing(r.points, rollAngle(r.points, this.scheme))),
      size);
    return transforms.map((t, n) => {
      let best = ORIENTATION_STEPS * n;
      for (let j = best; j < ORIENTATION_STEPS * (n + 1); j++) if (better[j].gap < better[best].gap) best = j;
      if (better[best].gap > KEEP_DETECTED_WAY * better[ORIENTATION_STEPS * n].gap) best = ORIENTATION_STEPS * n;
      return better[best];
    });
  }
}

const surelyUpright = (gap, trust) => gap <= ORIENTATION_CHECK && trust >= ORIENTATION_TRUST;

export class Landmarker {
  constructor(detector, network, { minTrust = DEFAULT_MIN_TRUST, eyes = null } = {}) {
    this.detector = detector;
    this.network = network;
    this.scheme = network.scheme;
    this.passes = new LandmarkPasses(network);
    this.minTrust = minTrust;
    this.eyes = eyes; // the eye refiner (face88 only; null: the network's own lids)
  }

  /** ort: the onnxruntime-web module; base: the URL folder of the .onnx files; model: "face88" or "ibug68". */
  static async create(ort, base, model = "face88", options = {}) {
    const [detector, network, eyes] = await Promise.all([
      BlazeFace.create(ort, base, options), LandmarkNetwork.create(ort, base, model, options),
      model === "face88" ? EyeRefiner.create(ort, base, options) : null]);
    return new Landmarker(detector, network, { eyes });
  }

  /** Shapes with their lids placed again on eye patches (facemark.pipeline.eyes), when the model is face88. */
  async refineEyes(img, shapes) {
    return this.eyes && shapes.length ? this.eyes.refine(img, shapes, this.scheme) : shapes;
  }

  /** Faces by descending score: {box, score, points, trust} in image pixels (pixel-centre convention). */
  async detect(img) {
    if (tooThin(img.width, img.height)) return [];
    const copy = this.detectorLook(img);
    let faces = await this.landmarks(img, await this.findCandidates(copy, [0]));
    if (!faces.some((f) => f.upright)) {
      // no face surely upright: the detector may take a face lying on its side for a bigger, wrong one; look in
      // the image's quarter turns too, and keep one face where both ways found it
      faces = onePerFace(faces, await this.landmarks(img, await this.findCandidates(copy, QUARTER_TURNS)));
    }
    const kept = this.kept(faces);
    const points = await this.refineEyes(img, kept.map((f) => f.points));
    return kept.map((f, i) => ({ ...f, points: points[i] }));
  }

  /** The detector's faces found upright in `img`, each with its first crop (the camera's detections). */
  async candidates(img) {
    if (tooThin(img.width, img.height)) return [];
    return this.findCandidates(this.detectorLook(img), [0]);
  }

  /** What the detector sees (size_policy.detector_look, default look): the image shrunk by a whole factor, its
   * scale and border, and what the detector looks for in it ({minFace} in the copy's pixels). */
  detectorLook(img) {
    const { width, height } = img;
    const area = width * height, fewest = Math.sqrt(area / MAX_DETECT_PIXELS);
    // a whole number: the copy's pixel grid then falls on the image's (shrinking by 2 averages 2×2 pixels)
    const whole = Math.max(Math.ceil(lookSide(width, height) / LOOK_SIDE - 1e-9), fewest);
    const crowd = crowdFace(width, height);
    let s = whole, minFace = null;
    if (crowd !== null) {
      s = Math.max(Math.min(whole, wholeFactor(crowd)), fewest, 1.0);
      minFace = crowd / s;
    }
    const [small, scale] = scaledForDetector(img, s);
    return { small, s: scale, pad: roundHalfEven(BORDER_PAD * Math.min(small.width, small.height)), look: { minFace, crowd: minFace !== null } };
  }

  /** Candidates in the detector's copy turned by each of `turns` quarter turns (candidates.find_candidates), in
   * image pixels; over several turns, overlapping boxes are merged (best score kept). */
  async findCandidates({ small, s, pad, look }, turns) {
    let found = [];
    for (const k of turns) found.push(...(await this.detectTurned(small, pad, k, look)));
    if (found.length > 1 && turns.length > 1) {
      found = nms(found.map((c) => c.box), found.map((c) => c.score), 0.4).map((i) => found[i]);
    }
    return found.map((c) => moved(c, ([x, y]) => [(x - pad + 0.5) * s - 0.5, (y - pad + 0.5) * s - 0.5], s, 0));
  }

  async detectTurned(small, pad, k, look) {
    const width = small.width + 2 * pad, height = small.height + 2 * pad;
    const size = this.network.size, margin = this.network.margin;
    const out = [];
    for (const d of await this.detector.detectPadded(k ? rot90(small, k) : small, pad, look)) {
      const [x0, y0, x1, y1] = this.detector.toLandmarkBox(d.box);
      let roll = keypointRoll(d.keypoints);
      if (Math.abs(roll) < FIRST_CROP_MIN_ROLL) roll = 0;
      const bx = (d.box[0] + d.box[2]) / 2, by = (d.box[1] + d.box[3]) / 2;
      const dx = (x0 + x1) / 2 - bx, dy = (y0 + y1) / 2 - by;
      const c = Math.cos(roll), sn = Math.sin(roll);
      const cx = bx + c * dx - sn * dy, cy = by + sn * dx + c * dy;
      const w = x1 - x0, h = y1 - y0;
      const t = squareCropTransform([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], size, margin).withAngle(roll);
      const hw = (Math.abs(c) * w + Math.abs(sn) * h) / 2, hh = (Math.abs(sn) * w + Math.abs(c) * h) / 2;
      const candidate = { box: d.box, score: d.score, keypoints: d.keypoints, tiled: d.tiled,
        beyondEdge: Boolean(d.beyondEdge), transform: t, landmarkBox: [cx - hw, cy - hh, cx + hw, cy + hh], turn: k };
      out.push(moved(candidate, (p) => unturn(p, k, width, height), 1, (k * Math.PI) / 2));
    }
    return out;
  }

  async landmarks(img, found) {
    const size = { width: img.width, height: img.height };
    const result = await this.passes.run(img, found.map((c) => c.transform), size, found.map((c) => c.beyondEdge));
    const faces = found.map((c, i) => ({
      candidate: c, points: result[i].points, trust: result[i].trust,
      upright: surelyUpright(result[i].gap, result[i].trust), foundUpright: c.turn === 0,
    }));
    const doubtful = faces.filter((f) => !f.upright && (!f.candidate.beyondEdge || f.trust >= EDGE_FIRST_TRUST));
    if (doubtful.length) {
      const turned = await this.passes.fourWaysUp(img, doubtful.map((f) => f.candidate.transform), size);
      const trusts = await this.passes.trustScores(img, turned.map((t) => t.points), size);
      doubtful.forEach((f, i) => {
        Object.assign(f, { points: turned[i].points, trust: trusts[i], upright: surelyUpright(turned[i].gap, trusts[i]) });
      });
    }
    return faces;
  }

  /** One face per face found twice, among the faces that reach their trust floor (a face under its floor never
   * hides one that passes). */
  kept(faces) {
    const passing = faces.filter((f) => {
      const unsure = !f.upright || (f.candidate.turn && !f.foundUpright);
      const floor = Math.max(unsure ? UNSURE_MIN_TRUST : 0, f.candidate.tiled ? TILED_MIN_TRUST : 0, this.minTrust);
      return this.minTrust <= 0 || f.trust >= floor;
    });
    const once = distinctPoints(passing.map((f) => f.points), passing.map((f) => f.candidate.score), "union")
      .map((j) => passing[j]);
    const keep = new Set(distinctPoints(once.map((f) => f.points), once.map((f) => f.trust), "min", NESTED_SHARE));
    return once.filter((f, i) => keep.has(i))
      .map((f) => ({ box: f.candidate.box, score: f.candidate.score, points: f.points, trust: f.trust }));
  }

  /** Points for faces whose first crops are known, refined where the passes say it pays. */
  async landmarksForTransforms(img, transforms) {
    return (await this.passes.run(img, transforms)).map((r) => r.points);
  }

  /** One batch, no mirror: the points of each crop (tracking's pass, `Landmarker.predict_crops`). */
  async predictTransforms(img, transforms) {
    const crops = transforms.map((t) => cropImage(img, t));
    const points = await this.network.predict(crops);
    return { crops, points: points.map((p, i) => transforms[i].toImage(p)) };
  }
}

const QUARTER_TURNS = [1, 3, 2]; // the image turned 90° counter-clockwise, clockwise, then 180°

/** A candidate carried into another frame by a similarity: `move` maps points, `scale` multiplies lengths,
 * `turn` (radians) is added to angles; boxes stay axis-aligned (candidates._moved). */
function moved(c, move, scale, turn) {
  const box = (b) => {
    const [[ax, ay], [bx, by]] = [move([b[0], b[1]]), move([b[2], b[3]])];
    return [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)];
  };
  const t = c.transform, [cx, cy] = move([t.cx, t.cy]);
  return { ...c, box: box(c.box), keypoints: c.keypoints.map(move), landmarkBox: box(c.landmarkBox),
    transform: new CropTransform(cx, cy, t.side * scale, t.size, remainder(t.angle + turn, 2 * Math.PI)) };
}

/** Pixels of a width×height image turned counter-clockwise by k quarter turns -> its own pixels. */
function unturn([x, y], k, width, height) {
  return [[x, y], [width - 1 - y, x], [width - 1 - x, height - 1 - y], [y, height - 1 - x]][k % 4];
}

/** np.rot90(img, k): the image turned counter-clockwise by k quarter turns. */
function rot90(img, k) {
  const { width: W, height: H, data } = img;
  const [w, h] = k % 2 ? [H, W] : [W, H];
  const out = { width: w, height: h, data: new Uint8Array(data.length) };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [sx, sy] = [[x, y], [W - 1 - y, x], [W - 1 - x, H - 1 - y], [y, H - 1 - x]][k % 4];
      const i = (sy * W + sx) * 3, o = (y * w + x) * 3;
      out.data[o] = data[i];
      out.data[o + 1] = data[i + 1];
      out.data[o + 2] = data[i + 2];
    }
  }
  return out;
}

/** Indices (in order) of the shapes whose points' boxes overlap no shape of higher priority by more than
 * DUPLICATE_IOU (landmarker._distinct_points). */
function distinctPoints(pointsList, priority, mode, threshold = DUPLICATE_IOU) {
  if (pointsList.length < 2) return pointsList.map((p, i) => i);
  const kept = new Set(nms(pointsList.map(pointsBox), priority, threshold, mode));
  return pointsList.map((p, i) => i).filter((i) => kept.has(i));
}

/** One face found both upright and in a turned copy: the surely upright one, then the better score
 * (landmarker._one_per_face); faces best score first. */
function onePerFace(upright, turned) {
  const faces = [...upright, ...turned];
  const keep = distinctPoints(faces.map((f) => f.points), faces.map((f) => Number(f.upright) + f.candidate.score), "min");
  for (const i of keep) {
    if (faces[i].candidate.turn && upright.length) {
      const box = pointsBox(faces[i].points);
      faces[i].foundUpright = upright.some((u) => boxOverlap(box, pointsBox(u.points), "min") > DUPLICATE_IOU);
    }
  }
  keep.sort((a, b) => faces[b].candidate.score - faces[a].candidate.score);
  return keep.map((i) => faces[i]);
}

function pointsBox(points) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

function keypointRoll(k) {
  if (!k || k.length < 2) return 0;
  const dx = k[1][0] - k[0][0], dy = k[1][1] - k[0][1];
  return dx || dy ? Math.atan2(dy, dx) : 0;
}

/** The side of the squares the detector's default look sees: the longer side, or for a long image (longer than
 * LONG_IMAGE_ASPECT times its width) the shorter one (size_policy.look_side). */
function lookSide(width, height) {
  const longer = Math.max(width, height), shorter = Math.min(width, height);
  return longer > LONG_IMAGE_ASPECT * shorter ? shorter : longer;
}

/** The smallest face the default look looks for, in image pixels: CROWD_FACE_SHARE of the look side, but not under
 * CROWD_FACE_PX; null up to TILED_LOOK_SIDE, the whole-image look alone (size_policy.crowd_face). */
function crowdFace(width, height) {
  const side = lookSide(width, height);
  return side <= TILED_LOOK_SIDE ? null : Math.min(side * CROWD_FACE_SHARE, CROWD_FACE_PX);
}

/** The largest whole shrinking factor (≥ 1) that keeps a `face`-pixel face MIN_FACE_IN_COPY pixels wide. */
const wholeFactor = (face) => Math.max(1.0, Math.floor(face / MIN_FACE_IN_COPY + 1e-9));

/** Whether an image is too thin to hold a face (its shorter side under MIN_IMAGE_SIDE): not searched. */
const tooThin = (width, height) => Math.min(width, height) < MIN_IMAGE_SIDE;

/** (copy, exact s): the image at about 1/s of its size (size_policy.scaled_for_detector). */
export function scaledForDetector(img, s) {
  const { width, height } = img;
  const longer = Math.max(width, height);
  const side = Math.max(12, Math.floor(longer / s + 1e-9));
  if (side === longer) return [img, 1.0];
  s = longer / side;
  const [w, h] = width >= height ? [side, Math.max(1, Math.floor(height / s))] : [Math.max(1, Math.floor(width / s)), side];
  if (side > longer) throw new Error("images are only ever shrunk for the detector here");
  return [region(opencvShrink(img, s), 0, 0, w, h), s];
}

export { boxOverlap };
