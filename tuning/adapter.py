"""A control-following LoRA adapter for the chat model: teach it to honour the control signals the server renders.

    persona-agent train adapter [--base DIR] [--dialogues esconv/train.jsonl ...] [--max-examples 2400]
                                [--workdir .cache/train-adapter] [--out prompts/adapters/persona] [--resume]

Each training example is one supporter turn of an ESConv-format dialogue (consecutive supporter messages joined
into one reply). The prompt is rendered exactly as the server renders it (`prompts.render`), for control signals
read off that target reply:

- strategy: the ESConv label of the turn;
- verbosity: the reply's length, as a percentile over the training replies (so 0.1 = among the shortest);
- formality: each example is drawn low / middle / high; low and high targets are rewritten by a small,
  meaning-preserving transform (contractions, slang, capitals, end punctuation: `casualize` / `formalize`);
- empathy and warmth: percentiles of our text model's reading of the reply (care + acknowledgement; positive tone);
- assertiveness: directive wording vs hedges and questions.

The loss is on the reply tokens only (chat template of the base model's tokenizer, as vLLM applies it). Seeded;
checkpoints the adapter and optimizer every --checkpoint-steps into --workdir and resumes from there with
--resume; `--device cuda` runs the same recipe on a GPU against Mistral or Llama (`--base` an HF folder).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from persona import ControlSignals
from persona.controls import STRATEGIES as _STRATEGIES
from prompts import Message, render
from prompts.render import AgentProfile, ControlsAt, load_profiles

HISTORY_MESSAGES = 4  # messages of context before the seeker's last message (the server's window is larger)

# --- formality rewrites (both directions keep the meaning) -------------------------------------------------------

_EXPAND = {
    "i'm": "I am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "what's": "what is",
    "he's": "he is",
    "she's": "she is",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "cannot",
    "couldn't": "could not",
    "won't": "will not",
    "wouldn't": "would not",
    "shouldn't": "should not",
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "weren't": "were not",
    "haven't": "have not",
    "hasn't": "has not",
    "hadn't": "had not",
    "i've": "I have",
    "you've": "you have",
    "we've": "we have",
    "they've": "they have",
    "i'll": "I will",
    "you'll": "you will",
    "we'll": "we will",
    "it'll": "it will",
    "i'd": "I would",
    "you'd": "you would",
    "let's": "let us",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "have to",
    "kinda": "somewhat",
    "sorta": "somewhat",
    "yeah": "yes",
    "yep": "yes",
    "nope": "no",
    "ok": "all right",
    "okay": "all right",
    "hey": "hello",
    "hi": "hello",
    "thx": "thank you",
    "u": "you",
    "ur": "your",
    "idk": "I do not know",
}
_CONTRACT = {
    "i am": "I'm",
    "you are": "you're",
    "we are": "we're",
    "they are": "they're",
    "it is": "it's",
    "that is": "that's",
    "there is": "there's",
    "what is": "what's",
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "cannot": "can't",
    "can not": "can't",
    "could not": "couldn't",
    "will not": "won't",
    "would not": "wouldn't",
    "should not": "shouldn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "have not": "haven't",
    "has not": "hasn't",
    "i will": "I'll",
    "you will": "you'll",
    "i would": "I'd",
    "going to": "gonna",
    "want to": "wanna",
    "yes": "yeah",
    "hello": "hey",
    "they would": "they'd",
    "we would": "we'd",
    "you would": "you'd",
    "they will": "they'll",
    "we will": "we'll",
    "it will": "it'll",
    "he is": "he's",
    "she is": "she's",
    "kind of": "kinda",
    "sort of": "sorta",
    "got to": "gotta",
    "have to": "gotta",
}
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;]-?[)(DPp]")


def _swap(text: str, table: dict[str, str]) -> str:
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w'])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w'])", re.I)

    def sub(m: re.Match[str]) -> str:
        out = table[m.group(0).lower().replace("\u2019", "'")]
        return out[0].upper() + out[1:] if m.group(0)[0].isupper() and out[0].islower() else out

    return pattern.sub(sub, text.replace("\u2019", "'"))


def formalize(text: str) -> str:
    """No contractions, no slang or emoji, sentences capitalised and closed."""
    t = _EMOJI.sub("", _swap(text, _EXPAND))
    t = re.sub(r"([!?])\1+", r"\1", t).replace("!", ".")
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"(^|[.?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), t)
    t = re.sub(r"\bi\b", "I", t)
    if t and t[-1] not in ".?":
        t += "."
    return t


_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([A-Z])([a-z]*'?[a-z]*)\b")


_HAVE = re.compile(
    r"\b(I|you|we|they) have (?=(?:been|got|had|done|seen|tried|gone|felt|heard|never|already|\w+ed)\b)", re.I
)


def casualize(text: str) -> str:
    """Contractions and everyday words, sentences started in lower case, as a friend would text ("I" stays).
    "have" is contracted only as an auxiliary ("I've been", not "do you've any")."""
    t = _HAVE.sub(lambda m: m.group(1) + "'ve ", _swap(text, _CONTRACT))
    t = re.sub(r"\s+", " ", t).strip()

    def lower(m: re.Match[str]) -> str:
        word = m.group(2) + m.group(3)
        return m.group(0) if word == "I" or word.startswith("I'") else m.group(1) + m.group(2).lower() + m.group(3)

    return _SENTENCE_START.sub(lower, t)


def in_register(text: str, formality: float) -> str:
    """The reply rewritten to the register a formality control asks for (the prompt's bands: casual at or below 0.35,
    formal at or above 0.65, as written in between)."""
    return casualize(text) if formality <= 0.35 else formalize(text) if formality >= 0.65 else text


# --- examples ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    history: tuple[Message, ...]  # the dialogue before the seeker's last message
    user: str  # the seeker's last message (consecutive seeker messages joined)
    reply: str  # the supporter's reply (consecutive supporter messages joined)
    strategy: str


def read_turns(path: Path) -> Iterator[tuple[int, Turn]]:
    """(dialogue index, turn) for every supporter reply that follows a seeker message."""
    with open(path) as fh:
        lines = list(fh)
    for di, line in enumerate(lines):
        d = json.loads(line)
        merged: list[tuple[Literal["user", "assistant"], str, str]] = []  # (role, text, first supporter strategy)
        for m in d["dialog"]:
            role: Literal["user", "assistant"] = "user" if m["speaker"] == "usr" else "assistant"
            text = " ".join(m["text"].split())
            if not text:
                continue
            if merged and merged[-1][0] == role:
                merged[-1] = (role, merged[-1][1] + " " + text, merged[-1][2])
            else:
                merged.append((role, text, m.get("strategy", "")))
        for i, (role, text, strategy) in enumerate(merged):
            if role != "assistant" or i == 0 or merged[i - 1][0] != "user":
                continue
            hist = tuple(Message(r, t) for r, t, _ in merged[max(0, i - 1 - HISTORY_MESSAGES) : i - 1])
            if hist and hist[0].role == "assistant":
                hist = hist[1:]
            yield di, Turn(history=hist, user=merged[i - 1][1], reply=text, strategy=strategy or "Others")


_DIRECTIVE = re.compile(
    r"\b(you should|try|make sure|i recommend|i suggest|do not|don't|need to|must|start by)\b", re.I
)
_HEDGE = re.compile(r"\b(maybe|perhaps|might|could|possibly|i wonder|if you want|would you)\b", re.I)


def assertiveness(text: str) -> float:
    d, h = len(_DIRECTIVE.findall(text)), len(_HEDGE.findall(text)) + text.count("?")
    return float(min(1.0, max(0.0, 0.5 + 0.2 * d - 0.15 * h)))


def percentiles(x: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each value in (0, 1): ties share one value."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    out = np.empty(len(x))
    for v in np.unique(x):  # average ranks over ties
        m = x == v
        out[m] = ranks[m].mean()
    return (out + 0.5) / len(x)


def tone_scores(texts: Sequence[str], threads: int) -> tuple[np.ndarray, np.ndarray]:
    """(empathy, warmth) readings of each reply by our text model: care and acknowledgement; positive tone."""
    from perception.text_model import GOEMOTIONS, default_text_model_dir, load_text_model

    model = load_text_model(default_text_model_dir(), threads=threads)
    probs = model.predict(list(texts))
    g = {name: probs[:, GOEMOTIONS.index(name)] for name in GOEMOTIONS}
    empathy = g["caring"] + g["sadness"] + g["remorse"] + 0.5 * g["realization"] - g["disapproval"] - g["annoyance"]
    warmth = (
        g["caring"]
        + g["approval"]
        + g["gratitude"]
        + g["optimism"]
        + g["love"]
        + g["joy"]
        - g["anger"]
        - g["annoyance"]
        - g["disapproval"]
        - g["disgust"]
    )
    return empathy, warmth


@dataclass(frozen=True, slots=True)
class Example:
    messages: tuple[Message, ...]  # system, history..., user
    target: str
    controls: ControlSignals
    profile: str


def build_examples(
    turns: Sequence[Turn],
    profiles: Sequence[AgentProfile],
    rng: random.Random,
    threads: int,
    controls_at: ControlsAt = "system",
) -> list[Example]:
    words = np.array([len(t.reply.split()) for t in turns], float)
    verbosity = percentiles(words)
    emp, warm = tone_scores([t.reply for t in turns], threads)
    empathy, warmth = percentiles(emp), percentiles(warm)
    out = []
    for i, t in enumerate(turns):
        profile = profiles[rng.randrange(len(profiles))]
        band = rng.choice(("low", "mid", "high"))
        formality = rng.uniform(*{"low": (0.0, 0.3), "mid": (0.4, 0.6), "high": (0.7, 1.0)}[band])
        target = in_register(t.reply, formality)
        strategy = t.strategy if t.strategy in _STRATEGIES else "Others"
        controls = ControlSignals(
            empathy=round(float(empathy[i]), 2),
            warmth=round(float(warmth[i]), 2),
            formality=round(formality, 2),
            assertiveness=round(assertiveness(t.reply), 2),
            verbosity=round(float(verbosity[i]), 2),
            pace=round(rng.uniform(0.3, 0.7), 2),
            strategy=strategy,  # type: ignore[arg-type]
        )
        prompt = render(profile, controls, list(t.history), t.user, controls_at=controls_at)
        out.append(Example(messages=prompt.messages, target=target, controls=controls, profile=profile.id))
    return out


# --- contrastive pairs: the same context twice, one signal low and high, each with a target that shows it --------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_FEELING = re.compile(
    r"\b(sorry|sounds|understand|must (?:be|feel)|feel|feeling|hard|tough|difficult|frustrat\w*|"
    r"upset|sad|stress\w*|worr\w*|scar\w*|hurt\w*|lonely|overwhelm\w*|painful)\b",
    re.I,
)
_WARM = re.compile(
    r"\b(glad|great|good (?:for|job|idea|thing|to hear)|hope\w*|proud|happy|wonderful|awesome|amazing|"
    r"thank\w*|appreciat\w*|love\w*|care\w*|welcome|congrat\w*|brave|strong|best|sure you|you can do)\b",
    re.I,
)
EMPATHIC = 0.75  # guidance.j2: at or above this empathy the prompt asks to acknowledge the feeling first
# Acknowledgements that name the feeling and offer care (each reads as caring or grateful to our text model, the same
# reading the replies eval scores warmth with; the ones it read as flat were replaced).
ACKNOWLEDGEMENTS = (
    "That sounds really hard, and it makes sense that you feel this way.",
    "Thank you for telling me; I can tell this has been really tough.",
    "I'm so sorry you're dealing with this. I really care about how you're doing.",
    "Thank you for trusting me with this. I'm here for you.",
    "That sounds so hard, and I'm really glad you reached out.",
    "I hear you, and I'm glad you told me. You don't have to go through this alone.",
    "It's okay to feel this way, and I'm here to support you.",
    "I'm really glad you reached out. What you're feeling makes complete sense.",
)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def contrast(
    turn: Turn, base: ControlSignals, signal: str, rng: random.Random
) -> tuple[tuple[ControlSignals, str], tuple[ControlSignals, str]] | None:
    """((low controls, low target), (high controls, high target)) for one signal on one turn, or None when this
    reply cannot show the contrast (too short to shorten, no feeling words to drop, ...). Targets are in the register
    the example's formality asks for."""

    def styled(text: str) -> str:
        return in_register(text, base.formality)

    sents = sentences(turn.reply)
    lo_v, hi_v = round(rng.uniform(0.0, 0.2), 2), round(rng.uniform(0.8, 1.0), 2)
    if signal == "verbosity":
        if len(sents) < 3 or len(turn.reply.split()) < 30:
            return None
        return (_replace(base, verbosity=lo_v), styled(sents[0])), (_replace(base, verbosity=hi_v), styled(turn.reply))
    if signal == "formality":
        lo, hi = casualize(turn.reply), formalize(turn.reply)
        if lo == hi:
            return None
        return (_replace(base, formality=lo_v), lo), (_replace(base, formality=hi_v), hi)
    if signal == "empathy":
        # Only where the seeker voiced a feeling: an acknowledgement in front of "You're welcome" teaches nonsense.
        # The low end is matter-of-fact: no feeling talk, and no praise, thanks or reassurance either (a low end that
        # kept "That's a great idea!" taught the model that low empathy means breezy and upbeat).
        plain = [s for s in sents if not _FEELING.search(s) and not _WARM.search(s)]
        if not plain or not _FEELING.search(turn.user):
            return None
        warm = " ".join([ACKNOWLEDGEMENTS[rng.randrange(len(ACKNOWLEDGEMENTS))], *sents])
        # Only the empathy line differs: warmth keeps the example's value on both sides. (Moving warmth with it taught
        # the model to key on the warmth line, which stays put when a user or the policy moves empathy alone.)
        return ((_replace(base, empathy=lo_v), styled(" ".join(plain))), (_replace(base, empathy=hi_v), styled(warm)))
    raise ValueError(signal)


def nearest_other_strategy(dialogue: Sequence[int], turns: Sequence[Turn]) -> dict[int, int]:
    """For each turn index of one dialogue, the closest turn of it (at most two replies away, so on the same topic)
    whose strategy differs and is one of ours."""
    out = {}
    for a, i in enumerate(dialogue):
        others = [
            j
            for b, j in enumerate(dialogue)
            if abs(b - a) <= 2 and turns[j].strategy != turns[i].strategy and turns[j].strategy in _STRATEGIES
        ]
        if others:
            out[i] = min(others, key=lambda j: abs(j - i))
    return out


def build_pairs(
    turns: Sequence[Turn],
    examples: Sequence[Example],
    profiles: Sequence[AgentProfile],
    rng: random.Random,
    indices: Sequence[int],
    n_pairs: int,
    other: dict[int, int] | None = None,
    history: int = HISTORY_MESSAGES,
    controls_at: ControlsAt = "system",
    signals: Sequence[str] = ("verbosity", "formality", "empathy", "strategy"),
    strategy_empathic: float = 0.0,
) -> list[Example]:
    """Up to n_pairs contrastive pairs (2 * n_pairs examples) over the turns at `indices`, cycling through `signals`
    (a signal named twice gets twice the pairs; strategy pairs only where `other` names a reply of another strategy
    in the same dialogue; where the seeker voiced a feeling, a `strategy_empathic` share of them at high empathy, both
    targets after the same acknowledgement)."""
    by_id = {p.id: p for p in profiles}
    out: list[Example] = []
    signals = tuple(s for s in signals if other or s != "strategy")
    k = 0
    for i in indices:
        if len(out) >= 2 * n_pairs:
            break
        t, ex = turns[i], examples[i]
        signal = signals[k % len(signals)]
        if signal == "strategy":
            # This turn and a nearby reply of another strategy, under controls that differ in the strategy alone (the
            # other reply in this example's register): with each reply under its own controls, length, warmth and
            # register differed too, and the model could credit the difference to those lines instead.
            j = other.get(i) if other else None
            controls, lead = ex.controls, ""
            if j is not None and _FEELING.search(t.user) and rng.random() < strategy_empathic:
                # Served replies to a seeker who voiced a feeling run at high empathy: an acknowledgement first, then
                # the strategy. Pairs without that opener taught the model to drop either the acknowledgement (high
                # empathy without one) or the strategy (after the opener it fell back to one stock follow-up).
                controls = _replace(controls, empathy=round(rng.uniform(EMPATHIC, 1.0), 2))
                lead = ACKNOWLEDGEMENTS[rng.randrange(len(ACKNOWLEDGEMENTS))] + " "
            pair = (
                (
                    (controls, in_register(lead + t.reply, controls.formality)),
                    (
                        _replace(controls, strategy=examples[j].controls.strategy),
                        in_register(lead + turns[j].reply, controls.formality),
                    ),
                )
                if j is not None
                else None
            )
        else:
            pair = contrast(t, ex.controls, signal, rng)
        if pair is None:
            continue
        k += 1
        profile = by_id[ex.profile]
        hist = list(t.history)[-history:] if history else []
        if hist and hist[0].role == "assistant":
            hist = hist[1:]
        for controls, target in pair:
            prompt = render(profile, controls, hist, t.user, controls_at=controls_at)
            out.append(Example(messages=prompt.messages, target=target, controls=controls, profile=profile.id))
    return out


# --- training ----------------------------------------------------------------------------------------------------

Enc = tuple[list[int], list[int]]  # token ids and labels (-100 outside the reply)


def _tokenize(tok, ex: Example, max_len: int) -> tuple[list[int], list[int]] | None:
    chat = [{"role": m.role, "content": m.content} for m in ex.messages]
    prompt_ids = list(tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False))
    full = list(
        tok.apply_chat_template(chat + [{"role": "assistant", "content": ex.target}], tokenize=True, return_dict=False)
    )
    # Train through the end-of-turn token; the template may add a newline after it.
    end = tok.convert_tokens_to_ids("<|im_end|>")
    if end in full[len(prompt_ids) :]:
        full = full[: len(prompt_ids) + full[len(prompt_ids) :].index(end) + 1]
    if list(full[: len(prompt_ids)]) != list(prompt_ids) or len(full) > max_len:
        return None
    labels = [-100] * len(prompt_ids) + full[len(prompt_ids) :]
    return full, labels


def pair_units(tok, pairs: Sequence[Example], max_len: int) -> list[tuple[Enc, Enc, Enc, Enc]]:
    """Each pair (a, b) as (a, b, a's target under b's messages, b's target under a's messages)."""
    out = []
    for a, b in zip(pairs[0::2], pairs[1::2]):
        aa, bb, ab, ba = (
            _tokenize(tok, ex, max_len)
            for ex in (
                a,
                b,
                Example(b.messages, a.target, b.controls, b.profile),
                Example(a.messages, b.target, a.controls, a.profile),
            )
        )
        if aa is not None and bb is not None and ab is not None and ba is not None:
            out.append((aa, bb, ab, ba))
    return out


def step_chunks(units: Sequence[tuple[Enc, ...]], order: Sequence[int], accumulate: int) -> list[list[int]]:
    """Unit indices per optimizer step: units in `order` until a step holds `accumulate` own targets."""
    out: list[list[int]] = []
    cur: list[int] = []
    n = 0
    for u in order:
        cur.append(u)
        n += min(2, len(units[u]))
        if n >= accumulate:
            out.append(cur)
            cur, n = [], 0
    if cur:
        out.append(cur)
    return out


def default_base_dir() -> Path:
    from agent.llm import embedded_model_dir

    return embedded_model_dir()


def train(args: argparse.Namespace) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    work = Path(args.workdir)
    if args.export_only:  # the record takes the run's own arguments where its state kept them
        state_ = json.loads((work / "state.json").read_text())
        run = argparse.Namespace(**{**vars(args), **state_.get("args", {}), "out": args.out, "workdir": args.workdir})
        export(work, Path(args.out), state_, run, state_.get("examples"), state_.get("tokens"))
        return
    work.mkdir(parents=True, exist_ok=True)
    base = Path(args.base) if args.base else default_base_dir()
    tok = AutoTokenizer.from_pretrained(base)

    turns: list[tuple[str, int, Turn]] = []
    for path in args.dialogues:
        turns += [(path, di, t) for di, t in read_turns(Path(path))]
    # Carve a held-out tenth of the dialogues (by dialogue, so no context leaks) to pick the checkpoint on.
    dialogue_ids = sorted({(p, di) for p, di, _ in turns})
    rng.shuffle(dialogue_ids)
    held = set(dialogue_ids[: max(1, len(dialogue_ids) // 10)])
    profiles = [load_profiles()[k] for k in sorted(load_profiles())]
    all_turns = [t for _, _, t in turns]
    examples = build_examples(all_turns, profiles, rng, args.threads, args.controls_at)
    is_held = [(p, di) in held for p, di, _ in turns]
    train_idx = [i for i, h in enumerate(is_held) if not h]
    held_idx = [i for i, h in enumerate(is_held) if h]
    rng.shuffle(train_idx)
    rng.shuffle(held_idx)
    # A share of the budget goes to contrastive pairs (the same context twice, one signal low and high); the pairs come
    # from other turns than the plain examples (taken from the front of the shuffled list). A pair unit holds four
    # sequences: each side's own target, and each target under the other side's controls, so the contrastive term can
    # ask that a target be likelier under its own control lines than under the other's (the context and most of the
    # words are shared, so only what the control lines say can explain the difference).
    units: list[tuple[Enc, ...]] = []
    n_pairs = int(args.max_examples * args.pair_share) // 2
    by_dialogue: dict[tuple[str, int], list[int]] = {}
    for i, (p, di, _) in enumerate(turns):
        by_dialogue.setdefault((p, di), []).append(i)
    other = {i: j for d in by_dialogue.values() for i, j in nearest_other_strategy(d, all_turns).items()}
    pairs = build_pairs(
        all_turns,
        examples,
        profiles,
        rng,
        train_idx[len(train_idx) // 2 :],
        n_pairs,
        other,
        history=args.pair_history,
        controls_at=args.controls_at,
        signals=args.pair_signals,
        strategy_empathic=args.strategy_empathic,
    )
    units += pair_units(tok, pairs, args.max_len)
    n_seq = 2 * len(units)
    for i in train_idx[: len(train_idx) // 2]:
        if n_seq >= args.max_examples:
            break
        if (enc := _tokenize(tok, examples[i], args.max_len)) is not None:
            units.append((enc,))
            n_seq += 1
    held_data: list[Enc] = []
    for i in held_idx:
        if len(held_data) >= args.held_examples:
            break
        if (enc := _tokenize(tok, examples[i], args.max_len)) is not None:
            held_data.append(enc)
    if args.tool_examples:  # synthetic tool-use turns (tuning/tool_examples.py), the held ones from unseen families
        from tuning.tool_examples import build_tool_examples

        tool_rng = random.Random(args.seed + 2)
        for ex, _ in build_tool_examples(profiles, tool_rng, args.tool_examples, args.controls_at):
            if (enc := _tokenize(tok, ex, args.max_len)) is not None:
                units.append((enc,))
        for ex, _ in build_tool_examples(profiles, tool_rng, args.tool_examples // 8, args.controls_at, held=True):
            if (enc := _tokenize(tok, ex, args.max_len)) is not None:
                held_data.append(enc)
    held_pairs = pair_units(
        tok,
        build_pairs(
            all_turns,
            examples,
            profiles,
            random.Random(args.seed + 1),
            held_idx,
            args.held_pairs,
            other,
            history=args.pair_history,
            controls_at=args.controls_at,
            signals=args.pair_signals,
            strategy_empathic=args.strategy_empathic,
        ),
        args.max_len,
    )
    own = [enc for u in units for enc in u[:2]]
    n_tok = sum(len(x) for x, _ in own)
    print(
        f"{len(turns)} supporter turns from {len(dialogue_ids)} dialogues; training on {len(own)} examples "
        f"({n_tok} tokens, mean {n_tok / max(1, len(own)):.0f}; {sum(len(u) == 4 for u in units)} contrastive "
        f"pairs), {len(held_data)} held-out examples and {len(held_pairs)} held-out pairs from "
        f"{len(held)} held-out dialogues",
        flush=True,
    )
    with open(work / "examples.jsonl", "w") as f:  # what the adapter saw, for the model card
        for ex in [examples[i] for i in train_idx[:10]] + pairs[:12]:
            f.write(
                json.dumps(
                    {
                        "profile": ex.profile,
                        "controls": ex.controls.as_dict(),
                        "user": ex.messages[-1].content,
                        "target": ex.target,
                    }
                )
                + "\n"
            )

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to(args.device)
    state_file = work / "state.json"
    state: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "position": 0,
        "history": [],
        "best": None,
        "wall_s": 0.0,
        "examples": len(own),
        "tokens": n_tok,
        "args": {k: v for k, v in vars(args).items() if k not in ("resume", "export_only") and not callable(v)},
    }
    if args.resume and (work / "last").exists():
        model = PeftModel.from_pretrained(model, work / "last", is_trainable=True)
        state = json.loads(state_file.read_text())
        print(f"resumed at step {state['step']} (epoch {state['epoch']}, position {state['position']})", flush=True)
    elif args.init:  # a second stage from an earlier adapter (its rank and layers)
        model = PeftModel.from_pretrained(model, args.init, is_trainable=True)
        for p_ in model.parameters():
            if p_.requires_grad:
                p_.data = p_.data.float()
        print(f"starting from the adapter in {args.init}", flush=True)
    else:
        n_layers = model.config.num_hidden_layers
        # The top layers only: no backward pass through the frozen bottom ones (a third less compute on a CPU).
        layers = list(range(n_layers - args.layers, n_layers)) if args.layers else None
        lora = LoraConfig(
            r=args.rank,
            lora_alpha=2 * args.rank,
            lora_dropout=0.05,
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            layers_to_transform=layers,
        )
        model = get_peft_model(model, lora)
    model.print_trainable_parameters()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    if args.resume and (work / "optimizer.pt").exists():
        opt.load_state_dict(torch.load(work / "optimizer.pt"))
    steps = step_chunks(units, list(range(len(units))), args.accumulate)
    total = len(steps) * args.epochs

    def lr_at(step: int) -> float:
        warm = max(1, int(0.05 * total))
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    def reply_loss(ids: list[int], labels: list[int]):
        """Mean cross-entropy over the reply tokens; the vocabulary projection runs only where the reply is
        predicted (the reply is the sequence's tail), which saves a tenth of the compute."""
        k = sum(1 for x in labels if x != -100)
        logits = model(input_ids=torch.tensor([ids], device=args.device), logits_to_keep=k + 1).logits[0, :-1]
        return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(ids[-k:], device=args.device)), k

    def pair_losses(unit: tuple[Enc, ...]):
        """(summed reply cross-entropy of both own targets, their token count, contrastive loss, margin): the margin is
        log p(a | a's controls) - log p(a | b's) + log p(b | b's) - log p(b | a's), in nats."""
        (la, ka), (lb, kb) = reply_loss(*unit[0]), reply_loss(*unit[1])
        if model.training and args.contrast_weight == 0:  # plain SFT on both sides: the cross passes are not needed
            zero = torch.zeros((), device=args.device)
            return la * ka + lb * kb, ka + kb, zero, zero
        (l_ab, _), (l_ba, _) = (
            reply_loss(*unit[2]),
            reply_loss(*unit[3]),
        )  # a's target under b's controls, b's under a's
        margin = ka * (l_ab - la) + kb * (l_ba - lb)
        contrast = -torch.nn.functional.logsigmoid(args.contrast_beta * margin)
        return la * ka + lb * kb, ka + kb, contrast, margin

    def held_eval() -> dict[str, float]:
        model.eval()
        tot, n, cl, acc = 0.0, 0, [], []
        with torch.no_grad():
            for ids, labels in held_data:
                loss, k = reply_loss(ids, labels)
                tot, n = tot + loss.item() * k, n + k
            for u in held_pairs:
                _, _, c, m = pair_losses(u)
                cl.append(c.item())
                acc.append(float(m.item() > 0))
        model.train()
        out = {"held_loss": round(tot / max(1, n), 4)}
        if held_pairs:
            out |= {"held_contrast": round(float(np.mean(cl)), 4), "held_pair_acc": round(float(np.mean(acc)), 3)}
        # The objective the checkpoint is picked on: likelihood of replies plus the control lines' pull on them.
        out["held_objective"] = round(out["held_loss"] + args.contrast_weight * out.get("held_contrast", 0.0), 4)
        return out

    def checkpoint(tag: str) -> None:
        model.save_pretrained(work / tag)
        torch.save(opt.state_dict(), work / "optimizer.pt")
        state_file.write_text(json.dumps(state, indent=1))

    def keep_best(h: dict[str, float]) -> None:
        if state["best"] is None or h["held_objective"] < state["best"]["held_objective"]:
            state["best"] = {"step": state["step"], **h}
            model.save_pretrained(work / "best")

    if state["step"] == 0 and not state["history"]:
        state["history"].append({"step": 0, **held_eval()})
        print(f"held-out before training: {state['history'][-1]}", flush=True)
    model.train()
    t_start = time.time() - state["wall_s"]
    while state["epoch"] < args.epochs:
        unit_order = list(range(len(units)))
        random.Random(args.seed + state["epoch"]).shuffle(unit_order)
        chunks = step_chunks(units, unit_order, args.accumulate)
        bar = tqdm(
            total=len(chunks),
            initial=state["position"],
            desc=f"epoch {state['epoch'] + 1}/{args.epochs}",
            unit="step",
            mininterval=30,
        )
        running: list[float] = []
        margins: list[float] = []
        while state["position"] < len(chunks):
            chunk = [units[u] for u in chunks[state["position"]]]
            k_total = sum(sum(1 for x in enc[1] if x != -100) for u in chunk for enc in u[:2])
            n_pair = sum(len(u) == 4 for u in chunk)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"])
            for u in chunk:
                if len(u) == 1:
                    loss, k = reply_loss(*u[0])
                    (loss * k / k_total).backward()  # token-weighted mean over the step's own targets
                    running.append(loss.item())
                else:
                    summed, k, contrast, margin = pair_losses(u)
                    (summed / k_total + args.contrast_weight * contrast / n_pair).backward()
                    running.append(summed.item() / k)
                    margins.append(margin.item())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            state["position"] += 1
            bar.update(1)
            state["wall_s"] = time.time() - t_start
            if state["step"] % 5 == 0:
                bar.set_postfix(loss=f"{np.mean(running[-40:]):.3f}", margin=f"{np.mean(margins[-20:] or [0]):.2f}")
            if state["step"] % args.checkpoint_steps == 0:
                h = held_eval()
                state["history"].append(
                    {
                        "step": state["step"],
                        "train_loss": round(float(np.mean(running[-80:])), 4),
                        "train_margin": round(float(np.mean(margins[-40:] or [0])), 3),
                        **h,
                        "wall_s": round(state["wall_s"]),
                    }
                )
                print(
                    f"\nstep {state['step']}/{total}: {state['history'][-1]}, {state['wall_s'] / 60:.1f} min",
                    flush=True,
                )
                keep_best(h)
                checkpoint("last")
        bar.close()
        state["epoch"] += 1
        state["position"] = 0
        h = held_eval()
        state["history"].append(
            {"step": state["step"], "epoch_end": state["epoch"], **h, "wall_s": round(state["wall_s"])}
        )
        keep_best(h)
        checkpoint("last")
        print(f"epoch {state['epoch']} done: {h}, {state['wall_s'] / 60:.1f} min", flush=True)
    export(work, Path(args.out), state, args, len(own), n_tok)


def export(
    work: Path, out: Path, state: dict, args: argparse.Namespace, n_examples: int | None, n_tokens: int | None
) -> None:
    """Copy the best checkpoint (lowest held-out loss) to --out with its training record (the steps it ran, the best
    step, the history: a run cut short and exported with --export-only says so by its step count)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "best" / "adapter_config.json", out / "adapter_config.json")
    # float16 halves the committed file; vLLM casts the LoRA weights to the model's dtype when it loads them.
    weights = load_file(work / "best" / "adapter_model.safetensors")
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, out / "adapter_model.safetensors")
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "smollm2-135m-instruct"  # a name, not this machine's path
    (out / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    record = {
        "dialogues": [Path(p).name for p in args.dialogues],
        "examples": n_examples,
        "tokens": n_tokens,
        "epochs": args.epochs,
        "lr": args.lr,
        "rank": args.rank,
        "accumulate": args.accumulate,
        "max_len": args.max_len,
        "layers": args.layers,
        "pair_share": args.pair_share,
        "pair_history": args.pair_history,
        "pair_signals": list(args.pair_signals),
        "strategy_empathic": args.strategy_empathic,
        "controls_at": args.controls_at,
        "contrast_weight": args.contrast_weight,
        "contrast_beta": args.contrast_beta,
        "tool_examples": getattr(args, "tool_examples", 0),
        "init": Path(args.init).name if args.init else None,
        "seed": args.seed,
        "best": state["best"],
        "history": state["history"],
        "steps": state["step"],
        "wall_s": round(state["wall_s"]),
        "threads": args.threads,
        "device": args.device,
    }
    (out / "training.json").write_text(json.dumps(record, indent=1))
    print(f"adapter written to {out} (best step {state['best']['step']}: {state['best']})")


def main() -> None:
    from tuning.args import add_adapter_arguments

    p = argparse.ArgumentParser()
    add_adapter_arguments(p)
    train(p.parse_args())


if __name__ == "__main__":
    main()
