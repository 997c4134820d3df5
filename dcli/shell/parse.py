r"""zkCli's line splitting: words split on whitespace; "…" and '…' group words and are stripped.

There is no backslash escaping (zkCli has none): `"a \"b\" c"` splits as zkCli splits it,
into `a \`, `b\"` and `c"`.

    >>> split_words('create /q "hello world"')
    ['create', '/q', 'hello world']
    >>> split_commands("create /a 'x; y'; get /a")
    ["create /a 'x; y'", 'get /a']
"""
from __future__ import annotations

import re

# a quoted group (may be empty), or a word that starts with anything but a quote
_WORD = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^\s"\']\S*)')


def split_words(line: str) -> list[str]:
    words = []
    for m in _WORD.finditer(line):
        dq, sq, bare = m.groups()
        words.append(dq if dq is not None else sq if sq is not None else bare)
    return words


def split_commands(text: str) -> list[str]:
    """Split a -c string on ';' outside quotes; blank pieces are dropped."""
    parts, cur, quote = [], [], None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == ";":
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def is_skipped(line: str) -> bool:
    """Blank lines and `#` comments are not commands."""
    s = line.strip()
    return not s or s.startswith("#")
