"""JSON in, strictly: text PostgreSQL could not store is refused here with a 400, not a 500 later."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _has_unstorable_text(value) -> bool:
    """Lone UTF-16 surrogates ("\\ud800") and NUL characters: valid JSON, not valid text for the database."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_unstorable_text(data):
            raise ParseError("The JSON contains text that is not valid Unicode (a lone surrogate or a NUL "
                             "character).", code="invalid_text")
        return data
