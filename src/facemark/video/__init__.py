"""Faces through a video: reading frames (reader), following faces between detections (tracking) and
temporal smoothing (smoothing)."""
