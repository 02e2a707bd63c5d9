"""Exercise 3: choose the language of the answer from ``Accept-Language``.

An HTTP application for the layer 3 command line. The client lists the
languages it reads, each with an optional weight ``q`` (1 when absent, 0
for "not this one"): ``Accept-Language: de-CH, fr;q=0.9, en;q=0.5``.
The server greets in the acceptable language with the highest weight
that it knows (a region such as ``-CH`` falls back to its language;
``*`` means any language), in English when none fits, and says so in
``Content-Language``; ``Vary: Accept-Language`` tells caches that the
answer depends on that field. Serve it with
``python -m layer3_http docs/examples/layer3/solutions/ex3_language.py --listen 127.0.0.1:0``.
"""

from __future__ import annotations

from layer3_http import Request

GREETINGS = {"en": "Hello", "de": "Hallo", "fr": "Bonjour", "es": "Hola"}
DEFAULT = "en"


# --8<-- [start:solution]
def weight(parameters: list[str]) -> float:
    """The q parameter of one item (1 when absent; 0 when malformed or out of range)."""
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def choose(items: list[str]) -> str:
    """The known language with the highest weight; the first listed wins a tie."""
    best, best_weight = DEFAULT, 0.0
    refused = set()
    for item in items:  # headers_csv_table: the items of every line, in order
        tag, *parameters = item.split(";")
        language = tag.strip().lower().split("-")[0]
        q = weight(parameters)
        if q == 0.0:
            refused.add(language)
        elif language == "*":
            language = next((known for known in GREETINGS if known not in refused), DEFAULT)
        if q > best_weight and language in GREETINGS and language not in refused:
            best, best_weight = language, q
    return best


def app(request: Request) -> None:
    language = choose(request.headers_csv_table["Accept-Language"])
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_header("Content-Language", language)
    request.send_header("Vary", "Accept-Language")
    request.send_data(f"{GREETINGS[language]}!\n")
# --8<-- [end:solution]
