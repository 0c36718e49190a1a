// BlazeFace, the built-in face detector, as the Python runtime runs it (facemark.detection.blazeface): the
// short-range network on the whole image first, then the full-range one on the whole image and the look's tiles
// (a face filling the frame is kept as the short-range network found it), anchors decoded into boxes and six
// keypoints, MediaPipe's weighted non-maximum suppression; the default look's crowd faces by YuNet (yunet.js).
// Constants: that module's.

import { newImage, opencvShrink, region, resize, roundHalfEven } from "./imaging.js";
import { LANDMARK_BOX as CROWD_BOX, YuNet } from "./yunet.js";

const MODELS = {
  full: { file: "blazeface_full.onnx", inputSize: 192, strides: [4], anchorsPerLayer: 1, smallestFace: 20 },
  short: { file: "blazeface_short.onnx", inputSize: 128, strides: [8, 16, 16, 16], anchorsPerLayer: 2, smallestFace: 20 },
};
// where the box of a face's points lies relative to the detector's box (centre shift, size ratios)
export const LANDMARK_BOXES = {
  "full+short": [0.001, 0.07, 0.869, 0.863],
  full: [0.001, 0.099, 0.83, 0.821],
  short: [0.0, 0.065, 0.88, 0.871],
};
const NUM_KEYPOINTS = 6;
const SCORE_CLIP = 100;
const NMS_IOU = 0.3;
const CONTAINED = 0.6;
const EDGE_BLEND = 2;
// detectPadded's border shows the image mirrored at its edges (reflect-101) in a band MIRROR_BAND of its width,
// black beyond it
export const MIRRORED_BORDER = true;
const MIRROR_BAND = 0.5;
// a detection centred beyond the image's edge by more than this share of its side is a face's mirror twin
const MIRROR_TWIN_SHARE = 0.25;
const PORTRAIT_FACE = 0.3;
const LONG_IMAGE_ASPECT = 2.0;
const TILE_OVERLAP = 2.5;
const MIN_SCORE = 0.5;
// a box reaching beyond the image's edge by EDGE_REACH of its side or more (a face cut by the edge) is kept from
// EDGE_SCORE_SHARE of MIN_SCORE (blazeface.detector.EDGE_SCORE_SHARE)
const EDGE_SCORE_SHARE = 0.6;
const EDGE_REACH = 0.15;
// the default look's crowd is found by YuNet in one pass over the image shrunk so its smallest face is this many
// input pixels (blazeface.detector.CROWD_INPUT_FACE)
const CROWD_INPUT_FACE = 28.0;

function anchorCentres(model) {
  const centres = [];
  let layer = 0;
  while (layer < model.strides.length) {
    const stride = model.strides[layer];
    let run = 1;
    while (layer + run < model.strides.length && model.strides[layer + run] === stride) run++;
    const cells = Math.ceil(model.inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < run * model.anchorsPerLayer; k++) {
          centres.push([((x + 0.5) * model.inputSize) / cells, ((y + 0.5) * model.inputSize) / cells]);
        }
      }
    }
    layer += run;
  }
  return centres;
}

export class BlazeFace {
  /** sessions: {full, short} onnxruntime-web InferenceSessions; ort: the onnxruntime-web module. */
  constructor(ort, sessions, crowdFinder = null) {
    this.ort = ort;
    this.sessions = sessions;
    this.crowdFinder = crowdFinder; // YuNet, for Look.crowd
    this.models = [MODELS.full, MODELS.short];
    this.anchors = this.models.map(anchorCentres);
    this.landmarkBox = LANDMARK_BOXES["full+short"];
  }

  static async create(ort, base, options) {
    const [full, short, crowd] = await Promise.all([
      ...[MODELS.full, MODELS.short].map((m) => ort.InferenceSession.create(`${base}/${m.file}`, options)),
      YuNet.create(ort, base, options)]);
    return new BlazeFace(ort, { full, short }, crowd);
  }

  /** The detector's box -> an estimate of the box around the face's landmarks (FaceDetector.landmark_box). */
  toLandmarkBox(box) {
    const [x0, y0, x1, y1] = box;
    const [dx, dy, sw, sh] = this.landmarkBox;
    const w = x1 - x0, h = y1 - y0;
    const cx = (x0 + x1) / 2 + dx * w, cy = (y0 + y1) / 2 + dy * h;
    return [cx - (sw * w) / 2, cy - (sh * h) / 2, cx + (sw * w) / 2, cy + (sh * h) / 2];
  }

  /** Detections in `img` inside a virtual border `pad` wide (the image mirrored at its edges, MIRRORED_BORDER), in the pixels of the padded image; `look`:
   * what to look for ({minFace}: the smallest face in pixels of `img`, null for the whole-image look alone). */
  async detectPadded(img, pad, look = { minFace: null }) {
    const { width, height } = img;
    if (look.crowd && look.minFace !== null) {
      // the default look's crowd: the whole-image look, then YuNet's pass for the smaller faces
      return this.withCrowd(await this.detectPadded(img, pad, { minFace: null }), img, pad, look.minFace);
    }
    const windows = this.windows(width + 2 * pad, height + 2 * pad, look)
      .map((w) => ({ ...w, left: w.left - pad, top: w.top - pad }));
    const whole = windows.filter((w) => w.maxFace === null); // the whole-image look (no tiles)
    const tiled = windows.length > whole.length;
    const found = await this.run(1, img, whole, pad);
    // (a box kept under MIN_SCORE only for reaching beyond the edge is no portrait)
    if (found.some((f) => f.boxes.some((b, i) => f.scores[i] >= MIN_SCORE && b[2] - b[0] >= PORTRAIT_FACE * Math.min(height, width)))) {
      // a face filling much of the image (a portrait, a selfie, a webcam frame): kept as the short-range network
      // found it; the full-range network and the tiles look for every other face
      const near = this.merged(found, pad, false, "short");
      const others = this.merged(await this.run(0, img, windows, pad), pad, tiled, "full")
        .filter((d) => !near.some((n) => boxOverlap(d.box, n.box) > NMS_IOU));
      return withoutTwins([...near, ...others].sort((a, b) => b.score - a.score), width, height, pad);
    }
    found.push(...(await this.run(0, img, windows, pad)));
    return withoutTwins(this.merged(found, pad, tiled, "full+short"), width, height, pad);
  }

  /** `found` (padded pixels) and the faces down to `minFace` YuNet finds in one pass over `img` shrunk so such a
   * face is CROWD_INPUT_FACE pixels, moved to this detector's calibration; one overlapping a found box (IoU) is
   * left out, the others are `tiled` (BlazeFaceDetector._with_crowd). */
  async withCrowd(found, img, pad, minFace) {
    const scale = Math.min(1.0, CROWD_INPUT_FACE / minFace);
    const { width, height } = img;
    // OpenCV's bilinear shrink by exactly `scale` on both axes, its size rounded as cv2.resize rounds it
    const small = scale === 1.0 ? img
      : opencvShrink(img, 1.0 / scale, roundHalfEven(width * scale), roundHalfEven(height * scale));
    const smallPad = Math.floor(Math.min(pad * scale, CROWD_INPUT_FACE) + 0.5);
    const crowd = await this.crowdFinder.detectPadded(small, smallPad);
    if (!crowd.length) return found;
    const back = ([x, y]) => [(x - smallPad + 0.5) / scale - 0.5 + pad, (y - smallPad + 0.5) / scale - 0.5 + pad];
    const known = found.map((d) => d.box);
    const out = [...found];
    for (const d of crowd) {
      const box = recalibrated([...back([d.box[0], d.box[1]]), ...back([d.box[2], d.box[3]])], CROWD_BOX, this.landmarkBox);
      if (known.some((k) => boxOverlap(box, k) > NMS_IOU)) continue;
      out.push({ box, score: d.score, keypoints: d.keypoints.map(back), tiled: true });
      known.push(box);
    }
    return out.sort((a, b) => b.score - a.score);
  }

  async run(k, img, windows, pad = 0) {
    const model = this.models[k], session = this.sessions[k === 0 ? "full" : "short"], size = model.inputSize;
    const out = [];
    for (const window of windows) {
      const x = networkInput(img, window, size, MIRRORED_BORDER ? MIRROR_BAND * pad : 0);
      const result = await session.run({ image: new this.ort.Tensor("float32", x, [1, size, size, 3]) });
      const names = session.outputNames;
      const reg = result[names[0]].data, logits = result[names[1]].data;
      const decoded = this.decode(reg, logits, this.anchors[k], window, size, img.width, img.height);
      if (decoded) out.push({ ...decoded, window });
    }
    return out;
  }

  decode(reg, logits, anchors, window, size, width, height) {
    const boxes = [], keypoints = [], scores = [];
    const toImage = (x, y) => [x * (window.side / size) + window.left - 0.5, y * (window.side / size) + window.top - 0.5];
    for (let a = 0; a < anchors.length; a++) {
      const l = Math.min(Math.max(logits[a], -SCORE_CLIP), SCORE_CLIP);
      const score = 1 / (1 + Math.exp(-l));
      if (score < MIN_SCORE * EDGE_SCORE_SHARE) continue;
      const r = a * 16;
      if (window.maxFace !== null && Math.max(reg[r + 2], reg[r + 3]) > window.maxFace) continue;
      const [ax, ay] = anchors[a];
      const cx = reg[r] + ax, cy = reg[r + 1] + ay, hw = reg[r + 2] / 2, hh = reg[r + 3] / 2;
      const box = [...toImage(cx - hw, cy - hh), ...toImage(cx + hw, cy + hh)];
      if (score < MIN_SCORE && reachBeyond(box, width, height) < EDGE_REACH) continue;
      boxes.push(box);
      const kp = [];
      for (let j = 0; j < NUM_KEYPOINTS; j++) kp.push(toImage(reg[r + 4 + 2 * j] + ax, reg[r + 5 + 2 * j] + ay));
      keypoints.push(kp);
      scores.push(score);
    }
    return scores.length ? { boxes, keypoints, scores } : null;
  }

  merged(found, pad, tiled, calibrated) {
    if (!found.length) return [];
    let boxes = [], keypoints = [], scores = [], fromTile = [];
    for (const f of found) {
      boxes.push(...f.boxes.map((b) => b.map((v) => v + pad)));
      keypoints.push(...f.keypoints.map((k) => k.map(([x, y]) => [x + pad, y + pad])));
      scores.push(...f.scores);
      fromTile.push(...f.scores.map(() => f.window.maxFace !== null));
    }
    if (calibrated !== "full+short") boxes = boxes.map((b) => recalibrated(b, LANDMARK_BOXES[calibrated], this.landmarkBox));
    let out = [];
    // boxes under MIN_SCORE (kept only beyond the edge) never join a sure box's cluster, and their own clusters count
    // only where no sure detection overlaps them (BlazeFaceDetector._merged)
    for (const sure of [true, false]) {
      const part = scores.map((s, i) => i).filter((i) => (scores[i] >= MIN_SCORE) === sure);
      const known = out.map((d) => d.box);
      for (const members of nmsGroups(part.map((i) => boxes[i]), part.map((i) => scores[i]), NMS_IOU, "union")) {
        const group = members.map((j) => part[j]);
        const total = group.reduce((s, i) => s + scores[i], 0);
        const box = [0, 0, 0, 0], points = Array.from({ length: NUM_KEYPOINTS }, () => [0, 0]);
        for (const i of group) {
          const w = scores[i] / total;
          for (let c = 0; c < 4; c++) box[c] += w * boxes[i][c];
          for (let j = 0; j < NUM_KEYPOINTS; j++) {
            points[j][0] += w * keypoints[i][j][0];
            points[j][1] += w * keypoints[i][j][1];
          }
        }
        if (!sure && known.some((k) => boxOverlap(box, k, "min") > NMS_IOU)) continue;
        out.push({ box, score: scores[group[0]], keypoints: points, tiled: group.every((i) => fromTile[i]),
                   beyondEdge: !sure });
      }
    }
    if (tiled && out.length > 1) {
      const keep = nms(out.map((d) => d.box), out.map((d) => d.score), CONTAINED, "min").sort((a, b) => a - b);
      out = keep.map((i) => out[i]);
    }
    return out;
  }

  /** The squares of the image the network looks at (BlazeFaceDetector.windows): the whole image letterboxed,
   * then, when `look.minFace` asks for faces smaller than that pass finds, the fewest levels of tiles, evenly spaced
   * in scale, at most TILE_OVERLAP times finer each than the one before, the last where a minFace face becomes
   * `smallestFace` input pixels. */
  windows(width, height, look = { minFace: null }) {
    const size = this.models[0].inputSize, smallest = this.models[0].smallestFace;
    const longer = Math.max(width, height), shorter = Math.min(width, height);
    let found;
    if (longer > LONG_IMAGE_ASPECT * shorter) {
      // squares of the shorter side along the length, never smaller than the network's input (a thin strip is not
      // enlarged into hundreds of squares)
      const side = Math.min(longer, Math.max(shorter, size));
      found = [];
      for (const top of tileStarts(height, side, side / 2)) {
        for (const left of tileStarts(width, side, side / 2)) found.push({ left, top, side, maxFace: null });
      }
    } else {
      found = [{ left: (width - longer) / 2, top: (height - longer) / 2, side: longer, maxFace: null }];
    }
    const scale = size / found[0].side;
    if (look.minFace === null) return found;
    const finest = smallest / look.minFace; // input pixels per image pixel at the last level
    if (finest <= scale * 1.001) return found;
    const levels = Math.ceil(Math.log(finest / scale) / Math.log(TILE_OVERLAP) - 1e-9);
    const step = (finest / scale) ** (1 / levels);
    for (let k = 1; k <= levels; k++) found.push(...this.tileLevel(width, height, scale * step ** k));
    return found;
  }

  /** Overlapping square tiles covering the image, each seen at `scale` input pixels per image pixel. */
  tileLevel(width, height, scale) {
    const size = this.models[0].inputSize, smallest = this.models[0].smallestFace;
    const side = size / scale, overlap = (TILE_OVERLAP * smallest) / scale;
    const found = [];
    for (const top of tileStarts(height, side, overlap)) {
      for (const left of tileStarts(width, side, overlap)) found.push({ left, top, side, maxFace: TILE_OVERLAP * smallest });
    }
    return found;
  }
}

/** The S×S×3 float input in [-1, 1] for one window (blazeface._network_input): Pillow's bilinear resize of the
 * image part it covers; where the window leaves the image, the image mirrored at its edge within `border` image
 * pixels of it, -1 beyond (without a border: -1, EDGE_BLEND pixels of black blended at the edge). */
export function networkInput(img, window, size, border = 0) {
  const { width, height } = img;
  const scale = size / window.side;
  const blend = border > 0 ? 0 : EDGE_BLEND;
  const x0 = Math.min(Math.max(0, Math.ceil(-window.left * scale - 1e-6) - blend), size);
  const y0 = Math.min(Math.max(0, Math.ceil(-window.top * scale - 1e-6) - blend), size);
  const x1 = Math.max(Math.min(size, Math.floor((width - window.left) * scale + 1e-6) + blend), x0);
  const y1 = Math.max(Math.min(size, Math.floor((height - window.top) * scale + 1e-6) + blend), y0);
  const out = new Float32Array(size * size * 3).fill(-1);
  if (x1 > x0 && y1 > y0) {
    const left = window.left + x0 / scale, top = window.top + y0 / scale;
    const right = window.left + x1 / scale, bottom = window.top + y1 / scale;
    const l0 = Math.floor(left), t0 = Math.floor(top), r0 = Math.ceil(right), b0 = Math.ceil(bottom);
    const part = region(img, l0, t0, r0, b0);
    const resized = resize(part, x1 - x0, y1 - y0, [left - l0, top - t0, right - l0, bottom - t0], 2.0);
    const w = x1 - x0, d = resized.data;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = ((y - y0) * w + (x - x0)) * 3, o = (y * size + x) * 3;
        out[o] = Math.fround(d[i] * Math.fround(2 / 255)) - 1;
        out[o + 1] = Math.fround(d[i + 1] * Math.fround(2 / 255)) - 1;
        out[o + 2] = Math.fround(d[i + 2] * Math.fround(2 / 255)) - 1;
      }
    }
    if (border > 0) mirrorBorder(out, size, [x0, y0, x1, y1], border * scale);
  }
  return out;
}

/** How far `box` (pixel-centre x0, y0, x1, y1) reaches beyond the nearest edge it crosses of a width×height image,
 * over its longer side; 0 or less inside the image (blazeface.detector._reach_beyond). */
function reachBeyond([x0, y0, x1, y1], width, height) {
  const beyond = Math.max(-0.5 - x0, -0.5 - y0, x1 - (width - 0.5), y1 - (height - 0.5));
  return beyond / Math.max(x1 - x0, y1 - y0, 1e-9);
}

/** `found` (padded pixels) less the mirror twins of faces near the edge (blazeface._without_twins). */
function withoutTwins(found, width, height, pad) {
  if (!(MIRRORED_BORDER && pad > 0)) return found;
  return found.filter(({ box: [x0, y0, x1, y1] }) => {
    const cx = (x0 + x1) / 2 - pad, cy = (y0 + y1) / 2 - pad;
    const reach = MIRROR_TWIN_SHARE * Math.max(x1 - x0, y1 - y0);
    return cx >= -reach && cx <= width + reach && cy >= -reach && cy <= height + reach;
  });
}

/** Reflect-101 index of `i` into 0..n-1 (numpy.pad's "reflect", repeated for long reaches). */
function reflectIndex(i, n) {
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/** Fill `out` (size×size×3) around its `inside` box [x0, y0, x1, y1] (output pixels: the image) with the box
 * mirrored at its edges, at most `band` output pixels wide (blazeface._mirror_border). */
function mirrorBorder(out, size, inside, band) {
  const [x0, y0, x1, y1] = inside;
  if (x1 - x0 < 2 || y1 - y0 < 2) return;
  const b = Math.max(roundHalfEven(band), 0);
  const bx0 = Math.max(x0 - b, 0), by0 = Math.max(y0 - b, 0), bx1 = Math.min(x1 + b, size), by1 = Math.min(y1 + b, size);
  for (let y = by0; y < by1; y++) {
    const sy = y0 + reflectIndex(y - y0, y1 - y0);
    for (let x = bx0; x < bx1; x++) {
      if (y >= y0 && y < y1 && x >= x0 && x < x1) continue;
      const sx = x0 + reflectIndex(x - x0, x1 - x0);
      const o = (y * size + x) * 3, i = (sy * size + sx) * 3;
      out[o] = out[i];
      out[o + 1] = out[i + 1];
      out[o + 2] = out[i + 2];
    }
  }
}

function tileStarts(length, side, overlap) {
  if (side >= length) return [(length - side) / 2];
  const count = Math.ceil((length - overlap) / (side - overlap));
  const step = count > 1 ? (length - side) / (count - 1) : 0;
  return Array.from({ length: count }, (_, k) => k * step);
}

function recalibrated(b, source, target) {
  const [sdx, sdy, ssw, ssh] = source, [tdx, tdy, tsw, tsh] = target;
  const w = b[2] - b[0], h = b[3] - b[1];
  let cx = (b[0] + b[2]) / 2 + sdx * w, cy = (b[1] + b[3]) / 2 + sdy * h;
  const w2 = (w * ssw) / tsw, h2 = (h * ssh) / tsh;
  cx -= tdx * w2;
  cy -= tdy * h2;
  return [cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2];
}

// ---------------------------------------------------------------------------------------- boxes

export function boxOverlap(a, b, mode = "union") {
  const iw = Math.max(Math.min(a[2], b[2]) - Math.max(a[0], b[0]), 0);
  const ih = Math.max(Math.min(a[3], b[3]) - Math.max(a[1], b[1]), 0);
  const inter = iw * ih;
  const areaA = Math.max(a[2] - a[0], 0) * Math.max(a[3] - a[1], 0);
  const areaB = Math.max(b[2] - b[0], 0) * Math.max(b[3] - b[1], 0);
  const denom = mode === "union" ? areaA + areaB - inter : Math.min(areaA, areaB);
  return denom > 0 ? inter / denom : 0;
}

function byScore(scores) {
  return scores.map((s, i) => i).sort((i, j) => scores[j] - scores[i] || i - j);
}

/** Indices kept by greedy non-maximum suppression, best score first (detection.nms.nms). */
export function nms(boxes, scores, threshold, mode = "union") {
  return nmsGroups(boxes, scores, threshold, mode).map((g) => g[0]);
}

/** Greedy NMS that says what each kept box removed (detection.nms.nms_groups). */
export function nmsGroups(boxes, scores, threshold, mode = "union") {
  const order = byScore(scores);
  const removed = new Array(order.length).fill(false);
  const groups = [];
  for (let i = 0; i < order.length; i++) {
    if (removed[i]) continue;
    const group = [order[i]];
    removed[i] = true;
    for (let j = i + 1; j < order.length; j++) {
      if (!removed[j] && boxOverlap(boxes[order[i]], boxes[order[j]], mode) > threshold) {
        group.push(order[j]);
        removed[j] = true;
      }
    }
    groups.push(group);
  }
  return groups;
}

export { newImage };
