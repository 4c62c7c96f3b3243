"""The reply metrics' length check: chrF (beta=2) rewards a longer reply for its length; cutting the base's replies to
the adapter's lengths takes that away."""

from __future__ import annotations

from sacrebleu.metrics import CHRF

from tuning.eval_replies import chrf_by_length


def test_chrf_rewards_length_and_the_cut_removes_it():
    refs = [
        "I am sorry to hear that you lost your job, have you talked to your family about it?",
        "It sounds like you feel alone since your friends moved away.",
    ]
    adapter = ["I am sorry about the job.", "You feel alone."]
    padding = (
        " It is hard to hear that, and it sounds like you have lost a lot. Have you talked to your family or"
        " your friends about it since it happened? They may feel the same way about you."
    )
    base = [a + padding for a in adapter]  # the same start, many times as long
    default = CHRF()
    lead = default.corpus_score(base, [refs]).score - default.corpus_score(adapter, [refs]).score
    assert lead > 0  # length pays
    out = chrf_by_length(refs, adapter, base)
    assert abs(out["base_cut_to_adapter_length"] - default.corpus_score(adapter, [refs]).score) < 1e-9
    assert out["base_beta1"] - out["adapter_beta1"] < lead  # at beta=1 the padding also costs precision
