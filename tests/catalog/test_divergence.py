"""The vectorised byte check (``plain_fits``) never vouches for bytes the RE2 grammar
refuses, and vouches for the plain CSV most files hold."""

from __future__ import annotations

import mmap
import random
from pathlib import Path

import pytest

from lakelet.catalog.rawscan import divergence
from lakelet.catalog.rawscan.divergence import Divergences, grammar, plain_fits

ALPHABET = [b"a", b"0", b"x", b"X", b",", b";", b'"', b"\n", b"\r", b"\t", b"1", "é".encode()]


def _both(
    path: Path, text: bytes, quote: str, delimiter: str, kinds: Divergences
) -> tuple[bool, bool]:
    """(plain_fits, the grammar) on ``text``, placed after a line so the piece starts
    inside the mapping, as the pieces after a file's first do."""
    lead = b"lead,line\n"
    path.write_bytes(lead + text)
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
        end = len(lead) + len(text)
        fast = plain_fits(view, len(lead), end, quote, delimiter, kinds)
        rules = grammar(quote, delimiter, kinds)
        return fast, divergence._matches(view, len(lead), end, rules)


def test_never_vouches_for_what_the_grammar_refuses(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    vouched = fitting = 0
    for _ in range(3000):
        text = b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 14)))
        quote = rng.choice(['"', '"', ""])
        delimiter = rng.choice([",", ",", ";", "\t"])
        kinds = Divergences(integers=rng.random() < 0.5, trimmed=rng.random() < 0.5)
        fast, fits = _both(tmp_path / "a.csv", text, quote, delimiter, kinds)
        assert fits or not fast, (text, quote, delimiter, kinds)
        vouched += fast
        fitting += fits
    assert vouched > fitting / 3  # it decides a good share itself, not only "unsure"


@pytest.mark.parametrize(
    "text",
    [
        b'1,2.50,"plain text",2026-11-27\n2,3.00,"with, a delimiter",2026-11-28\n',
        b'1,"a value\nover two lines",x\r\n2,"",y\r\n',  # CRLF, an empty quoted value
        b'"first",1\n"last"',  # a value at the piece's start and one at its end
        b"no quotes at all,12\n34,56\n",
    ],
)
def test_vouches_for_plain_csv(tmp_path: Path, text: bytes) -> None:
    fast, fits = _both(tmp_path / "a.csv", text, '"', ",", Divergences(integers=True, trimmed=True))
    assert fast and fits


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("1,caf\u00e9\n".encode(), True),  # not ASCII: RE2 checks the UTF-8
        (b"1,\t2\n", False),  # a tab pyarrow would trim
        (b"0x1F,2\n", False),  # a hexadecimal integer
        (b'1,"ab"c\n', False),  # pyarrow reads on after the closing quote
        (b'1,"a""b"\n', True),  # a doubled quote: RE2 decides
        (b'1,ab"c\n', True),  # a quote inside an unquoted value: RE2 decides
        (b'1,"open\n', False),  # a value the piece's end cuts
    ],
)
def test_leaves_what_it_cannot_prove_to_the_grammar(
    tmp_path: Path, text: bytes, fits: bool
) -> None:
    kinds = Divergences(integers=True, trimmed=True)
    assert _both(tmp_path / "a.csv", text, '"', ",", kinds) == (False, fits)


def test_a_hexadecimal_across_chunks_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(divergence, "CHUNK_BYTES", 8)
    kinds = Divergences(integers=True)
    for cut in range(16):  # the 0 at every offset, so the pair crosses a chunk's end
        text = b"1" * cut + b"0x1\n" + b"2" * 9 + b"\n"
        assert _both(tmp_path / "a.csv", text, '"', ",", kinds) == (False, False)
    text = b'"a",' * 5 + b"1\n"  # quotes in several chunks still pair up
    assert _both(tmp_path / "a.csv", text, '"', ",", kinds) == (True, True)
