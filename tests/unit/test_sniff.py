"""facemark.images.sniff: the one function that tells containers apart from a file's first bytes."""

import pytest

from facemark.images import sniff


@pytest.mark.parametrize("head, kind, detail", [
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "heif", "HEIC"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "heif", "AVIF"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4", ""),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "matroska", ""),
    (b"RIFF\x00\x10\x00\x00AVI LIST", "avi", ""),
])
def test_containers_by_their_signature(tmp_path, head, kind, detail):
    path = tmp_path / "file.jpg"
    path.write_bytes(head + bytes(64))
    found = sniff(str(path))
    assert (found.kind, found.detail) == (kind, detail)
    assert found.head == (head + bytes(64))[:len(found.head)] and found.head


def test_text_under_an_image_name(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("<html><body>404 not found</body></html>")
    found = sniff(str(path))
    assert found.kind == "text" and "text" in found.detail


def test_unknown_bytes_are_shown_in_hex(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(bytes([0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5]) + bytes(40))
    found = sniff(str(path))
    assert found.kind == "unknown" and found.detail.startswith("de ad be ef")


def test_unreadable_file_says_why(tmp_path):
    found = sniff(str(tmp_path / "missing.jpg"))
    assert found.kind == "unreadable" and found.detail and found.head == b""
