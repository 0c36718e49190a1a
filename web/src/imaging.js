// Pixels: the resampling the Python runtime does, written out so the browser cuts the same crops.
//
// An image here is {width, height, data}: RGB, 3 bytes a pixel, row by row (a Uint8Array or Uint8ClampedArray).
// The Python pipeline resizes with Pillow (BILINEAR with a box, reducing_gap; AFFINE with BILINEAR for turned
// crops) and shrinks the detector's copy with OpenCV (INTER_LINEAR at a whole factor). The functions below follow
// Pillow's libImaging (Resample.c, Reduce.c, Geometry.c) and OpenCV's resize.cpp step by step, fixed-point
// rounding included, so a crop here matches the Python crop to the byte (tests/browser/test_web.py compares the
// points; docs/web.md).

export function newImage(width, height) {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/** RGBA (a canvas's ImageData) -> RGB. */
export function fromRGBA(rgba, width, height) {
  const out = newImage(width, height);
  const d = out.data;
  for (let i = 0, j = 0, n = width * height; i < n; i++, j += 4) {
    d[i * 3] = rgba[j];
    d[i * 3 + 1] = rgba[j + 1];
    d[i * 3 + 2] = rgba[j + 2];
  }
  return out;
}

/** img[top:bottom, left:right], black where the box leaves the image (preprocessing.array_region). */
export function region(img, left, top, right, bottom) {
  const w = right - left, h = bottom - top;
  const out = newImage(w, h);
  const x0 = Math.max(left, 0), y0 = Math.max(top, 0);
  const x1 = Math.min(right, img.width), y1 = Math.min(bottom, img.height);
  if (x1 <= x0 || y1 <= y0) return out;
  const rowBytes = (x1 - x0) * 3;
  for (let y = y0; y < y1; y++) {
    const src = (y * img.width + x0) * 3;
    out.data.set(img.data.subarray(src, src + rowBytes), ((y - top) * w + (x0 - left)) * 3);
  }
  return out;
}

// ---------------------------------------------------------------------------------------- Pillow: resize

const PRECISION_BITS = 22; // Resample.c: 32 - 8 - 2
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

function clip8(ss) {
  const v = Math.floor(ss / ONE); // ss >> PRECISION_BITS, on values that may exceed 2^31 in a double
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function bilinearFilter(x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter: per output pixel, its first
 * input pixel, its count, and integer weights. in0 and in1 are C floats there. */
function coefficients(inSize, in0, in1, outSize) {
  in0 = Math.fround(in0);
  in1 = Math.fround(in1);
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bilinearFilter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Image.resize(size, BILINEAR, box) without reducing_gap: ImagingResample (horizontal pass, then vertical). */
function resample(img, outW, outH, box) {
  const needH = outW !== img.width || box[0] !== 0 || box[2] !== outW;
  const needV = outH !== img.height || box[1] !== 0 || box[3] !== outH;
  const vert = coefficients(img.height, box[1], box[3], outH);
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
  let src = img;
  if (needH) {
    const hor = coefficients(img.width, box[0], box[2], outW);
    for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= yFirst;
    const rows = yLast - yFirst;
    const tmp = newImage(outW, rows);
    const { ksize, bounds, kk } = hor;
    const s = img.data, d = tmp.data, W = img.width;
    for (let yy = 0; yy < rows; yy++) {
      const rowIn = (yy + yFirst) * W * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k0 = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < xmax; x++) {
          const k = kk[k0 + x], p = rowIn + (x + xmin) * 3;
          s0 += s[p] * k;
          s1 += s[p + 1] * k;
          s2 += s[p + 2] * k;
        }
        const o = (yy * outW + xx) * 3;
        d[o] = clip8(s0);
        d[o + 1] = clip8(s1);
        d[o + 2] = clip8(s2);
      }
    }
    src = tmp;
  }
  if (!needV) return needH ? src : { width: src.width, height: src.height, data: src.data.slice() };
  const out = newImage(src.width, outH);
  const { ksize, bounds, kk } = vert;
  const s = src.data, d = out.data, W = src.width;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k0 = yy * ksize;
    for (let xx = 0; xx < W; xx++) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const k = kk[k0 + y], p = ((y + ymin) * W + xx) * 3;
        s0 += s[p] * k;
        s1 += s[p + 1] * k;
        s2 += s[p + 2] * k;
      }
      const o = (yy * W + xx) * 3;
      d[o] = clip8(s0);
      d[o + 1] = clip8(s1);
      d[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Reduce.c: the box (x0, y0, x1, y1, whole pixels) averaged over fx×fy blocks, the last row and column over the
 * pixels they have; the C's fixed-point division (a float multiplier, >> 24) kept. */
function reduce(img, fx, fy, box) {
  const [bx0, by0, bx1, by1] = box;
  const bw = bx1 - bx0, bh = by1 - by0;
  const outW = Math.floor((bw + fx - 1) / fx), outH = Math.floor((bh + fy - 1) / fy);
  const out = newImage(outW, outH);
  const s = img.data, d = out.data, W = img.width;
  for (let y = 0; y < outH; y++) {
    const ya = by0 + y * fy, yb = Math.min(ya + fy, by1);
    for (let x = 0; x < outW; x++) {
      const xa = bx0 + x * fx, xb = Math.min(xa + fx, bx1);
      const n = (yb - ya) * (xb - xa);
      const multiplier = Math.trunc(Math.fround(Math.fround(4294967296) / (256 * n)));
      const amend = Math.floor(n / 2);
      let s0 = amend, s1 = amend, s2 = amend;
      for (let yy = ya; yy < yb; yy++) {
        for (let xx = xa, p = (yy * W + xa) * 3; xx < xb; xx++, p += 3) {
          s0 += s[p];
          s1 += s[p + 1];
          s2 += s[p + 2];
        }
      }
      const o = (y * outW + x) * 3;
      d[o] = Math.floor((s0 * multiplier) / 16777216);
      d[o + 1] = Math.floor((s1 * multiplier) / 16777216);
      d[o + 2] = Math.floor((s2 * multiplier) / 16777216);
    }
  }
  return out;
}

/** Image.resize((outW, outH), Resampling.BILINEAR, box=box, reducing_gap=gap) (Pillow's Image.py). */
export function resize(img, outW, outH, box, gap = null) {
  box = box || [0, 0, img.width, img.height];
  if (gap !== null) {
    const fx = Math.trunc((box[2] - box[0]) / outW / gap) || 1;
    const fy = Math.trunc((box[3] - box[1]) / outH / gap) || 1;
    if (fx > 1 || fy > 1) {
      // Image._get_safe_box: the box grown by the filter's support (bilinear: 1 - 0.5)
      const sx = 0.5 * ((box[2] - box[0]) / outW), sy = 0.5 * ((box[3] - box[1]) / outH);
      const rb = [Math.max(0, Math.trunc(box[0] - sx)), Math.max(0, Math.trunc(box[1] - sy)),
        Math.min(img.width, Math.ceil(box[2] + sx)), Math.min(img.height, Math.ceil(box[3] + sy))];
      img = reduce(img, fx, fy, rb);
      box = [(box[0] - rb[0]) / fx, (box[1] - rb[1]) / fy, (box[2] - rb[0]) / fx, (box[3] - rb[1]) / fy];
    }
  }
  return resample(img, outW, outH, box);
}

// ---------------------------------------------------------------------------------------- Pillow: affine

/** Image.transform((size, size), AFFINE, a, BILINEAR, fillcolor=0): Geometry.c's generic transform with
 * bilinear_filter32RGB (doubles, truncated to bytes); black where the source point leaves the image. */
export function affine(img, outW, outH, a) {
  const out = newImage(outW, outH);
  const W = img.width, H = img.height, s = img.data, d = out.data, row = W * 3;
  const [a0, a1, a2, a3, a4, a5] = a;
  for (let y = 0; y < outH; y++) {
    const yc = y + 0.5;
    for (let x = 0, o = y * outW * 3; x < outW; x++, o += 3) {
      const xc = x + 0.5;
      let xin = a0 * xc + a1 * yc + a2;
      let yin = a3 * xc + a4 * yc + a5;
      if (xin < 0 || xin >= W || yin < 0 || yin >= H) continue;
      xin -= 0.5;
      yin -= 0.5;
      const ix = Math.floor(xin), iy = Math.floor(yin);
      const dx = xin - ix, dy = yin - iy;
      // XCLIP / YCLIP: neighbours past the edge repeat the edge pixel; a missing next row repeats the first
      const c0 = (ix < 0 ? 0 : ix) * 3, c1 = (ix + 1 > W - 1 ? W - 1 : ix + 1) * 3;
      const r0 = (iy < 0 ? 0 : iy) * row, r1 = iy + 1 < H ? (iy + 1) * row : r0;
      for (let b = 0; b < 3; b++) {
        const p0 = s[r0 + c0 + b], q0 = s[r1 + c0 + b];
        const v1 = p0 + (s[r0 + c1 + b] - p0) * dx;
        const v2 = q0 + (s[r1 + c1 + b] - q0) * dx;
        d[o + b] = v1 + (v2 - v1) * dy; // a Uint8Array truncates, as the C's (UINT8) cast
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------- OpenCV: shrink

/** cv2.resize(rgb, None, fx=1/s, fy=1/s, interpolation=INTER_LINEAR), the output size OpenCV gives
 * (round(size / s)); used by size_policy.scaled_for_detector. A whole factor of 2 is OpenCV's area average;
 * otherwise linear interpolation with 11-bit weights. `outW`, `outH`: the output size when the caller knows the one
 * OpenCV gives (cv2.resize with fx = 1/s rounds size × fx half to even). */
export function opencvShrink(img, s, outW = Math.round(img.width / s), outH = Math.round(img.height / s)) {
  const out = newImage(outW, outH);
  const src = img.data, d = out.data, W = img.width, H = img.height;
  const xs = taps(W, outW, s), ys = taps(H, outH, s);
  const row0 = new Int32Array(outW * 3), row1 = new Int32Array(outW * 3);
  const horizontal = (y, into) => {
    const base = y * W * 3;
    for (let x = 0; x < outW; x++) {
      const p0 = base + xs.i0[x] * 3, p1 = base + xs.i1[x] * 3, w0 = xs.w0[x], w1 = xs.w1[x];
      for (let b = 0; b < 3; b++) into[x * 3 + b] = src[p0 + b] * w0 + src[p1 + b] * w1;
    }
  };
  for (let y = 0; y < outH; y++) {
    horizontal(ys.i0[y], row0);
    horizontal(ys.i1[y], row1);
    const w0 = ys.w0[y], w1 = ys.w1[y], o = y * outW * 3;
    for (let i = 0; i < outW * 3; i++) {
      const v = Math.floor((row0[i] * w0 + row1[i] * w1 + (1 << 21)) / (1 << 22));
      d[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

function taps(inSize, outSize, s) {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
  const w0 = new Int32Array(outSize), w1 = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    let f = Math.fround((i + 0.5) * s - 0.5);
    let k = Math.floor(f);
    f -= k;
    if (k < 0) { k = 0; f = 0; }
    if (k + 1 >= inSize) { k = inSize - 1; f = 0; }
    const b = Math.round(f * 2048);
    i0[i] = k;
    i1[i] = Math.min(k + 1, inSize - 1);
    w0[i] = 2048 - b;
    w1[i] = b;
  }
  return { i0, i1, w0, w1 };
}

/** cvRound: the nearest integer, halves to the even one (how OpenCV rounds a size it computes). */
export function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
