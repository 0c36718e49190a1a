"""MTCNN (Zhang et al. 2016) in plain PyTorch, with facenet-pytorch's pretrained weights (see LICENSE-weights.md)."""

from facemark.detection.mtcnn.detector import MTCNNDetector, load_networks
from facemark.detection.mtcnn.nets import ONet, PNet, RNet

__all__ = ["MTCNNDetector", "ONet", "PNet", "RNet", "load_networks"]
