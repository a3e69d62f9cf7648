"""The real-geometry variants hold the published configs of the entries they mirror (pipeline/data/published).

Each variant is built as the source stage builds it (untrained: geometry does not depend on training) and its
config.json and tokenizer are held against the published values; a drift is named, key by key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.params import Params
from pipeline.params.models import EmbeddedModel, HubModel
from pipeline.sources import embedded, published
from pipeline.sources.embedded import spec_from_params


def mirrors(raw: dict) -> dict[str, EmbeddedModel]:
    entries = Params.model_validate(raw).models
    return {name: e for name, e in entries.items() if isinstance(e, EmbeddedModel) and e.mirrors}


def build_untrained(entry: EmbeddedModel, out, **change):
    spec = replace(spec_from_params(entry), train_steps=0, **change)
    embedded.build(spec, out)
    return out


def test_every_real_entry_has_a_published_config_and_a_variant_that_mirrors_it(raw_params):
    entries = Params.model_validate(raw_params).models
    hub = sorted(name for name, e in entries.items() if isinstance(e, HubModel))
    assert hub == published.names()
    assert sorted(e.mirrors for e in mirrors(raw_params).values()) == hub
    for name in hub:
        data = published.load(name)
        assert (data.repo, data.revision) == (entries[name].repo, entries[name].revision), name


@pytest.mark.parametrize("name", ["mirror-phi-3-mini-4k", "mirror-phi-3-mini-128k", "mirror-phi-3_5-mini",
                                  "mirror-phi-4-mini"])  # fmt: skip
def test_the_variant_keeps_its_entrys_geometry_and_tokenizer_style(raw_params, tmp_path, name):
    entry = mirrors(raw_params)[name]
    out = build_untrained(entry, tmp_path / name)
    assert published.drift(out, published.load(entry.mirrors)) == []
    want = published.geometry(published.load(entry.mirrors).config)
    assert want["max_position_embeddings"] in (4096, 131072) and want["original_max_position_embeddings"] == 4096


def test_a_drifting_variant_is_named_key_by_key(raw_params, tmp_path):
    """Seen failing: the 8192/256 shape of the earlier LongRoPE variants, and Phi-3's tokenizer on Phi-4-mini."""
    entry = mirrors(raw_params)["mirror-phi-4-mini"]
    out = build_untrained(
        entry,
        tmp_path / "drift",
        max_position_embeddings=8192,
        original_max_position_embeddings=256,
        sliding_window=None,
        tokenizer_style="llama-sentencepiece-bpe",
    )
    drift = published.drift(out, published.load("phi-4-mini"))
    keys = {line.split(":")[0] for line in drift}
    assert keys == {
        "max_position_embeddings",
        "original_max_position_embeddings",
        "sliding_window",
        "tokenizer style",
        "tokenizer bos_token",
        "tokenizer chat_template",
    }, drift
    assert "max_position_embeddings: 8192, phi-4-mini has 131072" in drift


def test_the_source_stage_refuses_a_drifting_variant_in_one_line(raw_params, tmp_path, monkeypatch):
    from pipeline import cache
    from pipeline.errors import SourceError

    monkeypatch.setattr(cache, "embedded_models", lambda: tmp_path / "cache")
    raw = dict(raw_params)
    raw["models"] = dict(raw["models"])
    raw["models"]["mirror-phi-3-mini-4k"] = {**raw["models"]["mirror-phi-3-mini-4k"], "sliding_window": 4096,
                                             "train_steps": 0}  # fmt: skip
    entry = mirrors(raw)["mirror-phi-3-mini-4k"]
    with pytest.raises(SourceError) as err:
        embedded.fetch(entry, tmp_path / "out")
    text = str(err.value)
    assert "\n" not in text
    assert "sliding_window: 4096, phi-3-mini-4k has 2047" in text
