"""Scoring landmarks: error metrics (NME, IOD, CED) and scoring against human 68-point labels."""
