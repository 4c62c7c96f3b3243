"""The trained gated fusion network: a Gated Multimodal Unit (Arevalo et al. 2017) generalised to three modalities
with a presence mask.

Each present modality m is encoded to h_m = tanh(W_m [head_m ; P_m emb_m]) (64-d). A gate network reads every
modality's head (zeros for absent ones) and the mask and gives one logit per modality; a softmax over the present
modalities only turns them into weights g_m that sum to one. The mix Σ g_m h_m (the persona embedding, internal: the
served FusedPercept carries the distribution and the gates) goes through a linear layer to the fused 7-class
distribution. Training (training/fusion.py) also asks each h_m alone to predict the
label through the same output layer, so the h_m live in one space and a single modality still reads well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusion.features import EMBEDDING_DIMS, HEAD_DIMS, embedding_vector, head_vector
from fusion.types import FusedPercept, gated_confidence
from perception import LABELS, MODALITIES, Modality, ModalitySignal


def build_gmu(
    hidden: int = 64, emb_proj: int = 16, gate_hidden: int = 32, dropout: float = 0.3, emb_dropout: float = 0.5
) -> Any:  # a torch.nn.Module (torch is imported lazily)
    import torch
    from torch import nn

    class GMU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.ModuleDict(
                {
                    m: nn.Sequential(
                        nn.LayerNorm(EMBEDDING_DIMS[m]), nn.Dropout(emb_dropout), nn.Linear(EMBEDDING_DIMS[m], emb_proj)
                    )
                    for m in MODALITIES
                    if EMBEDDING_DIMS[m]
                }
            )
            self.enc = nn.ModuleDict(
                {m: nn.Linear(HEAD_DIMS[m] + (emb_proj if EMBEDDING_DIMS[m] else 0), hidden) for m in MODALITIES}
            )
            self.gate = nn.Sequential(
                nn.Linear(sum(HEAD_DIMS.values()) + len(MODALITIES), gate_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(gate_hidden, len(MODALITIES)),
            )
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(hidden, len(LABELS))

        def forward(
            self, heads: Mapping[str, torch.Tensor], embs: Mapping[str, torch.Tensor], mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            """heads[m]: [B, HEAD_DIMS[m]]; embs[m]: [B, EMBEDDING_DIMS[m]]; mask: [B, 3] (1 = present, ≥ 1 per row).
            Returns logits [B, 7], gates [B, 3], persona [B, hidden], per-modality logits [B, 3, 7]."""
            hs = []
            for i, m in enumerate(MODALITIES):
                x = heads[m] * mask[:, i : i + 1]
                if m in self.proj:
                    x = torch.cat([x, self.proj[m](embs[m]) * mask[:, i : i + 1]], dim=1)
                hs.append(torch.tanh(self.enc[m](x)))
            h = torch.stack(hs, dim=1)  # [B, 3, hidden]
            gate_in = torch.cat([heads[m] * mask[:, i : i + 1] for i, m in enumerate(MODALITIES)] + [mask], dim=1)
            a = self.gate(gate_in).masked_fill(mask == 0, float("-inf"))
            g = torch.softmax(a, dim=1)  # [B, 3], 0 for absent
            persona = (g.unsqueeze(-1) * h).sum(1)  # [B, hidden]
            return self.out(self.drop(persona)), g, persona, self.out(h)

    return GMU()


@dataclass(frozen=True)
class GMUWeights:
    """The trained GMU's inference weights as numpy arrays (from its torch state dict): serving one item is a few
    small matrix products, which numpy does in ~0.1 ms where a torch forward costs milliseconds of dispatch and
    contends for the cores the text model needs. `forward` equals the torch module's eval-mode forward
    (tests/fusion/test_gated.py checks it)."""

    w: Mapping[str, np.ndarray]

    @staticmethod
    def from_state_dict(state: Mapping[str, Any]) -> GMUWeights:
        return GMUWeights({k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()})

    def _linear(self, name: str, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]
        return y

    def _layer_norm(self, name: str, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y: np.ndarray = (x - mu) / np.sqrt(var + eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]
        return y

    @property
    def hidden(self) -> int:
        return int(self.w["out.weight"].shape[1])

    def forward(
        self, heads: Mapping[str, np.ndarray], embs: Mapping[str, np.ndarray], mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """heads[m]: [B, HEAD_DIMS[m]]; embs[m]: [B, EMBEDDING_DIMS[m]]; mask [B, 3]. (logits, gates, persona)."""
        hs, gate_in = [], []
        for i, m in enumerate(MODALITIES):
            x = heads[m] * mask[:, i : i + 1]
            gate_in.append(x)
            if f"proj.{m}.0.weight" in self.w:
                e = self._linear(f"proj.{m}.2", self._layer_norm(f"proj.{m}.0", embs[m]))
                x = np.concatenate([x, e * mask[:, i : i + 1]], axis=1)
            hs.append(np.tanh(self._linear(f"enc.{m}", x)))
        h = np.stack(hs, axis=1)  # [B, 3, hidden]
        a = self._linear("gate.3", np.maximum(self._linear("gate.0", np.concatenate(gate_in + [mask], axis=1)), 0.0))
        a = np.where(mask == 0, -np.inf, a)
        g = np.exp(a - a.max(1, keepdims=True))
        g = g / g.sum(1, keepdims=True)  # [B, 3], 0 for absent
        persona = (g[..., None] * h).sum(1)
        return self._linear("out", persona), g, persona


@dataclass(frozen=True)
class GatedFusion:
    weights: GMUWeights
    name: str

    def fuse(self, signals: Mapping[Modality, ModalitySignal]) -> FusedPercept:
        t0 = time.perf_counter()
        present = tuple(m for m in MODALITIES if m in signals)
        if not present:
            dist = np.zeros(len(LABELS), np.float32)
            dist[LABELS.index("neutral")] = 1.0
            return FusedPercept(dist, dict.fromkeys(MODALITIES, 0.0), (), self.name, (time.perf_counter() - t0) * 1000)
        heads: dict[str, np.ndarray] = {}
        embs: dict[str, np.ndarray] = {}
        for m in MODALITIES:
            s = signals.get(m)
            heads[m] = (head_vector(s) if s else np.zeros(HEAD_DIMS[m], np.float32))[None]
            embs[m] = (embedding_vector(s) if s else np.zeros(EMBEDDING_DIMS[m], np.float32))[None]
        mask = np.array([[1.0 if m in signals else 0.0 for m in MODALITIES]], np.float32)
        logits, g, _ = self.weights.forward(heads, embs, mask)
        z = np.exp(logits[0] - logits[0].max())
        dist = (z / z.sum()).astype(np.float32)
        gates = {m: float(g[0, i]) for i, m in enumerate(MODALITIES)}
        return FusedPercept(
            dist,
            gates,
            present,
            self.name,
            (time.perf_counter() - t0) * 1000,
            confidence=gated_confidence(gates, signals),
        )


def load_gmu_module(path: str | Path) -> tuple[Any, str]:
    """The trained torch module (eval mode) and its name: for training and evaluation. `path` is the .pt state dict;
    its hyper-parameters and provenance sit beside it in the .json of the same name."""
    import torch

    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    net = build_gmu(**meta["hyperparameters"])
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval(), f"gmu-{meta['version']}"


def load_gated_fusion(path: str | Path) -> GatedFusion:
    """The served fusion: the trained weights, run in numpy (GMUWeights); torch only reads the file."""
    net, name = load_gmu_module(path)
    return GatedFusion(GMUWeights.from_state_dict(net.state_dict()), name)


def default_fusion_path() -> Path:
    return Path(__file__).resolve().parent / "models" / "gated_fusion.pt"


AGREEMENT_QUALITY: Mapping[Modality, Mapping[str, float]] = {
    "text": {"words": 12, "letters": 0.95},
    "face": {"sharpness": 5.0, "contrast": 0.2, "brightness": 0.5},
}


def overridden_readings(
    fusion: GatedFusion, p: float = 0.8, confidence: float = 0.7
) -> list[tuple[str, tuple[str, ...], str]]:
    """The fusion's contract with its perceivers: readings that agree (text and face, or one of them alone, each at p
    on one label) decide the fused label whatever embeddings come with them — a random vector or zeros — so the
    embedding path can refine but never take over. Returns each (label, modalities, embedding kind) it gets wrong:
    [] for weights that keep the contract. The trainer keeps only epochs that do; the tests check the shipped ones."""
    wrong: list[tuple[str, tuple[str, ...], str]] = []
    cases: tuple[tuple[Modality, ...], ...] = (("text", "face"), ("text",), ("face",))
    for label in LABELS:
        dist = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), np.float32)
        dist[LABELS.index(label)] = p
        for mods in cases:
            for kind in ("random", "zeros"):
                signals: dict[Modality, ModalitySignal] = {}
                for m in mods:
                    rng = np.random.default_rng(len(m))
                    emb = rng.normal(size=EMBEDDING_DIMS[m]) if kind == "random" else np.zeros(EMBEDDING_DIMS[m])
                    signals[m] = ModalitySignal(
                        m,
                        dist,
                        emb.astype(np.float32),
                        confidence,
                        1.0,
                        "contract",
                        {"quality": dict(AGREEMENT_QUALITY[m])},
                    )
                fused = fusion.fuse(signals).distribution
                if LABELS[int(np.argmax(fused))] != label:
                    wrong.append((label, mods, kind))
    return wrong
