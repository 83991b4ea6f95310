"""Masking personal data before it is stored or logged: e-mail addresses, phone numbers and
payment card numbers.

Free text (search queries, log lines) gets placeholders: ``[email]``, ``[phone]``, ``[card]``.
Identifiers (a user or session id that is an e-mail address) get a stable pseudonym instead,
``email-<hash>``, so the same shopper still maps to the same history without the address
being kept. Only e-mail addresses are taken out of ids: long digit runs there are far more
often a shop's numeric customer numbers than phone or card numbers, and rewriting those would
split a shopper's history between the files they were loaded from and the API.
"""

from __future__ import annotations

import hashlib
import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by single spaces or dashes; confirmed by the Luhn checksum.
CARD = re.compile(r"(?<![\w])\d(?:[ -]?\d){12,18}(?![\w])")
# An optional + or 00, then digits in groups separated by spaces, dots, dashes or brackets;
# 9 to 15 digits in all (E.164) - shorter runs are prices, sizes and years.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{6,}\d(?![\w])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _find(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every piece of personal data in ``text``, not overlapping."""
    found: list[tuple[int, int, str]] = [(m.start(), m.end(), "email") for m in EMAIL.finditer(text)]

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in found)

    for m in CARD.finditer(text):
        if free(m.start(), m.end()) and luhn_ok(_digits(m.group())):
            found.append((m.start(), m.end(), "card"))
    for m in PHONE.finditer(text):
        if free(m.start(), m.end()) and 9 <= len(_digits(m.group())) <= 15:
            found.append((m.start(), m.end(), "phone"))
    return sorted(found)


def _replace(text: str, how) -> str:
    spans = _find(text)
    if not spans:
        return text
    out, pos = [], 0
    for start, end, kind in spans:
        out.append(text[pos:start])
        out.append(how(kind, text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str | None) -> str | None:
    """Free text with personal data replaced by ``[email]``, ``[phone]`` or ``[card]``."""
    if not text or not any(c.isdigit() or c == "@" for c in text):
        return text  # the common case, checked without running the expressions
    return _replace(text, lambda kind, _: f"[{kind}]")


def pseudonymize(value: str | None, salt: str = "shelfwise") -> str | None:
    """An identifier with any e-mail address in it replaced by a stable keyed hash."""
    if not value or "@" not in value:
        return value

    def token(match: re.Match) -> str:
        digest = hashlib.sha256(f"{salt}:email:{match.group().lower()}".encode()).hexdigest()
        return f"email-{digest[:16]}"

    return EMAIL.sub(token, value)
