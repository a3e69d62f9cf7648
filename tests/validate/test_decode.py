"""The validate stage decodes a target's answers without transformers: the same text as AutoTokenizer's
``decode(ids, skip_special_tokens=True)``, the way the reference stage decoded its own answers."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from transformers import AutoTokenizer

from pipeline.validate.decode import decoder


def random_ids(tokenizer, count: int, seed: int = 0) -> list[list[int]]:
    """Id sequences over the whole vocabulary, added tokens included, a tenth of them special."""
    rng = random.Random(seed)
    specials, size = tokenizer.all_special_ids, len(tokenizer)  # len() builds the vocabulary: ask once
    return [
        [rng.choice(specials) if rng.random() < 0.1 else rng.randrange(size) for _ in range(rng.randint(0, 40))]
        for _ in range(count)
    ]


def assert_same_text(folder, count: int = 2000) -> None:
    hf, mine = AutoTokenizer.from_pretrained(folder), decoder(folder)
    for ids in random_ids(hf, count):
        assert mine(ids) == hf.decode(ids, skip_special_tokens=True), ids


@pytest.mark.parametrize("model", ["embedded", "embedded-longrope", "embedded-phi4-mini"])
def test_same_text_as_autotokenizer(model, embedded_dir, variant_source):
    folder = embedded_dir if model == "embedded" else variant_source(model)
    assert_same_text(folder)


def test_the_configs_clean_up_of_spaces_is_applied(embedded_dir, tmp_path):
    """A tokenizer whose config asks for transformers' clean-up of spaces before punctuation gets it."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(embedded_dir / name, tmp_path / name)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "clean_up_tokenization_spaces": True}))
    hf = AutoTokenizer.from_pretrained(tmp_path)
    ids = hf.encode("Hello , world . Is n't it ? Yes !", add_special_tokens=False)
    assert hf.decode(ids, skip_special_tokens=True) == decoder(tmp_path)(ids) == "Hello, world. Isn't it? Yes!"
    assert_same_text(tmp_path, 500)


def test_a_target_without_its_tokenizer_is_one_line(tmp_path):
    from pipeline.errors import PipelineError

    folder = tmp_path / "ov-int4"
    folder.mkdir()
    with pytest.raises(PipelineError, match=r"ov-int4 has no tokenizer.json") as caught:
        decoder(folder)
    assert "dvc repro -f -s build@ov-int4" in str(caught.value.fix)
