"""The HTTP grammar every parser here shares (RFC 9110 and RFC 9112).

Each rule is written once, as the text of a regular expression over
ISO-8859-1 text (a field's bytes decoded one character per byte), and
compiled here for the parsers: as `str` patterns for decoded text and, where
a parser works on the raw bytes, as `bytes` patterns of the same rule. The
functions at the end apply the list and quoted-string rules.

Rules (RFC 9110 section 5.6 unless marked otherwise)::

    tchar          = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
                   / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    token          = 1*tchar
    OWS            = *( SP / HTAB )
    quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    qdtext         = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    quoted-pair    = "\\" ( HTAB / SP / VCHAR / obs-text )
    field-value    = *( HTAB / SP / VCHAR / obs-text )          (section 5.5)
    parameters     = *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )
    chunk-ext      = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
                                                               (RFC 9112 section 7.1.1)

Invariant: a rule here is the only definition of it in the package; each
parser imports the compiled form it needs.
"""

from __future__ import annotations

import re

__all__ = [
    "CHUNK_EXTENSIONS",
    "FIELD_CONTROL",
    "FIELD_CONTROL_BYTES",
    "FIELD_VALUE",
    "FIELD_VALUE_OCTETS",
    "HEX_BYTES",
    "OWS",
    "PARAMETER",
    "QUOTED_STRING",
    "TOKEN",
    "TOKEN_BYTES",
    "TOKEN_RULE",
    "is_token",
    "split_list",
    "split_outside_quotes",
    "unquote",
]

# -- the rules, as pattern text ----------------------------------------------------

TOKEN_RULE = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
"""token: one or more tchar."""
OWS_RULE = r"[ \t]*"
"""OWS (and BWS, which has the same syntax): optional spaces and tabs."""
QUOTED_STRING_RULE = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
"""quoted-string: qdtext and quoted-pairs between double quotes.

Written with negated classes, so that on text decoded as UTF-8 (a form
field's name) every character past ASCII counts as obs-text, as its bytes
would."""
FIELD_CONTROL_RULE = r"[\x00-\x08\x0a-\x1f\x7f]"
"""One character a field value may not hold: a control other than HTAB, or DEL."""
FIELD_VALUE_RULE = r"[^\x00-\x08\x0a-\x1f\x7f]*"
"""field-value on ISO-8859-1 text: anything but `FIELD_CONTROL_RULE`."""
_CHUNK_EXTENSIONS_RULE = (
    rf"(?:{OWS_RULE};{OWS_RULE}{TOKEN_RULE}"
    rf"(?:{OWS_RULE}={OWS_RULE}(?:{TOKEN_RULE}|{QUOTED_STRING_RULE}))?)*"
)


def _as_bytes(rule: str) -> bytes:
    return rule.encode("iso-8859-1")


# -- compiled, for decoded text ------------------------------------------------------

TOKEN = re.compile(TOKEN_RULE)
OWS = re.compile(OWS_RULE)
QUOTED_STRING = re.compile(QUOTED_STRING_RULE)
FIELD_CONTROL = re.compile(FIELD_CONTROL_RULE)
FIELD_VALUE = re.compile(FIELD_VALUE_RULE)
FIELD_VALUE_OCTETS = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""field-value exactly as written, on text: HTAB, SP, VCHAR and obs-text (so ISO-8859-1 only)."""
PARAMETER = re.compile(
    rf"{OWS_RULE};{OWS_RULE}(?:({TOKEN_RULE})=({TOKEN_RULE}|{QUOTED_STRING_RULE}))?")
"""One ``; name=value`` parameter (the name and value are groups 1 and 2; both may be absent)."""

# -- compiled, for raw bytes -----------------------------------------------------------

TOKEN_BYTES = re.compile(_as_bytes(TOKEN_RULE))
FIELD_CONTROL_BYTES = re.compile(_as_bytes(FIELD_CONTROL_RULE))
HEX_BYTES = re.compile(rb"[0-9A-Fa-f]+")
"""chunk-size: one or more hex digits (RFC 9112 section 7.1)."""
CHUNK_EXTENSIONS = re.compile(_as_bytes(_CHUNK_EXTENSIONS_RULE))


# -- applying the rules ------------------------------------------------------------------

def is_token(text: str) -> bool:
    """Tell whether `text` is an RFC 9110 token (method, field name, ...).

    Examples:
        >>> is_token("Content-Type"), is_token("two words"), is_token("")
        (True, False, False)
    """
    return TOKEN.fullmatch(text) is not None


def split_outside_quotes(value: str, separator: str) -> list[str]:
    """Split `value` at every `separator` that is not inside a quoted string.

    The pieces are returned as they are (quotes, whitespace and empty pieces
    kept); `split_list` and the ``Forwarded`` parser build on this.

    Examples:
        >>> split_outside_quotes('for=a;proto="x;y"', ";")
        ['for=a', 'proto="x;y"']
    """
    pieces: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            escaped = char == "\\"
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == separator:
            pieces.append(value[start:index])
            start = index + 1
    pieces.append(value[start:])
    return pieces


def split_list(value: str) -> list[str]:
    """Split a comma-separated field value into its items (RFC 9110 5.6.1).

    Commas inside quoted strings do not split; items keep their quotes;
    whitespace around items and empty items are dropped.

    Examples:
        >>> split_list('a, "b, c" ,, d')
        ['a', '"b, c"', 'd']
    """
    items = (item.strip(" \t") for item in split_outside_quotes(value, ","))
    return [item for item in items if item]


def unquote(text: str) -> str:
    """Remove the quotes of a quoted string and undo its escapes.

    Text that is not a quoted string is returned unchanged.

    Examples:
        >>> unquote('"say \\\\"hi\\\\""'), unquote("plain")
        ('say "hi"', 'plain')
    """
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)
