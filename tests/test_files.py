"""Atomic writes: a reader never sees half a file, also when the writer is interrupted."""

from __future__ import annotations

import pytest

from pal4vst.files import atomic_write


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError, RuntimeError])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing(tmp_path, stop):
    path = tmp_path / "out" / "result.png"
    atomic_write(path, lambda tmp: tmp.write_bytes(b"old complete content"))
    assert path.read_bytes() == b"old complete content"

    def half_then_stop(tmp):
        tmp.write_bytes(b"new but only ha")
        raise stop("interrupted")

    with pytest.raises(stop):
        atomic_write(path, half_then_stop)
    assert path.read_bytes() == b"old complete content"
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.png"]  # no temporary file left


def test_a_partial_file_is_kept_for_resuming(tmp_path):
    path, partial = tmp_path / "model.pth", tmp_path / "model.pth.partial"

    def broken(tmp):
        tmp.write_bytes(b"first half")
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        atomic_write(path, broken, partial=partial)
    assert partial.read_bytes() == b"first half" and not path.exists()
    atomic_write(path, lambda tmp: tmp.open("ab").write(b" + second half"), partial=partial)
    assert path.read_bytes() == b"first half + second half" and not partial.exists()
