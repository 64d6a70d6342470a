"""Find personal data (PII) in tables: per column and per cell, with validators and confidence.

Every cell is first **normalised** (Unicode NFKC, so full-width digits and at signs become ASCII; Cyrillic and
Greek look-alike letters folded to Latin), and matches are reported at their offsets in the *original*
text. Each detector finds candidates with a regular expression and keeps them only when a validator (the
field's maintained libraries where they exist) and the context agree:

============== ============================================================================
type           validator and context
============== ============================================================================
email          ``local@domain.tld`` and the common obfuscations (``x at y dot com``, ``[at]``/``(dot)``,
               the full-width at sign U+FF20, homoglyphs); an obfuscated address needs a known top-level domain
phone          :mod:`phonenumbers` (Google's libphonenumber): ``+``/``00`` international numbers, and
               national formats valid in one of :data:`PHONE_REGIONS` (UK, DE, FR, JP, IN, ...);
               a candidate needs a separator, ``+`` or a trunk ``0``, and is not a date or a decimal
credit_card    13-19 digits, a known issuer prefix and the Luhn checksum; not after ``SKU``/``EAN``/
               ``ISBN``/``item``/... unless card words are near; a 13-digit EAN-13 code is a product code;
               a column where fewer than half of the card-shaped cells validate is a code column
iban           :func:`stdnum.iban.is_valid` (country length and ISO 7064 mod-97), any letter case
us_ssn         ``AAA-GG-SSSS`` or ``AAA GG SSSS`` (one separator kind), :mod:`stdnum.us.ssn`'s rules
ip_address     IPv4 with every octet 0-255 and no leading zeros, IPv6 through :mod:`ipaddress`; counted
               only in an IP-named column, after an IP word (``ip``, ``host``, ``from``, ...), or in a
               column made mostly of whole-cell addresses that is not a column of version strings
               (most first components below 10); never after ``v``/``version``
date_of_birth  a real calendar date in 1900..today, in a column named like a birth date or
               next to "born"/"DOB"/"date of birth" in free text
postal_address a house number and street (US/UK ``12 Baker Street``, German ``Hauptstraße 5`` /
               ``Berliner Str. 7``, French ``12 rue de la Paix``, Spanish ``Calle Mayor 5``), any case;
               or a postcode / ZIP in a column named for it
person_name    free text: a first name and a last name from a gazetteer (the person-name lists of
               Faker's locales, read offline from the installed wheel), ``Last, First``, or a title
               (``Mr``, ``Dr``, ``Frau``, ...) before a capitalised word; common words are not names;
               a whole-cell name in a column named for names
============== ============================================================================

Values are never copied into reports: only counts, column names and confidences. Quasi-identifiers
(columns that single out people in combination, like ZIP + birth date + sex, Sweeney 2000) are found
by name hints and by measuring k-anonymity of small column combinations.

The measured precision and recall (a generated, labelled set of evasive formats, per kind) are in
``docs/privacy.md``; they describe those generators, not every format in the world.

References
----------
.. [1] L. Sweeney, "Simple Demographics Often Identify People Uniquely", CMU 2000.
.. [2] ISO 13616-1:2020, IBAN; ISO/IEC 7812-1, Luhn check digit.
.. [3] U.S. SSA, "Social Security Number Randomization", 2011 (SSN validity rules).
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import ipaddress
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import stdnum.iban
import stdnum.us.ssn
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from modelshield.data.loaders import read_table as _read
from modelshield.errors import DataError

__all__ = [
    "PHONE_REGIONS",
    "PII_TYPES",
    "ColumnPii",
    "PiiReport",
    "QuasiIdentifier",
    "card_valid",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "normalize",
    "phone_valid",
    "scan_dataset",
    "scan_file",
    "scan_frame",
    "ssn_valid",
]


# --------------------------------------------------------------------------------------------
# normalisation (with a map back to the original offsets)
# --------------------------------------------------------------------------------------------
#: Cyrillic and Greek letters that look like Latin ones (the usual homoglyph evasions).
_HOMOGLYPHS = str.maketrans(
    ("\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u0261\u04bb\u04cf\u0578"
     "\u051b\u0475\u051d\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0423"
     "\u0406\u0408\u0405\u03b1\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u0391\u0392"
     "\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u2010\u2011\u2012"
     "\u2013\u2014\u2212\u00a0\u202f\u2009"),
    "aeopcyxijsdghlnqvwABEKMHOPCTXYIJSaeikvoptuxABEZHIKMNOPTYX------   ",
    "\u200b\u200c\u200d\ufeff",
)


def normalize(text: str) -> tuple[str, list[int] | None]:
    """NFKC plus homoglyph folding. Returns the normalised text and, when it differs in length or
    content, ``offsets[i]`` = the index in ``text`` of the character that produced normalised character
    ``i`` (``None`` when the text is unchanged ASCII)."""
    if text.isascii():
        return text, None
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        n = unicodedata.normalize("NFKC", ch).translate(_HOMOGLYPHS) if not ch.isascii() else ch
        out.append(n)
        offsets.extend([i] * len(n))
    return "".join(out), offsets


def _orig_span(offsets: list[int] | None, start: int, end: int, n_orig: int) -> tuple[int, int]:
    if offsets is None:
        return start, end
    a = offsets[start] if start < len(offsets) else n_orig
    b = offsets[end - 1] + 1 if 0 < end <= len(offsets) else n_orig
    return a, b


# --------------------------------------------------------------------------------------------
# validators
# --------------------------------------------------------------------------------------------
def luhn_valid(number: str) -> bool:
    """The Luhn (mod-10) checksum of the digits in ``number`` (equal to :func:`stdnum.luhn.is_valid`
    on digit strings; ours because it is called on every card-shaped candidate)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}"
                          r"|2(?:2(?:2[1-9]|[3-9]\d)|[3-6]\d\d|7(?:[01]\d|20))\d{12}"
                          r"|3[47]\d{13}|6(?:011|5\d\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}|3(?:0[0-5]|[68]\d)\d{11,16})$")


def card_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits) and len(set(digits)) > 1


def ean13_valid(digits: str) -> bool:
    """GS1 EAN-13 check digit (weights 1, 3): product codes, not cards."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def iban_valid(value: str) -> bool:
    """Country length and the ISO 7064 mod-97 checksum, by :func:`stdnum.iban.is_valid` (any case)."""
    s = re.sub(r"[\s-]", "", value).upper()
    return len(s) >= 15 and s.isalnum() and bool(stdnum.iban.is_valid(s))


def ssn_valid(value: str) -> bool:
    """US SSN rules of :mod:`stdnum.us.ssn` (area not 000, 666 or 9xx; group not 00; serial not 0000;
    the known advertising numbers), plus the sequential placeholder 123-45-6789."""
    digits = re.sub(r"\D", "", value)
    if len(digits) != 9 or digits == "123456789":
        return False
    return bool(stdnum.us.ssn.is_valid(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"))


#: Top-level domains an *obfuscated* address must end in (``name at host dot com``): plain ``@``
#: addresses accept any alphabetic TLD.
_COMMON_TLDS = frozenset(
    "com org net edu gov mil int io co ai app dev info biz me tv us uk de fr es it nl be ch at se no dk fi pl cz "
    "pt ie ru ua jp cn in au nz ca br mx ar za kr tw hk sg eu gr hu ro bg tr il ae sa".split())


def _email_valid(value: str, *, obfuscated: bool = False) -> bool:
    local, _, domain = value.rpartition("@")
    if not local or ".." in value or local.startswith(".") or local.endswith("."):
        return False
    labels = domain.split(".")
    if not (len(labels) >= 2 and labels[-1].isalpha() and 2 <= len(labels[-1]) <= 24 and all(labels)):
        return False
    return not obfuscated or labels[-1].lower() in _COMMON_TLDS


#: Regions whose national formats are tried for a number without ``+`` (first valid wins). Numbers
#: with a country code are validated for their own country whatever this list holds.
PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "JP", "ES", "IT", "NL", "CA", "AU", "BR", "CH", "AT")


@functools.lru_cache(maxsize=65536)
def phone_valid(value: str) -> bool:
    """A phone number by libphonenumber: with ``+``/``00``, a *possible* number of its country (the
    country code is strong evidence; unallocated ranges still count); without, a *valid* national number
    (an allocated range) in one of :data:`PHONE_REGIONS`."""
    v = value.strip()
    digits = re.sub(r"\D", "", v)
    if not 7 <= len(digits) <= 15 or len(set(digits)) <= 2:
        return False
    if _DATE_SHAPE.fullmatch(v) or _FLOAT_CELL.fullmatch(v) or _SSN_RE.fullmatch(v) or re.fullmatch(r"[\d.]+", v):
        return False  # a date, a decimal, an SSN shape or dotted digits is not a phone number
    if not re.search(r"[ ().\-/]", v) and not (v.startswith("+") or (v[:1] == "0" and v[1:2] != "0"
                                                                  and len(digits) >= 10)):
        return False  # a bare run of digits (an ID, an amount) unless +CC or a trunk-0 national number
    if re.match(r"00[1-9]", v):
        v = "+" + v[2:]
    if v.startswith("+"):
        try:
            return bool(phonenumbers.is_possible_number(phonenumbers.parse(v, None)))
        except phonenumbers.NumberParseException:
            return False
    for region in PHONE_REGIONS:
        try:
            num = phonenumbers.parse(v, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(num) and phonenumbers.is_valid_number(num):
            return True
    return False


def _ip_valid(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (ip.version == 4 and value.startswith("0."))


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def _parse_date(value: str) -> _dt.date | None:
    v = value.strip()
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", v)
    cands: list[tuple[int, int, int]] = []
    if m:
        cands.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", v)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        cands += [(y, b, a), (y, a, b)]  # day-first, then month-first
    m = re.fullmatch(r"(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?,?\s+(\d{4})", v)
    if m and m.group(2).lower() in _MONTHS:
        cands.append((int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1))))
    m = re.fullmatch(r"([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})", v)
    if m and m.group(1).lower() in _MONTHS:
        cands.append((int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2))))
    for y, mo, d in cands:
        try:
            date = _dt.date(y, mo, d)
        except ValueError:
            continue
        if _dt.date(1900, 1, 1) <= date <= _dt.date.today():
            return date
    return None


# --------------------------------------------------------------------------------------------
# person-name gazetteer (offline: the name lists inside Faker's installed locales)
# --------------------------------------------------------------------------------------------
_NAME_LOCALES = ("en_US", "en_GB", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL",
                 "sv_SE", "tr_TR")
#: Words that are names but mostly mean something else in running text; never a name on their own.
_NOT_NAMES = frozenset(
    "will may mark grant bill june april august rose hope joy max ray art long young brown green white black "
    "king page ward bell hall wood lane hill street north south west east price cash rich summer winter "
    "major miles chase case low little love mason banks dean bishop baker cook hunter fisher carter "
    "turner walker parker gray grey rice stone day early english french german friend guy sky sunny "
    "patient doctor nurse client customer user admin team manager staff contact".split()) | ENGLISH_STOP_WORDS


@functools.lru_cache(maxsize=1)
def _gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), lower case, from Faker's person providers (no network)."""
    first: set[str] = set()
    last: set[str] = set()
    for loc in _NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except ImportError:  # a locale missing from an older Faker: the others still count
            continue
        for attr, into in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                           ("last_names", last)):
            names = getattr(provider, attr, ())
            into.update(n.lower() for n in (names.keys() if hasattr(names, "keys") else names)
                        if isinstance(n, str) and n.isalpha() and len(n) > 1)
    return frozenset(first - _NOT_NAMES), frozenset(last - _NOT_NAMES)


_WORD = re.compile(r"[^\W\d_][^\W\d_'\u2019-]*(?:['\u2019-][^\W\d_]+)*")
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra|Sig|Signora)\.?\s+"
                    r"([A-Z][^\W\d_]+(?:[-'][A-Z][^\W\d_]+)?)(?:\s+([A-Z][^\W\d_]+))?")


def _find_names(text: str) -> list[tuple[int, int]]:
    """Spans of person names in free text (gazetteer pairs, ``Last, First``, titles)."""
    first, last = _gazetteer()
    spans: list[tuple[int, int]] = [(m.start(), m.end()) for m in _TITLE.finditer(text)
                                    if m.group(1).lower() not in _NOT_NAMES]
    words = list(_WORD.finditer(text))
    for a, b in itertools.pairwise(words):
        gap = text[a.end():b.start()]
        wa, wb = a.group(0), b.group(0)
        la, lb = wa.lower(), wb.lower()
        cased = wa[:1].isupper() and wb[:1].isupper() and not wa.isupper()
        lower = wa.islower() and wb.islower()
        if not (cased or lower):
            continue
        if gap.strip() == "" and la in first and (lb in last or (cased and lb not in _NOT_NAMES and lb in first)):
            spans.append((a.start(), b.end()))
        elif gap.strip() == "" and cased and la in first and lb not in _NOT_NAMES and len(wb) > 2 \
                and lb not in first and wb[1:].islower() and la not in last:
            spans.append((a.start(), b.end()))  # a distinctive first name before a capitalised surname
        elif gap.strip() == "," and la in last and lb in first and (cased or lower):
            spans.append((a.start(), b.end()))  # "Müller, Hans"
    return spans


# --------------------------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------------------------
_DATE_RE = (r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
            r"|\d{1,2}\s+[A-Z][a-z]{2,8}\.?,?\s+\d{4}|[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4}")
_DATE_FIND = re.compile(_DATE_RE)
_HAS_DIGIT = re.compile(r"\d")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
_DATE_SHAPE = re.compile(r"\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\s*")
_STREET_LONG = (r"street|avenue|road|boulevard|lane|drive|court|terrace|crescent|parkway|highway|gardens|square"
                r"|close|place|way")
_STREET_ABBR = r"St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Sq|Pkwy|Hwy"
#: Function words and counted nouns: "3 items in the way" is not an address.
_ADDRESS_WORDS_STOP = frozenset(
    "the a an in of to for and or on at by with from into out off over under this that these those my your our "
    "their his her its is are was were be been more less than per each every all any some no not items item times "
    "units pages steps people persons minutes hours days weeks months years ways cars miles km".split())

#: A whole cell that is a decimal or scientific-notation number (not an integer): never PII.
_FLOAT_CELL = re.compile(r"\s*[+-]?(?:\d+[.,]\d*|[.,]\d+|\d+(?:[.,]\d*)?[eE][+-]?\d+)\s*")

_AT = r"(?:\s*@\s*|\s*[\[\(\{<]\s*(?:at|@)\s*[\]\)\}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*\.\s*|\s*[\[\(\{<]\s*(?:dot|\.)\s*[\]\)\}>]\s*|\s+dot\s+)"
_EMAIL_RE = re.compile(rf"(?<![\w.+-])([A-Za-z0-9._%+-]{{1,64}}){_AT}([A-Za-z0-9-]+(?:{_DOT}[A-Za-z0-9-]+)+)", re.I)
_DOT_SEP = re.compile(_DOT, re.I)
_AT_WORD = re.compile(r"\bat\b", re.I)
_CARD_RE = re.compile(r"(?<![\d.-])(?<!\d,)\d(?:[ -]?\d){12,18}(?![\d-])(?![.,]\d|[eE][+-]?\d)")
_CARD_NOT = re.compile(r"\b(?:sku|ean|isbn|upc|gtin|asin|item|product|article|art\.?-?nr|part|serial|s/n|model|"
                       r"tracking|invoice|barcode|lot|batch)\b", re.I)
_CARD_YES = re.compile(r"\b(?:card|visa|master ?card|amex|american express|discover|jcb|diners|cc|credit|debit|"
                       r"paid|pay(?:ment)?|charged?)\b", re.I)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,4})?\b", re.I)
_SSN_RE = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
_SSN_BARE = re.compile(r"\b(?:ssn|social[ -]security(?:[ -]n(?:o|umber))?|soc\.? ?sec\.?)"
                       r"\s*(?:no\.?|number|#)?\s*[:#=]?\s*(\d{9})(?!\d)", re.I)
_PHONE_RE = re.compile(r"(?<![\w+.-])(?:\+|00)?\(?\d[\d ().\-/]{5,20}\d(?![\w-])")
_IPV4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP_RE = re.compile(rf"(?<![\w.])(?:{_IPV4}\.){{3}}{_IPV4}(?![\w.])"
                    r"|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_IP_YES = re.compile(r"\b(?:ip|ipv[46]|host|hostname|client|server|from|addr(?:ess)?|login|log(?:ged)? ?in|"
                     r"connect(?:ed|ion)?|src|dst|source|destination|gateway|dns|proxy|peer|remote)\b", re.I)
_IP_NOT = re.compile(r"(?:\bv|\bver\.?|version|release|build|rev(?:ision)?)\s*[:=]?\s*$", re.I)
_DOB_CONTEXT = re.compile(r"\b(?:born|d\.?o\.?b\.?|date of birth|birth ?date|birthday|geboren|né[e]?)\b", re.I)
_ADDRESS_RES = (
    # US/UK: 12 Baker Street, 221B baker st.
    re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+((?:[A-Za-z][A-Za-z'-]+\s+){{1,3}})(?:(?:{_STREET_LONG})\b|(?:{_STREET_ABBR})\b\.?)",
               re.I),
    # German: Hauptstraße 5, berliner str. 7a, Am Lindenweg 12
    re.compile(r"\b(?:[^\W\d_]+\s)?[^\W\d_]*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee)"
               r"\s*\d{1,4}\s?[a-z]?\b", re.I),
    # French: 12 rue de la Paix, 5 bis avenue Victor Hugo
    re.compile(r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|chemin|place|allée|allee|impasse|"
               r"quai|cours)\s+(?:(?:de|du|des|la|le|l')\s*)*[^\W\d_][\w'-]*", re.I),
    # Spanish / Italian: Calle Mayor 5, Via Roma 10
    re.compile(r"\b(?:calle|c/|avenida|avda\.?|plaza|paseo|via|viale|piazza|corso)\s+(?:(?:de|del|la|los|las|di|della)\s+)*"
               r"[^\W\d_]+(?:\s+[^\W\d_]+)?,?\s+\d{1,4}\b", re.I),
)


def _address_ok(m: re.Match[str]) -> bool:
    if m.re is _ADDRESS_RES[0]:
        words = m.group(1).lower().split()
        return not any(w in _ADDRESS_WORDS_STOP for w in words)
    return True


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _cands(text: str, hint: str | None) -> list[tuple[str, int, int, float]]:
    """(type, start, end, confidence) of validated candidates in normalised ``text``, highest priority
    first. ``hint`` is the column's name hint (a type or None)."""
    out: list[tuple[str, int, int, float]] = []
    if "@" in text or _AT_WORD.search(text):
        for m in _EMAIL_RE.finditer(text):
            domain = _DOT_SEP.sub(".", m.group(2))
            obf = text[m.end(1):m.start(2)] != "@" or domain != m.group(2)  # spelled-out or spaced
            addr = f"{m.group(1)}@{domain}"
            if _email_valid(addr, obfuscated=obf):
                out.append(("email", m.start(), m.end(), 0.98 if not obf else 0.9))
    if _HAS_DIGIT.search(text):
        for m in _CARD_RE.finditer(text):
            v = m.group(0)
            d = _digits(v)
            if not card_valid(d):
                continue
            before = text[max(0, m.start() - 30):m.start()]
            yes = hint == "credit_card" or bool(_CARD_YES.search(before))
            if not yes and (_CARD_NOT.search(before) or (len(d) == 13 and ean13_valid(d))):
                continue
            out.append(("credit_card", m.start(), m.end(), 0.95))
        for m in _IBAN_RE.finditer(text):
            if iban_valid(m.group(0)):
                out.append(("iban", m.start(), m.end(), 0.98))
        for m in _SSN_RE.finditer(text):
            if ssn_valid(m.group(0)):
                out.append(("us_ssn", m.start(), m.end(), 0.9 if m.group(1) == "-" else 0.8))
        for m in _SSN_BARE.finditer(text):
            if ssn_valid(m.group(1)):
                out.append(("us_ssn", m.start(1), m.end(1), 0.85))
        for m in _PHONE_RE.finditer(text) if hint in (None, "phone") else ():
            v = m.group(0).rstrip(" ().-/")
            if phone_valid(v):
                out.append(("phone", m.start(), m.start() + len(v), 0.85))
        for m in _IP_RE.finditer(text):
            v = m.group(0)
            if not _ip_valid(v) or _IP_NOT.search(text[max(0, m.start() - 12):m.start()]):
                continue
            ctx = hint == "ip_address" or bool(_IP_YES.search(text[max(0, m.start() - 30):m.start()]))
            whole = m.start() == len(text) - len(text.lstrip()) and m.end() == len(text.rstrip())
            if ctx:
                out.append(("ip_address", m.start(), m.end(), 0.8))
            elif whole:
                out.append(("ip_address?", m.start(), m.end(), 0.6))  # decided per column
        for m in _DATE_FIND.finditer(text):
            if _parse_date(m.group(0)) is None:
                continue
            if hint != "date_of_birth" and not _DOB_CONTEXT.search(text[max(0, m.start() - 40):m.start()]):
                continue
            out.append(("date_of_birth", m.start(), m.end(), 0.9))
        for rx in _ADDRESS_RES:  # every address form holds a house number
            for m in rx.finditer(text):
                if _address_ok(m):
                    out.append(("postal_address", m.start(), m.end(), 0.85))
    if hint != "person_name" and _HAS_ALPHA.search(text):
        out.extend(("person_name", a, b, 0.75) for a, b in _find_names(text))
    return out


def _resolve(cands: list[tuple[str, int, int, float]]) -> list[tuple[str, int, int, float]]:
    """Keep the highest-priority detector for overlapping spans (a card number is not also a phone)."""
    kept: list[tuple[str, int, int, float]] = []
    for c in cands:
        if not any(k[1] < c[2] and c[1] < k[2] for k in kept):
            kept.append(c)
    return kept


PII_TYPES = ("email", "credit_card", "iban", "us_ssn", "phone", "ip_address", "date_of_birth", "postal_address",
             "postcode", "person_name")

#: Column-name hints: a column named like this holds that type (or is a quasi-identifier).
_NAME_HINTS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e[-_ ]?mail", re.I),
    "phone": re.compile(r"phone|mobile|tel(?:ephone)?\b|\bfax\b", re.I),
    "credit_card": re.compile(r"card|\bcc[-_ ]?(?:num|no)|\bpan\b", re.I),
    "iban": re.compile(r"iban|account", re.I),
    "us_ssn": re.compile(r"\bssn\b|social[-_ ]?sec", re.I),
    "ip_address": re.compile(r"\bip\b|ip[-_ ]?addr", re.I),
    "date_of_birth": re.compile(r"birth|\bdob\b|bday", re.I),
    "postal_address": re.compile(r"address|street|\baddr\b", re.I),
    "postcode": re.compile(r"\bzip|post[-_ ]?code|postal", re.I),
    "person_name": re.compile(r"(?:^|[-_ ])(?:first|last|full|given|family|sur)?[-_ ]?name$|^surname$", re.I),
}
#: Column names that say the values are codes, not personal data (look-alikes).
_CODE_COLUMN = re.compile(r"sku|ean|isbn|upc|gtin|asin|barcode|product|article|part[-_ ]?(?:no|num)|serial|"
                          r"version|release|build|\bver\b|\brev\b", re.I)
_POSTCODE_RE = re.compile(r"^\s*(?:\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4,5})\s*$", re.I)
_NAME_RE = re.compile(r"^\s*[A-Z][a-z'\u2019-]+(?:\s+[A-Z][a-z'\u2019-]+){0,3}\s*$")
_QI_HINT = re.compile(r"\bage\b|^age|zip|post[-_ ]?code|postal|birth|\bdob\b|gender|\bsex\b|race|ethnic|nation"
                      r"|marital|occupation|job|city|county|state|country|education|religion", re.I)


@dataclass(frozen=True)
class Match:
    """One validated match: its type, the row and column, and the span inside the cell."""

    type: str
    row: int
    column: str
    start: int
    end: int


def _hint(column: str) -> str | None:
    return next((t for t, rx in _NAME_HINTS.items() if rx.search(column)), None) if column else None


def _matches(text: str, hint: str | None, code_column: bool = False) -> list[tuple[str, int, int, float]]:
    """Validated, non-overlapping (type, start, end, confidence) in ``text``'s own offsets; whole-cell
    IPs without context keep the provisional type ``ip_address?`` (decided by the column)."""
    norm, offsets = normalize(text)
    cands = _cands(norm, hint)
    if code_column:
        cands = [c for c in cands if c[0] not in ("credit_card", "phone", "ip_address", "ip_address?")]
    out = []
    for t, a, b, conf in _resolve(cands):
        a, b = _orig_span(offsets, a, b, len(text))
        out.append((t, a, b, conf))
    return out


def find_pii(text: str, *, column: str = "") -> list[Match]:
    """Validated PII matches in one string (free text, tests, anonymisation). ``column`` enables
    column hints (a birth-date column needs no keyword). A bare IPv4 address needs an IP word nearby
    or an IP-named column here: the column-level evidence of :func:`scan_frame` is not available."""
    hint = _hint(column)
    code = bool(column and _CODE_COLUMN.search(column))
    return [Match(t, 0, column, a, b) for t, a, b, _ in _matches(text, hint, code) if t != "ip_address?"]


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class ColumnPii:
    """PII found in one column. ``counts``: type -> number of cells holding it."""

    column: str
    rows: int
    cells: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    matches: int = 0
    confidence: float = 0.0
    name_hint: str | None = None

    @property
    def types(self) -> list[str]:
        return list(self.counts)


@dataclass(frozen=True, kw_only=True)
class QuasiIdentifier:
    """A column combination that singles people out: ``k`` is its k-anonymity (smallest group)."""

    columns: tuple[str, ...]
    unique_rows: int
    k: int


@dataclass(kw_only=True)
class PiiReport:
    rows: int
    columns: list[ColumnPii]
    quasi_identifiers: list[QuasiIdentifier] = field(default_factory=list)
    cell_mask: dict[str, np.ndarray] = field(default_factory=dict)  # column -> bool per row

    @property
    def pii_columns(self) -> list[ColumnPii]:
        return [c for c in self.columns if c.cells > 0]

    @property
    def total_cells(self) -> int:
        return sum(c.cells for c in self.columns)

    def table(self) -> list[dict[str, Any]]:
        return [{"column": c.column, "types": ", ".join(f"{t}:{n}" for t, n in c.counts.items()),
                 "cells": c.cells, "rows": c.rows, "confidence": round(c.confidence, 3)}
                for c in self.pii_columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "total_cells": self.total_cells,
            "columns": {c.column: {"types": dict(c.counts), "cells": c.cells, "matches": c.matches,
                                   "confidence": round(c.confidence, 4), "name_hint": c.name_hint}
                        for c in self.columns},
            "pii_columns": [c.column for c in self.pii_columns],
            "quasi_identifiers": [{"columns": list(q.columns), "unique_rows": q.unique_rows, "k": q.k}
                                  for q in self.quasi_identifiers],
        }


def _scan_column(name: str, values: Any) -> tuple[ColumnPii, np.ndarray]:
    raw = pd.Series(values, dtype="object")
    s = raw.astype(str).where(~raw.isna(), "")
    # a cell that is one decimal number (1.5549350656335201, -3e-05) holds no card, phone or ID
    s = s.where(~s.str.fullmatch(_FLOAT_CELL), "")
    n = len(s)
    hint = _hint(name)
    code_column = bool(_CODE_COLUMN.search(name)) and hint is None
    col = ColumnPii(column=name, rows=n, name_hint=hint)
    any_mask = np.zeros(n, dtype=bool)
    nonempty = int((s.str.len() > 0).sum())
    if n == 0 or nonempty == 0:
        return col, any_mask
    # each distinct cell is matched once (columns repeat values); validation runs on candidates only
    codes, uniques = pd.factorize(s, sort=False)
    per_unique = [_matches(u, hint, code_column) if u else [] for u in uniques]
    # column-level evidence for look-alikes
    types_u = [{t for t, *_ in ms} for ms in per_unique]
    counts_u = np.bincount(codes, minlength=len(uniques))
    ip_whole = sum(int(c) for c, ts in zip(counts_u, types_u, strict=True) if ts & {"ip_address", "ip_address?"})
    accept_bare_ip = False
    if ip_whole >= 0.5 * nonempty:
        firsts = [int(u.strip().split(".")[0]) for u, ts in zip(uniques, types_u, strict=True)
                  if "ip_address?" in ts and re.fullmatch(r"\s*\d+(?:\.\d+){3}\s*", u)]
        accept_bare_ip = not firsts or float(np.mean(np.asarray(firsts) < 10)) < 0.5  # versions start small
    drop_cards = False
    if hint != "credit_card":
        shaped = int(s.str.contains(_CARD_RE).sum())
        carded = sum(int(c) for c, ts in zip(counts_u, types_u, strict=True) if "credit_card" in ts)
        drop_cards = shaped >= 5 and carded < 0.5 * shaped  # a code column: few of its numbers are cards
    best_prec = 0.0
    hits: dict[str, np.ndarray] = {}
    matches = 0
    for t_name in PII_TYPES:
        ids = [i for i, ts in enumerate(types_u)
               if t_name in ts or (t_name == "ip_address" and accept_bare_ip and "ip_address?" in ts)]
        if not ids or (t_name == "credit_card" and drop_cards):
            continue
        rows_hit = np.isin(codes, ids)
        hits[t_name] = rows_hit
        per = {i: sum(1 for t, *_ in per_unique[i] if t == t_name or (t_name == "ip_address" and t == "ip_address?"))
               for i in ids}
        matches += int(sum(per[i] * counts_u[i] for i in ids))
        conf = max(c for i in ids for t, _, _, c in per_unique[i] if t in (t_name, t_name + "?"))
        best_prec = max(best_prec, conf * (1.05 if hint == t_name else 1.0))
    for t_name, rows_hit in hits.items():
        col.counts[t_name] = int(rows_hit.sum())
        any_mask |= rows_hit
    col.matches = matches
    # column-hint-only types: postcodes and names (no content validator can tell them apart)
    for tname, rx in (("postcode", _POSTCODE_RE), ("person_name", _NAME_RE)):
        if hint == tname:
            hit = s.str.match(rx).to_numpy(dtype=bool) & ~any_mask
            if hit.any():
                col.counts[tname] = col.counts.get(tname, 0) + int(hit.sum())
                col.matches += int(hit.sum())
                any_mask |= hit
                best_prec = max(best_prec, 0.7)
    col.cells = int(any_mask.sum())
    if col.cells:
        frac = col.cells / nonempty
        # mostly-PII columns are near-certain; a few hits in free text keep the detector's prior
        col.confidence = float(min(1.0, best_prec * (0.6 + 0.4 * min(1.0, frac * 2))
                                   + (0.1 if hint in col.counts else 0.0)))
    return col, any_mask


def _quasi_identifiers(frame: Any, *, pii_cols: set[str], max_cols: int = 8, max_size: int = 3,
                       min_unique_frac: float = 0.05) -> list[QuasiIdentifier]:
    """Column combinations (up to ``max_size``) whose k-anonymity is low, among columns named like
    quasi-identifiers or of moderate cardinality; direct identifiers are excluded."""
    n = len(frame)
    if n < 2:
        return []
    cands: list[tuple[int, str]] = []
    for c in frame.columns:
        if c in pii_cols:
            continue
        nun = frame[c].nunique(dropna=False)
        if nun <= 1 or nun >= 0.9 * n:  # constants and row IDs are not quasi-identifiers
            continue
        prio = 0 if _QI_HINT.search(str(c)) else 1
        cands.append((prio, str(c)))
    cands.sort()
    names = [c for _, c in cands[:max_cols]]
    found: list[QuasiIdentifier] = []
    seen_unique: list[frozenset[str]] = []
    for size in range(1, max_size + 1):
        for combo in itertools.combinations(names, size):
            if any(s <= frozenset(combo) for s in seen_unique):
                continue  # a subset already singles people out
            sizes = frame.groupby(list(combo), dropna=False, sort=False).size().to_numpy()
            unique = int(sizes[sizes == 1].sum())
            if unique >= max(1, min_unique_frac * n):
                found.append(QuasiIdentifier(columns=combo, unique_rows=unique, k=int(sizes.min())))
                seen_unique.append(frozenset(combo))
    found.sort(key=lambda q: (-q.unique_rows, len(q.columns)))
    return found[:10]


def scan_frame(frame: Any, *, quasi: bool = True, max_rows: int | None = None, seed: int = 0) -> PiiReport:
    """Scan every column of a pandas DataFrame (numbers are scanned as their text)."""
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    frame = frame.reset_index(drop=True)
    cols: list[ColumnPii] = []
    masks: dict[str, np.ndarray] = {}
    for c in frame.columns:
        col, mask = _scan_column(str(c), frame[c].to_numpy(dtype=object))
        cols.append(col)
        masks[str(c)] = mask
    qis = _quasi_identifiers(frame.set_axis([str(c) for c in frame.columns], axis=1),
                             pii_cols={c.column for c in cols if c.cells}) if quasi else []
    return PiiReport(rows=len(frame), columns=cols, quasi_identifiers=qis, cell_mask=masks)


def read_table(path: str | Path) -> Any:
    """Read a CSV or Parquet file with every column as text (leading zeros and IDs intact)."""

    return _read(path, as_text=True)


def scan_file(path: str | Path, *, quasi: bool = True, max_rows: int | None = None) -> PiiReport:
    """Scan a CSV or Parquet file."""
    return scan_frame(read_table(path), quasi=quasi, max_rows=max_rows)


def scan_dataset(ds: Any, *, columns: Sequence[str] | None = None, max_rows: int | None = 20000) -> PiiReport:
    """Scan a :class:`~modelshield.data.dataset.Dataset` (its feature columns)."""
    X = np.asarray(ds.X)
    if X.ndim != 2:
        raise DataError("a PII scan needs a table (2-D features)")
    names = list(ds.feature_names or [f"x{j}" for j in range(X.shape[1])])
    frame = pd.DataFrame(X, columns=names)
    if columns is not None:
        frame = frame[list(columns)]
    return scan_frame(frame, max_rows=max_rows)
