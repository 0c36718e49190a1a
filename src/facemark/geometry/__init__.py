"""Answers from landmarks alone, no network: eye and mouth openness and blinks (openness), head pose (pose),
aligned face chips (chips)."""
