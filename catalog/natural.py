"""Natural order: 1.9 before 1.10, numbers compared as numbers, letters without regard to case."""

import re

DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> bytes:
    """A key whose plain byte order is the natural order, so the database can sort and index it as well.

    Each run of digits becomes 0x01, its length (two bytes) and the number without leading zeros: a longer
    number is a larger one, and a number sorts before text at the same place. Each run of text becomes 0x02 and
    its lower case UTF-8 (byte order is code point order); what follows a text run is 0x01 or the end, both
    below any character, so "ab" sorts before "abc" and before "ab1"."""
    key = bytearray()
    for part in DIGITS.split(text):
        if not part:
            continue
        if part.isdigit():
            number = str(int(part)).encode()
            key += b"\x01" + len(number).to_bytes(2, "big") + number
        else:
            key += b"\x02" + part.lower().encode()
    return bytes(key)
