"""The gated fusion network's contract, with values: presence masks, gates summing to one over present modalities,
absent modalities weighing nothing, and the runtime wrapper's percept."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fusion.features import EMBEDDING_DIMS, HEAD_DIMS, head_vector
from fusion.gated import (
    GatedFusion,
    GMUWeights,
    build_gmu,
    default_fusion_path,
    load_gated_fusion,
    load_gmu_module,
    overridden_readings,
)
from perception import LABELS, MODALITIES, ModalitySignal


def signal(m: str, label: str, p: float = 0.8, confidence: float = 0.7, quality: dict | None = None) -> ModalitySignal:
    dist = np.full(7, (1 - p) / 6, np.float32)
    dist[LABELS.index(label)] = p
    rng = np.random.default_rng(len(m))
    emb = rng.normal(size=EMBEDDING_DIMS[m] or 3).astype(np.float32)
    return ModalitySignal(m, dist, emb, confidence, 1.0, "test", {"quality": quality or {}})


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_gmu().eval()


@pytest.mark.parametrize("present", [c for r in (1, 2, 3) for c in itertools.combinations(MODALITIES, r)])
def test_gates_sum_to_one_over_present_and_zero_for_absent(net, present):
    fusion = GatedFusion(GMUWeights.from_state_dict(net.state_dict()), "gmu-test")
    p = fusion.fuse({m: signal(m, "joy") for m in present})
    assert p.present == tuple(m for m in MODALITIES if m in present)
    assert sum(p.gates[m] for m in present) == pytest.approx(1.0, abs=1e-5)
    assert all(p.gates[m] == 0.0 for m in MODALITIES if m not in present)
    assert p.distribution.shape == (7,) and p.distribution.sum() == pytest.approx(1.0, abs=1e-5)


def test_absent_modality_inputs_cannot_leak(net):
    """Whatever sits in an absent modality's slot, the output is the same."""
    heads = {m: torch.randn(4, HEAD_DIMS[m]) for m in MODALITIES}
    embs = {m: torch.randn(4, EMBEDDING_DIMS[m]) for m in MODALITIES}
    mask = torch.tensor([[1.0, 0.0, 1.0]] * 4)
    a = net(heads, embs, mask)
    heads2 = dict(heads, voice=torch.randn(4, HEAD_DIMS["voice"]) * 100)
    b = net(heads2, embs, mask)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


@pytest.mark.skipif(not default_fusion_path().exists(), reason="no trained fusion weights")
def test_the_served_numpy_forward_equals_the_trained_torch_module():
    net, _ = load_gmu_module(default_fusion_path())
    w = GMUWeights.from_state_dict(net.state_dict())
    rng = np.random.default_rng(3)
    heads = {m: rng.normal(size=(16, HEAD_DIMS[m])).astype(np.float32) for m in MODALITIES}
    embs = {m: rng.normal(size=(16, EMBEDDING_DIMS[m])).astype(np.float32) for m in MODALITIES}
    mask = np.array(
        [c for r in (1, 2, 3) for c in itertools.product((0.0, 1.0), repeat=3) if sum(c) == r][:7] * 3, np.float32
    )[:16]
    with torch.no_grad():
        t_logits, t_g, t_persona, _ = net(
            {m: torch.from_numpy(v) for m, v in heads.items()},
            {m: torch.from_numpy(v) for m, v in embs.items()},
            torch.from_numpy(mask),
        )
    logits, g, persona = w.forward(heads, embs, mask)
    np.testing.assert_allclose(logits, t_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(g, t_g.numpy(), atol=1e-5)
    np.testing.assert_allclose(persona, t_persona.numpy(), atol=1e-5)


def test_no_modality_gives_neutral(net):
    p = GatedFusion(GMUWeights.from_state_dict(net.state_dict()), "gmu-test").fuse({})
    assert p.present == () and LABELS[int(np.argmax(p.distribution))] == "neutral"


def test_head_vector_layout():
    s = signal("face", "anger", p=0.9, confidence=0.5, quality={"sharpness": 4.0, "contrast": 0.125, "brightness": 0.5})
    v = head_vector(s)
    assert v.shape == (HEAD_DIMS["face"],)
    assert int(np.argmax(v[:7])) == LABELS.index("anger") and v[7] == pytest.approx(0.5)
    assert v[9:].tolist() == pytest.approx([0.5, 0.5, 0.5])


@pytest.mark.skipif(not default_fusion_path().exists(), reason="no trained fusion weights")
def test_shipped_fusion_agrees_when_modalities_agree_and_weighs_a_garbled_face_less():
    fusion = load_gated_fusion(default_fusion_path())
    agree = fusion.fuse(
        {
            "text": signal("text", "sadness", quality={"words": 12, "letters": 0.95}),
            "face": signal("face", "sadness", quality={"sharpness": 5.0, "contrast": 0.2, "brightness": 0.5}),
        }
    )
    assert LABELS[int(np.argmax(agree.distribution))] == "sadness"
    clean = fusion.fuse(
        {
            "text": signal("text", "joy", quality={"words": 12, "letters": 0.95}),
            "face": signal("face", "joy", quality={"sharpness": 5.0, "contrast": 0.2, "brightness": 0.5}),
        }
    )
    dark = fusion.fuse(
        {
            "text": signal("text", "joy", quality={"words": 12, "letters": 0.95}),
            "face": signal(
                "face", "joy", p=0.3, confidence=0.1, quality={"sharpness": 0.5, "contrast": 0.01, "brightness": 0.03}
            ),
        }
    )
    assert dark.gates["face"] < clean.gates["face"]


@pytest.mark.skipif(not default_fusion_path().exists(), reason="no trained fusion weights")
def test_shipped_fusion_follows_agreeing_signals_whatever_their_embeddings():
    """The text and face embeddings help, but two agreeing readings (or one alone) decide the label even when the
    embeddings are not what the perceivers would give (random, or zeros): the embedding path must not take over."""
    assert overridden_readings(load_gated_fusion(default_fusion_path())) == []


@pytest.mark.skipif(not default_fusion_path().exists(), reason="no trained fusion weights")
def test_the_contract_check_catches_an_embedding_path_that_takes_over():
    """The shipped weights with their text-embedding projection scaled up 30x let a random embedding decide: the
    check must say so, and only for cases with a text embedding (zeros too: the projection's LayerNorm turns them
    into its bias, which the scaled weights blow up as well)."""
    net, _ = load_gmu_module(default_fusion_path())
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["proj.text.2.weight"] *= 30
    wrong = overridden_readings(GatedFusion(GMUWeights.from_state_dict(state), "scaled"))
    assert wrong
    assert all("text" in mods for _, mods, _ in wrong), wrong
