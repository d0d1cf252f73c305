"""Weak SIP passwords, judged offline from the target profile (no packet is sent for this).

Toll fraud starts with guessed passwords: scanners try the extension itself, ``1234``, ``password``
and short digit strings first. A profile password that such a list would find is a finding::

    >>> weakness("2001", "2001")
    'equals the username'
    >>> weakness("2001", "1234")
    'in the common-password list'
    >>> weakness("2001", "u7#Lq9!vZp2@") is None
    True
"""

from __future__ import annotations

__all__ = ["COMMON", "MIN_LENGTH", "weakness"]

MIN_LENGTH = 10
#: what SIP scanners (svcrack, sipvicious dictionaries, botnet lists) try first
COMMON = ("1234", "12345", "123456", "1234567", "12345678", "123456789", "0000", "1111", "0123", "4321",
          "password", "passw0rd", "secret", "admin", "pass", "sip", "voip", "asterisk", "freepbx", "pbx",
          "test", "test123", "phone", "changeme", "default", "qwerty", "abc123", "letmein", "welcome", "1")


def weakness(username: str, password: str, *, min_length: int = MIN_LENGTH) -> str | None:
    """Why ``password`` is weak, or None when none of the checks find it."""
    low = password.lower()
    if not password:
        return "empty"
    if low == username.lower():
        return "equals the username"
    if low in COMMON or low in (username + username).lower() or low == username[::-1].lower():
        return "in the common-password list"
    if password.isdigit() and len(password) < 12:
        return f"only {len(password)} digits"
    if len(set(password)) <= 2:
        return "repeats one or two characters"
    if len(password) < min_length:
        return f"shorter than {min_length} characters"
    return None
