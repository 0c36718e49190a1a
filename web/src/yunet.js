// YuNet, the detector that finds the default look's crowd faces (facemark.detection.yunet, its whole-image pass
// at the size it is given): the image in the top-left of a black canvas whose sides are multiples of 32, as BGR
// 0..255, N×C×H×W; per grid cell of strides 8, 16 and 32 a score sqrt(cls × obj), a box and five keypoints;
// greedy non-maximum suppression. The server gives the model with its input's sides free, as Python runs it.

import { nms } from "./blazeface.js";

export const MODEL_FILE = "face_detection_yunet_2023mar.onnx";
const STRIDES = [8, 16, 32];
const DIVISOR = 32;
const NMS_IOU = 0.3;
const TOP_K = 5000;
const MIN_SCORE = 0.6;
// where the box of a face's points lies relative to YuNet's box (yunet.detector.LANDMARK_BOX)
export const LANDMARK_BOX = [-0.005, 0.115, 0.991, 0.738];

function padded(length) {
  return Math.max(DIVISOR, Math.ceil(length / DIVISOR) * DIVISOR);
}

export class YuNet {
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
  }

  static async create(ort, base, options) {
    // the file's outputs keep their declared 640×640 lengths, which onnxruntime warns about on every other size
    // (Python's session_options keeps those warnings quiet the same way)
    const quiet = { ...options, logSeverityLevel: 3 };
    return new YuNet(ort, await ort.InferenceSession.create(`${base}/${MODEL_FILE}`, quiet));
  }

  /** Faces in `img` ({width, height, data} RGB) inside a black border `pad` wide, in the padded image's pixels:
   * [{box, score, keypoints (5 points), tiled: false}], best first. */
  async detectPadded(img, pad) {
    const { width, height, data } = img;
    const cw = padded(width + 2 * pad), ch = padded(height + 2 * pad);
    const x = new Float32Array(3 * cw * ch);
    const plane = cw * ch;
    for (let y = 0; y < height; y++) {
      for (let u = 0; u < width; u++) {
        const src = (y * width + u) * 3, dst = (y + pad) * cw + (u + pad);
        x[dst] = data[src + 2]; // B
        x[plane + dst] = data[src + 1]; // G
        x[2 * plane + dst] = data[src]; // R
      }
    }
    const out = await this.session.run({ input: new this.ort.Tensor("float32", x, [1, 3, ch, cw]) });
    let boxes = [], keypoints = [], scores = [];
    for (const stride of STRIDES) {
      const cls = out[`cls_${stride}`].data, obj = out[`obj_${stride}`].data;
      const bbox = out[`bbox_${stride}`].data, kps = out[`kps_${stride}`].data;
      const cols = cw / stride, cells = cols * (ch / stride);
      for (let i = 0; i < cells; i++) {
        const c = Math.min(Math.max(cls[i], 0), 1), o = Math.min(Math.max(obj[i], 0), 1);
        const score = Math.sqrt(c * o);
        if (score < MIN_SCORE) continue;
        const col = i % cols, row = Math.floor(i / cols);
        const cx = (col + bbox[i * 4]) * stride, cy = (row + bbox[i * 4 + 1]) * stride;
        const hw = (Math.exp(Math.min(bbox[i * 4 + 2], 20)) * stride) / 2;
        const hh = (Math.exp(Math.min(bbox[i * 4 + 3], 20)) * stride) / 2;
        boxes.push([cx - hw, cy - hh, cx + hw, cy + hh]);
        const points = [];
        for (let k = 0; k < 5; k++) points.push([(col + kps[i * 10 + 2 * k]) * stride, (row + kps[i * 10 + 2 * k + 1]) * stride]);
        keypoints.push(points);
        scores.push(score);
      }
    }
    if (scores.length > TOP_K) {
      const best = scores.map((s, i) => i).sort((i, j) => scores[j] - scores[i] || i - j).slice(0, TOP_K);
      [boxes, keypoints, scores] = [best.map((i) => boxes[i]), best.map((i) => keypoints[i]), best.map((i) => scores[i])];
    }
    return nms(boxes, scores, NMS_IOU).map((i) => ({ box: boxes[i], score: scores[i], keypoints: keypoints[i], tiled: false }));
  }
}
