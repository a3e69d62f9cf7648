"""The OpenVINO runner gives back the weight file's pages after the runtime repacked them, with no change
in what it generates or computes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import mapped_pages
from pipeline.runners import ov_genai
from pipeline.targets.base import RuntimeOptions
from pipeline.targets.openvino import runtime_properties

pytestmark = pytest.mark.skipif(not mapped_pages.MAPS.exists(), reason="needs /proc/self/maps (Linux)")


def _runner(out):
    choice = ov_genai.choose_device("CPU/GPU", "CPU", "ov-fp16")
    props = runtime_properties(None, out, choice.device, RuntimeOptions())
    return ov_genai.OpenVINOGenAIRunner(out, choice, props)


def test_weight_pages_are_released_and_results_unchanged(build, monkeypatch):
    out = build("ov-fp16")
    weights = (out / "openvino_model.bin").stat().st_size
    ids = list(range(5, 40))

    runner = _runner(out)
    released = runner.generate(ids, 12).tokens
    after_generate = mapped_pages.resident_bytes(out)
    released_logits = runner.logits(ids)
    after_logits = mapped_pages.resident_bytes(out)
    runner.close()

    # the same run with the release switched off: the mapped file stays resident
    monkeypatch.setattr(mapped_pages, "release", lambda directory: 0)
    runner = _runner(out)
    kept = runner.generate(ids, 12).tokens
    kept_resident = mapped_pages.resident_bytes(out)
    kept_logits = runner.logits(ids)
    runner.close()

    assert released == kept
    np.testing.assert_array_equal(released_logits, kept_logits)
    assert kept_resident > 0.5 * weights, (kept_resident, weights)  # what the release is for
    # what a decode step still reads in place (an embedding row) stays small; the repacked weights do not come back
    assert after_generate < 0.3 * weights and after_logits < 0.3 * weights, (after_generate, after_logits, weights)


def test_only_shared_read_only_mappings_of_the_folder_are_touched(tmp_path):
    import mmap

    inside, outside = tmp_path / "in" / "w.bin", tmp_path / "w.bin"
    inside.parent.mkdir()
    for f in (inside, outside):
        f.write_bytes(b"\x01" * (1 << 20))
    with open(inside, "rb") as a, open(outside, "rb") as b, open(inside, "r+b") as c:
        ro = mmap.mmap(a.fileno(), 0, prot=mmap.PROT_READ)  # shared, read-only: released
        other = mmap.mmap(b.fileno(), 0, prot=mmap.PROT_READ)  # another folder: left alone
        private = mmap.mmap(c.fileno(), 0, flags=mmap.MAP_PRIVATE)  # private, writable: never touched
        private[0] = 7
        _ = ro[::4096], other[::4096]
        paths = [p for _, _, p in mapped_pages.shared_readonly_mappings(inside.parent)]
        assert paths == [str(inside)]
        assert mapped_pages.release(inside.parent) == 1 << 20
        assert ro[0] == 1 and private[0] == 7  # read back from the file / the private copy is intact
        for m in (ro, other, private):
            m.close()
