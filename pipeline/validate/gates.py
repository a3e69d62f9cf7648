"""Gates: the bounds in params.yaml (``targets.<name>.gates``) a target's metrics must meet."""

from __future__ import annotations

from pipeline.params import Gates
from pipeline.records import LongContextResult, Quality, Speed

# gate key → (metric section, metric key, comparison)
CHECKS: dict[str, tuple[str, str, str]] = {
    "exact_match_min": ("quality", "exact_match_tie_tolerant", ">="),
    "teacher_forced_agreement_min": ("quality", "teacher_forced_agreement", ">="),
    "kl_mean_max": ("quality", "kl_mean", "<="),
    "perplexity_increase_max": ("quality", "perplexity_increase", "<="),
    "similarity_min": ("quality", "similarity", ">="),
    "ms_per_token_max": ("speed", "tpot_ms_median", "<="),
}


# long-context gate → (metric of each measured length, comparison); the worst length counts
LONG_CHECKS: dict[str, tuple[str, str]] = {
    "long_context_kl_max": ("kl_mean", "<="),
    "long_context_agreement_min": ("agreement", ">="),
}


def check(
    target: str, gates: Gates, quality: Quality, speed: Speed, long: list[LongContextResult] | None = None
) -> list[str]:
    """One readable line per missed gate: target, metric, value, bound and the params key."""
    failures = []
    sections = {"quality": quality, "speed": speed}
    for key, (section, metric, op) in CHECKS.items():
        bound = getattr(gates, key)
        if bound is None:
            continue
        value = getattr(sections[section], metric)
        if value is None:
            failures.append(
                f"{target}: {metric} was not measured but targets.{target}.gates.{key} requires {op} {bound}"
            )
            continue
        ok = value >= bound if op == ">=" else value <= bound
        if not ok:
            failures.append(f"{target}: {metric} = {value:.4g}, bound {op} {bound} (targets.{target}.gates.{key})")
    for key, (metric, op) in LONG_CHECKS.items():
        bound = getattr(gates, key)
        if bound is None:
            continue
        measured = [r for r in long or [] if r.status == "measured" and getattr(r, metric) is not None]
        if not measured:
            failures.append(f"{target}: no long-context length was measured but targets.{target}.gates.{key} "
                            f"requires {op} {bound}")  # fmt: skip
            continue
        worst = (
            max(measured, key=lambda r: getattr(r, metric))
            if op == "<="
            else min(measured, key=lambda r: getattr(r, metric))
        )
        value = getattr(worst, metric)
        if not (value <= bound if op == "<=" else value >= bound):
            failures.append(
                f"{target}: long-context {metric} = {value:.4g} at {worst.length} tokens, bound {op} {bound} "
                f"(targets.{target}.gates.{key})"
            )
    failures += [
        f"{target}: the long-context check failed at {r.length} tokens ({r.regime}): {r.reason}"
        for r in long or []
        if r.status == "error"
    ]
    if gates.tokenizer_match:
        tm = quality.tokenizer_match_rate
        if tm is not None and tm < 1.0:
            failures.append(
                f"{target}: tokenizer_match_rate = {tm:.4g}, bound >= 1.0 (its own tokenizer + chat template "
                f"give different prompt ids; targets.{target}.gates.tokenizer_match)"
            )
    return failures
