"""Text from outside (what a user typed, a client's history, a tool's output) made safe to put in a prompt: nothing
in it reaches the engine as a chat template's control token, and a quoted block's tags cannot be forged from inside.
"""

from __future__ import annotations

import re

# Chat templates' control tokens, in every family we serve: ChatML and Llama 3 (`<|im_start|>`, `<|eot_id|>`), Mistral
# (`[INST]`, `[SYSTEM_PROMPT]`, `[TOOL_CALLS]`), Llama 2 (`<<SYS>>`), and bare tags (`<s>`, `</s>`, SmolLM2's `<file_sep>`).
# Typed by a user they must stay text: the engine's tokenizer would otherwise read them as the real special tokens.
_CONTROL = re.compile(r"<\|[^<>|\n]{0,64}\|>|\[/?[A-Z][A-Z_]{1,30}\]|<</?[A-Z]{2,10}>>|</?[A-Za-z_][\w.-]{0,40}>")


def neutralize(text: str) -> str:
    """User-originated text with anything shaped like a control token made inert: its brackets become look-alikes
    (‹|im_start|›, ［INST］), which no tokenizer reads as special. Everything else is left exactly as typed."""
    if not ("<" in text or "[" in text):
        return text
    return _CONTROL.sub(lambda m: m.group(0).translate(_INERT), text)


_INERT = str.maketrans({"<": "‹", ">": "›", "[": "［", "]": "］"})


def unbracket(text: str) -> str:
    """Text for inside a delimited quote: its angle brackets become look-alikes, so it cannot close the quote."""
    return text.replace("<", "‹").replace(">", "›")
