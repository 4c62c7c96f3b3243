"""Crisis / self-harm risk in user text: explicit-phrase rules plus a learned score, tuned for high recall.

Rules catch explicit statements ("I want to kill myself", "end my life") and leave common idioms alone ("this exam
is killing me", "I could die of embarrassment"). The learned part averages two logistic regressions trained on
`shared/data/crisis`: one over the text model's own sentence embedding and 28 emotion probabilities (no extra model
to run), one over the words and character n-grams of the message (TF-IDF), which catches the wording of risk
("pills", "rope", "no way out") that an emotion model reads as plain sadness.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from perception.sentence_encoder import SentenceEncoder, load_sentence_encoder
from perception.text_model import GOEMOTIONS, TextEmotionModel, load_text_model

if TYPE_CHECKING:
    from perception.warning_signs import SignReading

_EXPLICIT = [
    r"\b(kill|hang|shoot|drown|poison|hurt|harm|cut|off)\s+(my\s*self|myself|myslef|myeslf)\b",
    r"\b(hurting|harming|cutting|hanging|poisoning)\s+myself\b",
    r"\bk\s*m\s*s\b",
    r"\b(end|take|ending|taking)\s+(my|my own)\s+(life|lives)\b",
    r"\bsuicid(e|al)\b",
    r"\b(want|wanna|going|plan|planning|ready|decided)\s+(to\s+)?die\b",
    r"\bdon'?t\s+want\s+to\s+(live|be alive|exist|wake up)\b",
    r"\b(no|nothing)\s+(reason|point)\s+((to|in|of)\s+)?(live|living|go on|going on|being alive)\b",
    r"\b(don'?t|do not|can'?t|cannot)\s+see\s+(the|any)\s+(reason|point)\s+(to|in|of)\s+(live|living|life|go on|"
    r"going on|being alive|carrying on)\b",
    r"\bwhat'?s\s+the\s+(point|use)\s+(of|in)\s+(living|being alive|going on|carrying on)\b",
    r"\bbetter\s+off\s+dead\b",
    r"\b(wish|wishing)\s+i\s+(was|were)\s+(dead|never born)\b",
    r"\bself[-\s]?harm(ing)?\b",
    r"\b(overdose|od)\s+on\b",
    r"\bgoodbye\s+(cruel\s+)?world\b",
    r"\bwrote\s+(a|my)\s+(suicide\s+)?note\b",
    r"\bcan'?t\s+(go on|do this anymore|take (it|this) anymore)\b",
    r"\bwant\s+(it|everything)(\s+all)?\s+to\s+(end|stop)\b",
    r"\bend\s+it\s+all\b",
]
_IDIOMS = [
    r"\b(is|are|was|it'?s|this|that)\s+killing\s+me\b",
    r"\bdie\s+(of|from)\s+(embarrassment|laughter|laughing|boredom|shame|cuteness)\b",
    r"\b(could|would)\s+(kill|die)\s+for\b",
    r"\bdying\s+to\s+(see|know|try|meet|go|hear|get)\b",
    r"\bkill(ed|ing)?\s+it\b",
    r"\b(lol|lmao|haha)\b",
]
# Explicit phrases in the other languages the layer screens (perception/language.py SCREENED). Every message is
# checked against all of them, whatever language it was identified as: rules cost microseconds, and mixed-language
# messages are common. Idioms of these languages ("me muero de risa", "mort de rire") match none of them.
_EXPLICIT_OTHER = {
    "es": [
        r"\bno (le )?veo (el |ning[uú]n )?sentido (a|de|en) (vivir|la vida|seguir viviendo)\b",
        r"\bno tiene sentido (vivir|seguir viviendo)\b",
        r"\bpara qu[eé] (seguir )?(vivir|viviendo)\s*(\?|\.|,|!|$)",
        r"\b(quiero|quisiera|voy a|me voy a|pienso en|pensando en)\s+(morir(me)?|matarme|suicidarme|"
        r"quitarme la vida)\b",
        r"\bme quiero morir\b",
        r"\bme voy a (matar|suicidar)\b",
        r"\bquitarme la vida\b",
        r"\bme (voy a|quiero|pienso|iba a) quitar la vida\b",
        r"\bacabar con mi vida\b",
        r"\bno quiero (vivir|seguir viviendo|despertar)\b",
        r"\bsuicid(arme|io)\b",
        r"\bestar[ií]a mejor muert[oa]\b",
        r"\bhacerme daño\b",
        r"\bautolesi(ón|on|onarme)\b",
    ],
    "fr": [
        r"\bje ne vois (plus|pas)( aucune?| d'| de)? ?(l'int[ée]r[eê]t|le sens|raison|int[ée]r[eê]t) (de|à) "
        r"vivre\b",
        r"\bà quoi bon vivre\b",
        r"\bplus (aucune )?raison de vivre\b",
        r"\b(je veux|je voudrais|j'ai envie de|je vais|envie d[e'])\s*(mourir|me tuer|me suicider|en finir)\b",
        r"\bme suicider\b",
        r"\bsuicidaire\b",
        r"\bmettre fin à (mes jours|ma vie)\b",
        r"\ben finir avec la vie\b",
        r"\bje (ne )?veux plus vivre\b",
        r"\bme faire du mal\b",
        r"\bme scarifier\b",
        r"\bmieux mort\b",
    ],
    "de": [
        r"\bkeinen sinn (mehr )?(im leben|zu leben|weiterzuleben|darin,? zu leben)\b",
        r"\bwozu (noch )?(leben|weiterleben)\b",
        r"\b(ich will|ich möchte|ich werde)\s+(sterben|mich umbringen|mich töten)\b",
        r"\bmich (umbringen|umzubringen|töten|zu töten)\b",
        r"\bselbstmord\b",
        r"\bsuizid(al)?\b",
        r"\bnicht mehr leben\b",
        r"\bmeinem leben ein ende\b",
        r"\bmir das leben (zu )?nehmen\b",
        r"\bmich selbst (zu )?verletzen\b",
        r"\bselbstverletzung\b",
        r"\bbesser tot\b",
    ],
    "pt": [
        r"\bnão vejo (mais )?sentido (em|de|na) (viver|vida|continuar vivendo)\b",
        r"\bnão (há|tem) (mais )?(razão|motivo|sentido) para viver\b",
        r"\bpa?ra que viver\s*(\?|\.|,|!|$)",
        r"\b(quero|vou|penso em|pensando em)\s+(morrer|me matar|me suicidar|matar-me|suicidar-me)\b",
        r"\bme matar\b",
        r"\bsuic[ií]dio\b",
        r"\bme suicidar\b",
        r"\btirar (a )?minha (própria )?vida\b",
        r"\bacabar com (a )?minha vida\b",
        r"\bnão quero (mais )?viver\b",
        r"\bme machucar\b",
        r"\bautomutila",
        r"\bmelhor mort[oa]\b",
        r"\bme cortar\b",
    ],
}
# Mentions that are not a statement of one's own risk: negations and the topic itself. Blanked out before the
# explicit rules only (the learned score still reads the whole message, and decides whether caution applies).
_NOT_OWN_RISK = [
    r"\b(not|never|no longer|isn'?t|wasn'?t|am not|i'?m not)\s+(really\s+|at all\s+)?(feeling\s+)?suicidal\b",
    r"\b(would|will)\s+never\s+(kill|hurt|harm)\s+myself\b",
    r"\b(won'?t|wouldn'?t|not going to|not gonna)\s+(ever\s+)?(kill|hurt|harm)\s+myself\b",
    r"\bsuicide\s+(prevention|hotline|helpline|awareness|squad|rates?|statistics|research)\b",
]
# Warning signs that are not explicit statements — indirect ideation, farewells, giving things away, method
# questions, third-person worry (the common lists of suicide warning signs). They never make a crisis by themselves;
# they put the reply under the careful prompt at least.
_WARNING = [
    r"\bkilling\s+myself\b",  # explicit often, but also "I'm killing myself at the gym"
    r"\bwon'?t\s+be\s+(around|here)\s+(much\s+|for\s+)?(longer|long)\b",
    r"\b(giving|given|give)\s+(away\s+)?(all\s+)?(my|of my)\s+(things|stuff|belongings|possessions)(\s+away)?\b",
    r"\b(nobody|no one|no-one)\s+would\s+(even\s+)?(notice|care|miss me)\s+if\s+i\s+(disappeared|was gone|were gone|died)\b",
    r"\blast\s+time\s+you'?ll\s+(ever\s+)?hear\s+from\s+me\b",
    r"\bthis\s+is\s+my\s+(goodbye|farewell)\b",
    r"\bnone\s+of\s+this\s+will\s+(be\s+my\s+problem|matter)\b",
    r"\b(burden\s+(to|on)|better\s+off\s+without\s+me)\b",
    r"\b(better\s+off\s+if\s+i\s+(were|was)\s+(dead|gone))\b",
    r"\b(painless|quickest|easiest)\s+way\s+to\s+die\b",
    r"\b(bridge|building|roof|cliff)\b[^.?!]{0,40}\bhigh\s+enough\b",
    r"\b(pills|tablets)\b[^.?!]{0,40}\b(not\s+wake\s+up|to\s+die|would\s+it\s+take)\b",
    r"\b(kill|hurt|harm)\s+(himself|herself|themselves)\b",
    r"\b(wants|wanted|going)\s+to\s+(die|end\s+(his|her|their)\s+life)\b",
    r"\bthinking\s+about\s+suicide\b",
    # hopelessness in the first person, a risk factor on every warning-sign list ("this team is hopeless" is not)
    r"\bi\s*(feel|felt|am|'m|m|have\s+been|'ve\s+been)\s+(so\s+|completely\s+|totally\s+|just\s+|really\s+)?hopeless\b(?!\s+(at|with|when)\b)",
    r"\b(don'?t|do not|can'?t|cannot)\s+see\s+(the|any)\s+point\s+(in|of|to)\s+(anything|everything|it all|"
    r"trying|any of (this|it))\b",
    r"\b(there'?s|there\s+is|is)\s+no\s+point\s+(in|to)\s+(anything|everything|trying|it all)\b",
    r"\bwhat'?s\s+the\s+point\s+((of|in)\s+(even\s+)?(anything|everything|trying|it all|any of (this|it))\b|any\s*more\b)",
    r"\bnothing\s+matters\s+any\s*more\b",
    r"\b(given|give|gave|giving)\s+up\s+on\s+(life|everything|myself)\b",
]
# Someone else's risk, told by a person worried about them ("my friend has been thinking about ending her life"):
# a warning sign read by meaning in such a message makes a caution (a careful reply that points the helper to
# support), never the fixed crisis reply meant for the user's own risk.
_OTHERS_RISK = [
    r"\b(end|ending|ended|take|taking|took)\s+(his|her|their)\s+(own\s+)?li(fe|ves)\b",
    r"\b(kill|killing|hurt|hurting|harm|harming|cut|cutting)\s+(himself|herself|themselves|themself)\b",
    r"\b(he|she|they|friend|brother|sister|son|daughter|mum|mom|dad|father|mother|partner|wife|husband)\s+"
    r"(\w+\s+){0,3}(wants?|wanted|is\s+going|was\s+going|keeps?\s+saying\s+(he|she|they)\s+wants?)\s+to\s+die\b",
]
_OTHERS_RISK_RE = re.compile("|".join(_OTHERS_RISK), re.I)
_EXPLICIT_RE = re.compile("|".join(_EXPLICIT + [p for ps in _EXPLICIT_OTHER.values() for p in ps]), re.I)
_IDIOM_RE = re.compile("|".join(_IDIOMS), re.I)
_NOT_OWN_RISK_RE = re.compile("|".join(_NOT_OWN_RISK), re.I)
_WARNING_RE = re.compile("|".join(_WARNING), re.I)


RiskLevel = Literal["none", "caution", "crisis"]


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """crisis: a fixed reply with crisis resources, no generation. caution: generation under a careful prompt that
    points to support. none: as usual."""

    level: RiskLevel
    score: float  # in [0, 1]
    rule: str | None  # the phrase rule that matched, if any: an explicit phrase (crisis) or a warning sign (caution)
    latency_ms: float
    category: str | None = None  # the warning-sign category read by meaning (perception/warning_signs.py), if any
    read_with_turn: int | None = None  # set by the turn when the level came from reading it joined to that turn

    @property
    def risk(self) -> bool:
        return self.level != "none"


def strip_idioms(text: str) -> str:
    """`text` with known harmless idioms ("this exam is killing me", "dying to see") blanked out."""
    return _IDIOM_RE.sub(" ", text.replace("’", "'"))


def has_idiom(text: str) -> bool:
    return _IDIOM_RE.search(text.replace("’", "'")) is not None


def explicit_phrase(text: str) -> str | None:
    """The first explicit risk phrase in `text` (English, Spanish, French, German, Portuguese) that is not part of a
    known idiom, a negation ("I'm not suicidal") or the topic itself ("suicide prevention")."""
    m = _EXPLICIT_RE.search(_NOT_OWN_RISK_RE.sub(" ", strip_idioms(text)))
    return m.group(0) if m else None


_LAUGH_RE = re.compile(r"\b(lol|lmao|rofl|haha+|hehe+)\b|😂|🤣", re.I)


def laughing(text: str) -> bool:
    """A laughter marker: a learned caution score alone does not put such a message under the careful prompt (the
    explicit rules, the warning signs and the crisis tier still apply)."""
    return _LAUGH_RE.search(text) is not None


def warning_sign(text: str) -> str | None:
    """The first indirect warning sign in `text` (caution at least, never a crisis by itself)."""
    m = _WARNING_RE.search(strip_idioms(text))
    return m.group(0) if m else None


_WORD_RE = re.compile(r"[a-z']+")


def lexical_terms(text: str) -> list[str]:
    """The terms the lexical model counts: words, word pairs and character 3-5-grams of the lower-cased words, with
    known idioms blanked out first. Training (`training/safety.py`, as scikit-learn's analyzer) and serving use this
    one function, so they count the same terms."""
    words = _WORD_RE.findall(strip_idioms(text).lower())
    terms = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    joined = f" {' '.join(words)} "
    terms += [joined[i : i + n] for n in (3, 4, 5) for i in range(len(joined) - n + 1)]
    return terms


@dataclass(frozen=True)
class LexicalRisk:
    """Logistic regression over sublinear, L2-normalised TF-IDF of `lexical_terms` (scikit-learn's TfidfVectorizer
    with sublinear_tf=True, recomputed here from the stored vocabulary and idf weights)."""

    vocab: dict[str, int]
    idf: np.ndarray  # [V]
    coef: np.ndarray  # [V]
    bias: float

    def score(self, text: str) -> float:
        return float(self.score_batch([text])[0])

    def score_batch(self, texts: Sequence[str]) -> np.ndarray:
        """[N] probabilities, the whole batch as one sparse computation (a message with no known term scores the
        bias)."""
        row, col, w = tfidf_rows(texts, self.vocab, self.idf)
        z = np.bincount(row, w * self.coef[col], minlength=len(texts)) + self.bias
        p: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return p


def tfidf_rows(
    texts: Sequence[str], vocab: dict[str, int], idf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sublinear, L2-normalised TF-IDF of `lexical_terms` (scikit-learn's TfidfVectorizer with sublinear_tf=True,
    recomputed from a stored vocabulary and idf weights) as a sparse [N, V] matrix's (rows, columns, values): the
    terms are counted per message, then weighted and normalised for the whole batch at once."""
    rows: list[int] = []
    cols: list[int] = []
    counts: list[int] = []
    for r, text in enumerate(texts):
        for term, c in Counter(t for t in lexical_terms(text) if t in vocab).items():
            rows.append(r)
            cols.append(vocab[term])
            counts.append(c)
    row, col = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    w = (1.0 + np.log(np.asarray(counts, np.float64))) * idf[col]
    norm = np.sqrt(np.bincount(row, w * w, minlength=len(texts)))
    return row, col, w / norm[row] if len(row) else w


@dataclass(frozen=True)
class RiskClassifier:
    mean: np.ndarray  # [F]
    scale: np.ndarray  # [F]
    coef: np.ndarray  # [F]
    bias: float
    crisis_threshold: float  # score for the fixed crisis reply (chosen for a low false-positive rate)
    caution_threshold: float  # score for the careful prompt (chosen for high recall)
    lexical: LexicalRisk | None = None
    embedding_weight: float = 1.0  # the score is w * embedding model + (1 - w) * lexical model
    name: str = "crisis-logreg-minilm+mpnet+tfidf"

    def score(self, features: np.ndarray, texts: list[str]) -> np.ndarray:
        """features [N, F] and the N texts (for the lexical part) → [N] probability of risk."""
        z = (features - self.mean) / self.scale
        s: np.ndarray = 1.0 / (1.0 + np.exp(-(z @ self.coef + self.bias)))
        if self.lexical is None:
            return s
        mixed: np.ndarray = self.embedding_weight * s + (1.0 - self.embedding_weight) * self.lexical.score_batch(texts)
        return mixed

    def assess(self, text: str, features: np.ndarray) -> RiskAssessment:
        return self.assess_batch([text], features[None])[0]

    def assess_batch(
        self, texts: Sequence[str], features: np.ndarray, signs: Sequence[SignReading] | None = None
    ) -> list[RiskAssessment]:
        """N messages, their [N, F] features (`risk_features`) and, when the scorer by meaning read them, their N
        warning signs → N assessments, scored as one matrix."""
        t0 = time.perf_counter()
        scores = self.score(features, list(texts))
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(texts))
        out = []
        for i, (text, s, feats) in enumerate(zip(texts, scores.tolist(), features)):
            sign = signs[i] if signs is not None else None
            level, rule = decide_level(text, s, feats[-28:], self.crisis_threshold, self.caution_threshold, sign)
            explicit = level == "crisis" and rule is not None
            category = sign.category if sign is not None and level != "none" else None
            out.append(
                RiskAssessment(
                    level=level,
                    score=round(max(s, 0.99) if explicit else s, 4),
                    rule=rule,
                    latency_ms=ms,
                    category=category,
                )
            )
        return out


# The caution tier is set for recall on risk posts, so it also catches many ordinary ones. A message the text model
# reads as mostly positive (positive emotions >= 0.3 of the mass and at least the negative ones) is not put under
# the caution prompt: on GoEmotions dev this takes caution on joy / gratitude / pride / excitement / relief messages
# from 4.7% to 0.8% (all dev messages 9.9% -> 6.5%). It never lowers the crisis tier or the explicit rules.
_POSITIVE = np.array(
    [
        GOEMOTIONS.index(g)
        for g in (
            "admiration",
            "amusement",
            "approval",
            "caring",
            "excitement",
            "gratitude",
            "joy",
            "love",
            "optimism",
            "pride",
            "relief",
        )
    ]
)
_NEGATIVE = np.array(
    [
        GOEMOTIONS.index(g)
        for g in (
            "anger",
            "annoyance",
            "disappointment",
            "disapproval",
            "disgust",
            "embarrassment",
            "fear",
            "grief",
            "nervousness",
            "remorse",
            "sadness",
        )
    ]
)
POSITIVE_MIN = 0.3
_NO_PROBS = np.zeros(len(GOEMOTIONS), np.float32)  # no emotion reading: never "mostly positive"


def positive_message(probs: np.ndarray) -> bool:
    """probs: the text model's 28 GoEmotions probabilities (its label order)."""
    pos, neg = float(probs[_POSITIVE].sum()), float(probs[_NEGATIVE].sum())
    return pos >= POSITIVE_MIN and pos >= neg


def decide_level(
    text: str,
    score: float,
    probs: np.ndarray,
    crisis_threshold: float,
    caution_threshold: float,
    sign: SignReading | None = None,
) -> tuple[RiskLevel, str | None]:
    """The safety layer's decision for one message, and the phrase rule behind it (served, and replayed out-of-fold
    by `train safety` and bench/safety.py): an explicit phrase, a learned score over the crisis threshold or a
    crisis-tier warning sign read by meaning (`sign`, perception/warning_signs.py) is a crisis; a caution-tier
    warning sign, a warning-sign phrase, or a learned score over the caution threshold on a message that is neither
    mostly positive (`probs`: the text model's 28 probabilities) nor laughing, is caution. A learned score past
    halfway from the caution to the crisis threshold is caution whatever the tone: a cheerful or joking first read
    does not wave off a post that reads as strongly at risk ("I will do it tonight. I'm relieved.")."""
    rule = explicit_phrase(text)
    if sign is not None and sign.tier == "crisis" and (_OTHERS_RISK_RE.search(text) or _NOT_OWN_RISK_RE.search(text)):
        sign = replace(sign, tier="caution")  # someone else's risk, a negation or the topic itself: never a crisis
    if rule is not None or score >= crisis_threshold or (sign is not None and sign.tier == "crisis"):
        return "crisis", rule
    if sign is not None and sign.tier == "caution":
        return "caution", None
    if (phrase := warning_sign(text)) is not None:
        return "caution", phrase
    if score >= caution_threshold and (
        score >= (caution_threshold + crisis_threshold) / 2 or not (positive_message(probs) or laughing(text))
    ):
        return "caution", None
    return "none", None


def rules_only(text: str) -> RiskAssessment:
    """The phrase rules alone (no learned score: the lexicon perceiver, or the text model failed)."""
    level, rule = decide_level(text, 0.0, _NO_PROBS, math.inf, math.inf)
    return RiskAssessment(level=level, score=1.0 if level == "crisis" else 0.0, rule=rule, latency_ms=0.0)


def load_risk_classifier(path: str | Path) -> RiskClassifier:
    with np.load(path, allow_pickle=False) as z:
        lexical = None
        if "lex_vocab" in z.files:
            terms = json.loads(str(z["lex_vocab"]))
            lexical = LexicalRisk(
                vocab={t: i for i, t in enumerate(terms)},
                idf=z["lex_idf"].astype(np.float64),
                coef=z["lex_coef"].astype(np.float64),
                bias=float(z["lex_bias"]),
            )
        return RiskClassifier(
            mean=z["mean"],
            scale=z["scale"],
            coef=z["coef"],
            bias=float(z["bias"]),
            crisis_threshold=float(z["crisis_threshold"]),
            caution_threshold=float(z["caution_threshold"]),
            lexical=lexical,
            embedding_weight=float(z["embedding_weight"]) if lexical else 1.0,
        )


def risk_features(
    model: TextEmotionModel,
    texts: Sequence[str],
    probs: np.ndarray | None = None,
    pooled: np.ndarray | None = None,
    encoder: SentenceEncoder | None = None,
) -> np.ndarray:
    """[N, 384 (+ 768) + 28]: the text model's sentence embedding, the safety encoder's embedding when there is one
    (perception/sentence_encoder.py), and the text model's 28 label probabilities, last. Messages with a harmless
    idiom are read with the idiom blanked out, so "dying to see it" is not scored like "dying". Pass the outputs of a
    forward pass over `texts` already made (the emotion reading) and only the idiom messages are read again."""
    read = [strip_idioms(t) if has_idiom(t) else t for t in texts]
    if probs is None or pooled is None:
        probs, pooled = model.forward(read)
    else:
        probs, pooled = probs.copy(), pooled.copy()
        if idioms := [i for i, t in enumerate(texts) if has_idiom(t)]:
            p2, e2 = model.forward([read[i] for i in idioms])
            probs[idioms], pooled[idioms] = p2, e2
    views = [pooled] + ([encoder.encode(read)] if encoder is not None else []) + [probs]
    return np.concatenate(views, axis=1).astype(np.float32)


@dataclass(frozen=True)
class RiskFeatures:
    """How the safety layer reads messages into features (`risk_features` with its models bound): the text model's
    emotion pass, shared with perception, and the safety encoder's (perception/sentence_encoder.py)."""

    model: TextEmotionModel
    encoder: SentenceEncoder | None = None

    def __call__(
        self, texts: Sequence[str], probs: np.ndarray | None = None, pooled: np.ndarray | None = None
    ) -> np.ndarray:
        return risk_features(self.model, texts, probs, pooled, self.encoder)


def load_risk_features(model: TextEmotionModel | None = None, threads: int = 2) -> RiskFeatures:
    """What the shipped safety classifiers read: the text model's pass (the shipped model unless given) and the safety
    encoder's (`threads` of its own)."""
    return RiskFeatures(model or load_text_model(threads=1), load_sentence_encoder(threads=threads))


def default_risk_classifier_path() -> Path:
    return Path(__file__).resolve().parent / "models" / "crisis_risk.npz"
