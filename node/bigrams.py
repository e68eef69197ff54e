"""Chinese text for SQLite's FTS5: overlapping bigrams, so that any two characters find
the text that holds them. Pure.

FTS5's own ``unicode61`` tokenizer takes a run of Chinese characters as one token, so a
search for 低保 would not find 低保金. Here every run of Chinese characters becomes its
overlapping pairs, then its last character alone (低保金 -> 低保 保金 金), and every run of
Latin letters or digits one lower-case token; the text FTS5 indexes is those tokens
separated by spaces. A query is made the same way: a Chinese term becomes the phrase of
its pairs (adjacent, in order: 低保金 matches 低保金, never 保金低), a single character or
a run of letters and digits a prefix (张 matches 张三, 1380013 matches 13800138000).
"""

from __future__ import annotations

import re

_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9A-Za-z]+")


def tokens(text: str | None) -> list[str]:
    out: list[str] = []
    for m in _RUN.finditer(text or ""):
        run = m.group()
        if run[0].isascii():
            out.append(run.lower())
        else:
            out += [run[i:i + 2] for i in range(len(run) - 1)]
            out.append(run[-1])
    return out


def indexed(*texts: str | None) -> str:
    """What FTS5 stores for these texts: their tokens separated by spaces."""
    return " ".join(t for text in texts for t in tokens(text))


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def query(text: str | None) -> str | None:
    """The FTS5 query of what a person typed: every term must match (AND); None if the
    text has nothing to search for (only punctuation, say)."""
    parts = []
    for m in _RUN.finditer(text or ""):
        run = m.group()
        if run[0].isascii() or len(run) == 1:
            parts.append(_quoted(run.lower()) + "*")
        else:
            parts.append(_quoted(" ".join(run[i:i + 2] for i in range(len(run) - 1))))
    return " AND ".join(parts) or None
