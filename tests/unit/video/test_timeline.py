"""facemark.video.reader.Timeline: frame times from container timestamps, with the nominal rate where a file gives
none, and what the output's frame rate is decided from; ReadAhead: frames decoded by a thread ahead of the caller."""

import math

import numpy as np
import pytest

from facemark.video.reader import Frame, FrameReader, ReadAhead, Timeline, VideoError


def test_container_timestamps_are_kept():
    t = Timeline()
    times = [t.next(s, 30.0) for s in (0.0, 1 / 30, 2 / 30, 3 / 30)]
    assert times == [0.0, 1 / 30, 2 / 30, 3 / 30]
    assert t.nominal == 0 and t.count == 4
    assert math.isclose(t.average_fps(), 30.0)
    assert not t.variable


def test_missing_or_backward_stamps_get_the_nominal_spacing():
    t = Timeline()
    assert t.next(float("nan"), 25.0) == 0.0
    assert math.isclose(t.next(float("nan"), 25.0), 0.04)
    assert math.isclose(t.next(0.0, 25.0), 0.08)  # a stamp that does not move forward
    assert t.nominal == 3
    assert t.average_fps() is None  # no rate from timestamps a file did not give


def test_lost_frames_share_the_gap_and_count():
    t = Timeline()
    t.next(0.0, 10.0)
    t.next(0.1, 10.0)
    t.next(0.4, 10.0, lost=2)  # two frames could not be decoded between
    assert t.count == 5
    assert math.isclose(t.max_gap, 0.1) and math.isclose(t.min_gap, 0.1)
    assert math.isclose(t.average_fps(), 10.0)


def test_a_variable_frame_rate_is_recognised():
    t = Timeline()
    for s in (0.0, 1 / 30, 2 / 30, 2 / 30 + 1 / 15, 2 / 30 + 2 / 15):
        t.next(s, 30.0)
    assert t.variable
    steady = Timeline()
    for s in (0.0, 0.0334, 0.0666, 0.1001):  # timestamp rounding is not a variable rate
        steady.next(s, 30.0)
    assert not steady.variable


class _Counting(FrameReader):
    """`count` small frames, then `error` raised (None: the end)."""

    def __init__(self, count: int, error: Exception | None = None):
        super().__init__()
        self.count, self.error = count, error

    def __iter__(self):
        for k in range(self.count):
            self.decoded += 1
            yield Frame(k, k / 30, np.full((4, 4, 3), k, np.uint8))
        if self.error is not None:
            raise self.error


def test_read_ahead_gives_the_frames_in_order_and_the_reader_s_counts():
    reader = _Counting(50)
    frames = ReadAhead(reader, depth=3)
    assert [f.number for f in frames] == list(range(50))
    frames.close()
    assert reader.decoded == 50 and next(frames, None) is None


def test_read_ahead_hands_the_reader_s_error_to_the_caller():
    frames = ReadAhead(_Counting(5, VideoError("broken")), depth=2)
    got = []
    with pytest.raises(VideoError, match="broken"):
        for f in frames:
            got.append(f.number)
    assert got == list(range(5))


def test_closing_read_ahead_early_stops_its_thread():
    frames = ReadAhead(_Counting(10_000), depth=2)
    assert next(frames).number == 0
    frames.close()
    assert not frames._thread.is_alive()
