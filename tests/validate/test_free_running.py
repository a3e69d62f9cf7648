"""Speed accounting of free-running generation: which runs count for time to first token and per token."""

from __future__ import annotations

from pipeline.params.validation import Validation
from pipeline.records import ReferenceOutput
from pipeline.runners.base import Generation
from pipeline.validate.checks import free_running


class PrefixCachingRunner:
    """Generates a fixed answer; a prompt it has seen before comes back with the short first-token time of a
    prefix-cache hit (what OpenVINO GenAI's LLMPipeline does on the CPU), a new one with a full prefill."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, ...]] = set()

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        hit = tuple(ids) in self.seen
        self.seen.add(tuple(ids))
        return Generation(tokens=[5, 6, 7], ttft_ms=1000.0 if hit else 2000.0, step_ms=[100.0, 100.0])


def row(ids: list[int]) -> ReferenceOutput:
    return ReferenceOutput(prompt="p", messages=[], input_ids=ids, output_ids=[5, 6, 7], stopped=False, text="",
                           top_ids=[[5], [6], [7]], top_logprobs=[[0.0], [0.0], [0.0]])  # fmt: skip


def test_time_to_first_token_counts_only_fresh_prompts():
    rows = [row([1, 2]), row([1, 3]), row([1, 4])]
    for timed_runs, warmup_runs in ((1, 1), (3, 1), (2, 0)):
        v = Validation(prompts=["p"], max_new_tokens=3, timed_runs=timed_runs, warmup_runs=warmup_runs)
        res = free_running("t", PrefixCachingRunner(), rows, eos=set(), v=v)
        fresh = len(rows) - (1 if warmup_runs else 0)  # the warmed-up prompt is a cache hit when timed
        assert res.ttfts == [2000.0] * fresh, (timed_runs, warmup_runs)
        assert len(res.steps) == 2 * timed_runs * len(rows)  # decoding is timed in every run
        assert res.deterministic and res.outputs == [[5, 6, 7]] * len(rows)
