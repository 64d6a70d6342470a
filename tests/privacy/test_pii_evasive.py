"""PII detection against evasive but common formats and look-alikes (issue 22 D).

Every kind has >= 20 generated variants (formats, separators, case, full-width digits, homoglyphs,
national phone formats, free-text names); columns have neutral names (no name hints), 12 cells per
variant. Targets: recall >= 0.9 per kind, precision >= 0.9 on look-alike columns. The validators we
keep our own (Luhn, SSN) are proven equal to python-stdnum's; IBAN and phone use the libraries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import phonenumbers
import pytest
import stdnum.iban
import stdnum.luhn
import stdnum.us.ssn

from modelshield.privacy.pii import (
    card_valid,
    find_pii,
    iban_valid,
    luhn_valid,
    normalize,
    phone_valid,
    scan_frame,
    ssn_valid,
)

CELLS = 12
FW = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))  # full-width digits
CYR = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440"})  # Cyrillic look-alikes


def _luhn_complete(prefix: str, length: int, rng: np.random.Generator) -> str:
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, length - len(prefix) - 1))
    return next(body + c for c in "0123456789" if luhn_valid(body + c))


def _iban(country: str, bban: str) -> str:
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def _digits(rng, k: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, k))


def _g4(s: str, sep: str = " ") -> str:
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


FIRST = ["John", "Maria", "Ahmed", "Sofia", "Lukas", "Emma", "Pierre", "Giulia", "Hans", "Anna", "Carlos", "Elena",
         "David", "Laura", "Thomas", "Sarah", "Michael", "Julia", "Pedro", "Claire"]
LAST = ["Smith", "Garcia", "Müller", "Rossi", "Dubois", "Johnson", "Schmidt", "Martin", "Fernandez", "Williams",
        "Fischer", "Bernard", "Lopez", "Brown", "Weber", "Moreau", "Ricci", "Jones", "Wagner", "Martinez"]


# -- generators: kind -> list of (variant name, function(rng, i) -> cell text) ------------------
def _email_variants():
    def mk(fmt):
        def f(rng, i):
            user = f"{FIRST[i % 20].lower()}.{LAST[(i * 7) % 20].lower().replace('ü', 'u')}{i}"
            dom = ["example", "mailhost", "acme-corp", "uni-bonn"][i % 4]
            tld = ["com", "org", "de", "co.uk"][i % 4]
            return fmt(user, dom, tld)
        return f
    fmts = {
        "plain": lambda u, d, t: f"{u}@{d}.{t}",
        "upper": lambda u, d, t: f"{u.upper()}@{d.upper()}.{t.upper()}",
        "sentence": lambda u, d, t: f"please write to {u}@{d}.{t} asap",
        "spaced_at": lambda u, d, t: f"{u} @ {d}.{t}",
        "at_dot_words": lambda u, d, t: f"{u} at {d} dot {t.replace('.', ' dot ')}",
        "AT_DOT_upper": lambda u, d, t: f"{u} AT {d} DOT {t.replace('.', ' DOT ')}",
        "brackets": lambda u, d, t: f"{u} [at] {d} [dot] {t.replace('.', ' [dot] ')}",
        "parens": lambda u, d, t: f"{u}(at){d}(dot){t.replace('.', '(dot)')}",
        "braces": lambda u, d, t: f"{u} {{at}} {d} {{dot}} {t.replace('.', ' {dot} ')}",
        "angle": lambda u, d, t: f"{u}<at>{d}<dot>{t.replace('.', '<dot>')}",
        "at_symbol_in_brackets": lambda u, d, t: f"{u}[@]{d}[.]{t.replace('.', '[.]')}",
        "fullwidth_at": lambda u, d, t: f"{u}\uff20{d}.{t}",
        "fullwidth_at_dot": lambda u, d, t: f"{u}\uff20{d}\uff0e{t.replace('.', chr(0xff0e))}",
        "homoglyph_local": lambda u, d, t: f"{u.translate(CYR)}@{d}.{t}",
        "homoglyph_domain": lambda u, d, t: f"{u}@{d.translate(CYR)}.{t}",
        "mailto": lambda u, d, t: f"mailto:{u}@{d}.{t}",
        "angle_addr": lambda u, d, t: f"Name <{u}@{d}.{t}>",
        "plus_tag": lambda u, d, t: f"{u}+news@{d}.{t}",
        "trailing_period": lambda u, d, t: f"Contact: {u}@{d}.{t}.",
        "mixed_obfuscation": lambda u, d, t: f"{u} (at) {d} . {t}",
        "zero_width": lambda u, d, t: f"{u}\u200b@{d}.{t}",
    }
    return [(k, mk(v)) for k, v in fmts.items()]


def _phone_number(region: str, kind: int, rng) -> phonenumbers.PhoneNumber:
    t = phonenumbers.PhoneNumberType.MOBILE if kind else phonenumbers.PhoneNumberType.FIXED_LINE
    ex = phonenumbers.example_number_for_type(region, t)
    nsn = str(ex.national_number)
    nsn = nsn[:-3] + _digits(rng, 3)  # stays in the example's allocated range
    return phonenumbers.parse("+" + str(ex.country_code) + nsn, None)


def _phone_variants():
    out = []
    PNF = phonenumbers.PhoneNumberFormat
    for region in ("GB", "DE", "FR", "JP", "IN", "US", "ES", "IT"):
        for name, fmt in (("national", PNF.NATIONAL), ("international", PNF.INTERNATIONAL)):
            def f(rng, i, region=region, fmt=fmt):
                return phonenumbers.format_number(_phone_number(region, i % 2, rng), fmt)
            out.append((f"{region}_{name}", f))
    out += [
        ("fullwidth_international", lambda rng, i: phonenumbers.format_number(
            _phone_number(["GB", "DE", "FR"][i % 3], i % 2, rng), PNF.INTERNATIONAL).translate(FW)),
        ("fullwidth_national_jp", lambda rng, i: phonenumbers.format_number(
            _phone_number("JP", i % 2, rng), PNF.NATIONAL).translate(FW)),
        ("dots_fr", lambda rng, i: phonenumbers.format_number(
            _phone_number("FR", i % 2, rng), PNF.NATIONAL).replace(" ", ".")),
        ("00_prefix", lambda rng, i: "00" + phonenumbers.format_number(
            _phone_number(["DE", "IT"][i % 2], i % 2, rng), PNF.INTERNATIONAL)[1:]),
        ("sentence_in", lambda rng, i: "call me on " + phonenumbers.format_number(
            _phone_number("IN", 1, rng), PNF.NATIONAL) + " tomorrow"),
        ("e164", lambda rng, i: phonenumbers.format_number(
            _phone_number(["GB", "US", "JP"][i % 3], i % 2, rng), PNF.E164)),
    ]
    return out


def _card_variants():
    issuers = [("visa", "4", 16), ("mc", "51", 16), ("mc2", "2221", 16), ("amex", "37", 15), ("disc", "6011", 16)]
    out = []
    for name, prefix, length in issuers:
        out += [
            (f"{name}_plain", lambda rng, i, p=prefix, n=length: _luhn_complete(p, n, rng)),
            (f"{name}_spaces", lambda rng, i, p=prefix, n=length: _g4(_luhn_complete(p, n, rng))),
            (f"{name}_dashes", lambda rng, i, p=prefix, n=length: _g4(_luhn_complete(p, n, rng), "-")),
            (f"{name}_fullwidth", lambda rng, i, p=prefix, n=length: _g4(_luhn_complete(p, n, rng)).translate(FW)),
        ]
    out.append(("sentence", lambda rng, i: f"paid with {_g4(_luhn_complete('4', 16, rng))} yesterday"))
    return out


def _iban_variants():
    bbans = {"DE": lambda r: _digits(r, 18), "GB": lambda r: "NWBK" + _digits(r, 14), "FR": lambda r: _digits(r, 23),
             "AT": lambda r: _digits(r, 16), "IT": lambda r: "X" + _digits(r, 22), "NL": lambda r: "ABNA" + _digits(r, 10)}
    out = []
    for cc, bb in bbans.items():
        out += [
            (f"{cc}_upper", lambda rng, i, cc=cc, bb=bb: _iban(cc, bb(rng))),
            (f"{cc}_lower_grouped", lambda rng, i, cc=cc, bb=bb: _g4(_iban(cc, bb(rng))).lower()),
            (f"{cc}_lower", lambda rng, i, cc=cc, bb=bb: _iban(cc, bb(rng)).lower()),
            (f"{cc}_fullwidth", lambda rng, i, cc=cc, bb=bb: _g4(_iban(cc, bb(rng))).translate(FW)),
        ]
    return out


def _ssn(rng) -> tuple[str, str, str]:
    area = int(rng.choice([rng.integers(1, 666), rng.integers(667, 900)]))
    return f"{area:03d}", f"{rng.integers(1, 100):02d}", f"{rng.integers(1, 10000):04d}"


def _ssn_variants():
    fm = {
        "dashes": lambda a, g, s: f"{a}-{g}-{s}",
        "spaces": lambda a, g, s: f"{a} {g} {s}",
        "fullwidth_dashes": lambda a, g, s: f"{a}-{g}-{s}".translate(FW),
        "fullwidth_spaces": lambda a, g, s: f"{a} {g} {s}".translate(FW),
        "unicode_dash": lambda a, g, s: f"{a}\u2013{g}\u2013{s}",
        "nbsp": lambda a, g, s: f"{a}\u00a0{g}\u00a0{s}",
        "ssn_prefix_bare": lambda a, g, s: f"SSN {a}{g}{s}",
        "ssn_colon_bare": lambda a, g, s: f"ssn: {a}{g}{s}",
        "social_security_number": lambda a, g, s: f"Social Security Number {a}{g}{s}",
        "sentence_dashes": lambda a, g, s: f"applicant {a}-{g}-{s} verified",
        "sentence_spaces": lambda a, g, s: f"id {a} {g} {s} on file",
        "soc_sec_no": lambda a, g, s: f"soc. sec. no. {a}-{g}-{s}",
        "parenthesised": lambda a, g, s: f"({a}-{g}-{s})",
        "quoted": lambda a, g, s: f'"{a} {g} {s}"',
        "ssn_hash": lambda a, g, s: f"SSN# {a}{g}{s}",
        "trailing_text": lambda a, g, s: f"{a}-{g}-{s} (primary)",
        "leading_label": lambda a, g, s: f"SSN={a}-{g}-{s}",
        "fullwidth_bare": lambda a, g, s: f"SSN {a}{g}{s}".translate(FW),
        "tab_separated": lambda a, g, s: f"ssn\t{a}-{g}-{s}",
        "semicolon": lambda a, g, s: f"{a} {g} {s};",
    }
    return [(k, lambda rng, i, f=f: f(*_ssn(rng))) for k, f in fm.items()]


def _address_variants():
    us = ["Baker Street", "Elm Avenue", "Mill Road", "Oak Lane", "Sunset Boulevard", "Maple Drive", "Church Court"]
    de = ["Hauptstraße", "Bahnhofstrasse", "Lindenweg", "Goetheallee", "Marktplatz", "Schillerstr."]
    out = [
        ("us_title", lambda rng, i: f"{rng.integers(1, 9999)} {us[i % len(us)]}"),
        ("us_lower", lambda rng, i: f"{rng.integers(1, 9999)} {us[i % len(us)].lower()}"),
        ("us_upper", lambda rng, i: f"{rng.integers(1, 9999)} {us[i % len(us)].upper()}"),
        ("us_abbr", lambda rng, i: f"{rng.integers(1, 999)} {['Elm', 'Oak', 'Pine'][i % 3]} {['St', 'Ave', 'Rd'][i % 3]}."),
        ("us_abbr_lower", lambda rng, i: f"{rng.integers(1, 999)} {['elm', 'oak', 'pine'][i % 3]} {['st', 'ave', 'rd'][i % 3]}"),
        ("uk_house_letter", lambda rng, i: f"{rng.integers(1, 300)}B {us[i % len(us)]}, London"),
        ("us_sentence", lambda rng, i: f"ship to {rng.integers(1, 9999)} {us[i % len(us)]}, Springfield"),
        ("de_title", lambda rng, i: f"{de[i % len(de)]} {rng.integers(1, 200)}"),
        ("de_lower", lambda rng, i: f"{de[i % len(de)].lower()} {rng.integers(1, 200)}"),
        ("de_letter", lambda rng, i: f"{de[i % len(de)]} {rng.integers(1, 200)}a"),
        ("de_two_words", lambda rng, i: f"Berliner {['Straße', 'Str.', 'Allee'][i % 3]} {rng.integers(1, 200)}"),
        ("de_two_words_lower", lambda rng, i: f"berliner {['straße', 'str.', 'allee'][i % 3]} {rng.integers(1, 200)}"),
        ("de_with_city", lambda rng, i: f"{de[i % len(de)]} {rng.integers(1, 200)}, 10115 Berlin"),
        ("fr", lambda rng, i: f"{rng.integers(1, 200)} rue de la {['Paix', 'Gare', 'République'][i % 3]}"),
        ("fr_lower", lambda rng, i: f"{rng.integers(1, 200)} avenue victor hugo"),
        ("fr_bis", lambda rng, i: f"{rng.integers(1, 200)} bis boulevard Voltaire"),
        ("es", lambda rng, i: f"Calle {['Mayor', 'Alcalá', 'Serrano'][i % 3]} {rng.integers(1, 200)}"),
        ("es_lower", lambda rng, i: f"calle de {['alcalá', 'toledo', 'goya'][i % 3]} {rng.integers(1, 200)}"),
        ("it", lambda rng, i: f"Via {['Roma', 'Garibaldi', 'Dante'][i % 3]} {rng.integers(1, 200)}"),
        ("us_comma", lambda rng, i: f"{rng.integers(1, 9999)}, {us[i % len(us)]}"),
    ]
    return out


def _name_variants():
    def pick(i):
        return FIRST[i % 20], LAST[(i * 3 + 1) % 20]
    fm = {
        "patient_title": lambda f, la: f"Patient {f} {la} was admitted on Monday",
        "lower_pair": lambda f, la: f"spoke with {f.lower()} {la.lower()} yesterday",
        "dr_title": lambda f, la: f"Dr. {la} reviewed the scan",
        "mrs_title": lambda f, la: f"letter from Mrs {la} arrived",
        "last_comma_first": lambda f, la: f"Signed: {la}, {f}",
        "contact_paren": lambda f, la: f"Contact: {f} {la} (manager)",
        "start_of_cell": lambda f, la: f"{f} {la} called about the invoice",
        "end_of_cell": lambda f, la: f"the invoice was approved by {f} {la}",
        "herr": lambda f, la: f"Herr {la} hat angerufen",
        "frau": lambda f, la: f"Termin mit Frau {la}",
        "mme": lambda f, la: f"rendez-vous avec Mme {la}",
        "cc_line": lambda f, la: f"cc {f} {la}; finance",
        "quoted": lambda f, la: f'"{f} {la}" requested a refund',
        "two_people": lambda f, la: f"{f} {la} and team",
        "comment": lambda f, la: f"note: {f} {la} prefers email",
        "ms_full": lambda f, la: f"Ms {f} {la}",
        "prof": lambda f, la: f"Prof. {la} approved",
        "dear": lambda f, la: f"Dear {f} {la},",
        "caller": lambda f, la: f"caller {f.lower()} {la.lower()} said",
        "from": lambda f, la: f"from {f} {la} to support",
    }
    return [(k, lambda rng, i, fn=fn: fn(*pick(i))) for k, fn in fm.items()]


def _dob_variants():
    fm = {
        "born_iso": lambda y, m, d: f"born {y}-{m:02d}-{d:02d}",
        "dob_slash": lambda y, m, d: f"DOB: {d:02d}/{m:02d}/{y}",
        "dob_dot": lambda y, m, d: f"d.o.b. {d:02d}.{m:02d}.{y}",
        "date_of_birth_words": lambda y, m, d: f"date of birth {d} March {y}",
        "birthday_us": lambda y, m, d: f"birthday: March {d}, {y}",
        "geboren": lambda y, m, d: f"geboren {d:02d}.{m:02d}.{y}",
        "born_fullwidth": lambda y, m, d: f"born {y}-{m:02d}-{d:02d}".translate(FW),
        "dob_upper": lambda y, m, d: f"DOB {y}/{m:02d}/{d:02d}",
        "birth_date": lambda y, m, d: f"birth date {m:02d}/{d:02d}/{y}",
        "born_on": lambda y, m, d: f"she was born on {d} Jan {y}",
        "nee": lambda y, m, d: f"née {d:02d}/{m:02d}/{y}",
        "dob_paren": lambda y, m, d: f"(DOB {y}-{m:02d}-{d:02d})",
        "born_short_month": lambda y, m, d: f"born {d} Sep. {y}",
        "dob_hash": lambda y, m, d: f"dob={y}-{m:02d}-{d:02d}",
        "birthday_iso": lambda y, m, d: f"birthday {y}-{m:02d}-{d:02d}",
        "born_mdy": lambda y, m, d: f"born {m:02d}-{d:02d}-{y}",
        "dob_colon_space": lambda y, m, d: f"DOB : {d}/{m}/{y}",
        "birthdate": lambda y, m, d: f"birthdate {y}.{m:02d}.{d:02d}",
        "born_comma": lambda y, m, d: f"born, {y}-{m:02d}-{d:02d}",
        "dob_fullwidth_slash": lambda y, m, d: f"DOB {d:02d}/{m:02d}/{y}".translate(FW),
    }

    def date(rng):
        return int(rng.integers(1930, 2010)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    return [(k, lambda rng, i, fn=fn: fn(*date(rng))) for k, fn in fm.items()]


def _ip_variants():
    def ip(rng, first):
        return f"{first}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
    firsts = [10, 192, 172, 203, 81, 134, 62, 213, 88, 151]
    out = [(f"column_{f}", lambda rng, i, f=f: ip(rng, f)) for f in firsts]
    out += [
        ("from", lambda rng, i: f"login from {ip(rng, 85)}"),
        ("client", lambda rng, i: f"client {ip(rng, 9)} blocked"),
        ("host", lambda rng, i: f"host={ip(rng, 1)}"),
        ("src", lambda rng, i: f"src {ip(rng, 100)} dst {ip(rng, 10)}"),
        ("ipv6_column", lambda rng, i: f"2001:db8:{rng.integers(0, 65535):x}::{rng.integers(1, 65535):x}"),
        ("ipv6_text", lambda rng, i: f"peer fe80::{rng.integers(1, 65535):x}:{rng.integers(1, 65535):x}"),
        ("ip_colon", lambda rng, i: f"IP: {ip(rng, 5)}"),
        ("connected", lambda rng, i: f"connected to {ip(rng, 44)}"),
        ("fullwidth_ip_text", lambda rng, i: f"from {ip(rng, 77)}".translate(FW)),
        ("column_mixed", lambda rng, i: ip(rng, int(rng.integers(11, 224)))),
    ]
    return out


KINDS = {
    "email": _email_variants, "phone": _phone_variants, "credit_card": _card_variants, "iban": _iban_variants,
    "us_ssn": _ssn_variants, "postal_address": _address_variants, "person_name": _name_variants,
    "date_of_birth": _dob_variants, "ip_address": _ip_variants,
}


def _lookalike_variants():
    def sku(rng, i):
        return f"SKU-{_luhn_complete('4', 16, rng)}"

    def ean(rng, i):
        body = "4" + _digits(rng, 11)
        total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
        return body + str((10 - total % 10) % 10)

    def isbn(rng, i):
        body = "978" + _digits(rng, 9)
        total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
        return body + str((10 - total % 10) % 10)

    return [
        ("sku_luhn", sku),
        ("sku_space", lambda rng, i: f"SKU {_luhn_complete('5', 16, rng)}"),
        ("item_no", lambda rng, i: f"item no. {_luhn_complete('4', 16, rng)}"),
        ("ean13", ean),
        ("isbn13", isbn),
        ("isbn_labelled", lambda rng, i: f"ISBN {isbn(rng, i)}"),
        ("version4", lambda rng, i: f"{rng.integers(0, 5)}.{rng.integers(0, 30)}.{rng.integers(0, 20)}.{rng.integers(0, 400)}"),
        ("version_v", lambda rng, i: f"v{rng.integers(1, 300)}.{rng.integers(0, 30)}.{rng.integers(0, 20)}.{rng.integers(0, 400)}"),
        ("version_word", lambda rng, i: f"version {rng.integers(1, 250)}.{rng.integers(0, 30)}.{rng.integers(0, 9)}.{rng.integers(0, 99)}"),
        ("meeting_date", lambda rng, i: f"meeting on 20{rng.integers(10, 25)}-0{rng.integers(1, 9)}-1{rng.integers(0, 9)}"),
        ("iso_date_cell", lambda rng, i: f"20{rng.integers(10, 25)}-0{rng.integers(1, 9)}-1{rng.integers(0, 9)}"),
        ("decimal", lambda rng, i: f"{rng.integers(1, 99999)}.{rng.integers(10, 99)}"),
        ("price_text", lambda rng, i: f"total {rng.integers(1, 99999)}.{rng.integers(10, 99)} EUR for {rng.integers(1, 50)} items"),
        ("order_id", lambda rng, i: f"ORD-20{rng.integers(10, 25)}-{_digits(rng, 6)}"),
        ("tracking", lambda rng, i: f"1Z{_digits(rng, 3)}AA1{_digits(rng, 8)}"),
        ("time", lambda rng, i: f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"),
        ("mac", lambda rng, i: ":".join(f"{rng.integers(0, 256):02X}" for _ in range(6))),
        ("words_way", lambda rng, i: f"{rng.integers(2, 9)} items in the way"),
        ("capital_words", lambda rng, i: ["Will May Mark the date", "Grant Street Parking", "Apple Watch Series",
                                          "Monday Morning Meeting"][i % 4]),
        ("invalid_luhn_card", lambda rng, i: (lambda c: c[:-1] + str((int(c[-1]) + 1) % 10))(
            _luhn_complete("4", 16, rng))),
        ("ticket", lambda rng, i: f"ticket #{_digits(rng, 6)} priority {rng.integers(1, 5)}"),
        ("room", lambda rng, i: f"room {rng.integers(1, 500)} floor {rng.integers(1, 9)}"),
        ("sci", lambda rng, i: f"{rng.integers(1, 9)}.{_digits(rng, 4)}e-0{rng.integers(1, 9)}"),
        ("user_localhost", lambda rng, i: f"user{i}@localhost"),
        ("meet_at_dot", lambda rng, i: f"meet at 5 dot {rng.integers(10, 59)}"),
    ]


def _column(gen, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [gen(rng, i) for i in range(CELLS)]


def _frame(variants, seed: int) -> tuple[pd.DataFrame, list[str]]:
    cols = {f"c{k}": _column(gen, seed * 1000 + k) for k, (_, gen) in enumerate(variants)}
    return pd.DataFrame(cols), [name for name, _ in variants]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("seed", [0, 1])
def test_recall_per_kind_on_evasive_formats(kind, seed):
    variants = KINDS[kind]()
    assert len(variants) >= 20, (kind, len(variants))
    frame, names = _frame(variants, seed)
    rep = scan_frame(frame, quasi=False)
    found = {c.column: c.counts.get(kind, 0) for c in rep.columns}
    total = CELLS * len(variants)
    hit = sum(found.values())
    missed = {names[int(c[1:])]: CELLS - n for c, n in found.items() if n < CELLS}
    assert hit / total >= 0.9, (kind, round(hit / total, 3), missed)


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_on_lookalikes(seed):
    variants = _lookalike_variants()
    assert len(variants) >= 20
    frame, names = _frame(variants, seed)
    rep = scan_frame(frame, quasi=False)
    flagged = {names[int(c.column[1:])]: (c.cells, c.counts) for c in rep.columns if c.cells}
    n_flagged = sum(v[0] for v in flagged.values())
    assert 1 - n_flagged / (CELLS * len(variants)) >= 0.9, flagged
    # the named look-alike classes of the issue are not flagged at all
    for name in ("sku_luhn", "sku_space", "ean13", "isbn13", "version4", "version_v", "version_word"):
        assert name not in flagged, (name, flagged[name])


@pytest.mark.parametrize("kind", ["email", "phone", "credit_card", "iban", "us_ssn", "person_name"])
def test_free_text_matches_point_at_the_original_text(kind):
    """Offsets are in the original (un-normalised) text, so anonymisation can mask the right span."""
    rng = np.random.default_rng(3)
    for i, (_, gen) in enumerate(KINDS[kind]()):
        text = "note: " + gen(rng, i) + " end"
        ms = [m for m in find_pii(text) if m.type == kind]
        if not ms:
            continue
        for m in ms:
            assert 0 <= m.start < m.end <= len(text)
            assert text[m.start:m.end].strip() == text[m.start:m.end]  # no stray padding
            assert "note: " not in text[m.start:m.end] and " end" not in text[m.start:m.end]


def test_normalize_maps_offsets_back():
    text = "mail: j\u043ehn\uff20example.com"  # Cyrillic o, full-width at
    norm, offsets = normalize(text)
    assert norm == "mail: john@example.com"
    assert offsets is not None and len(offsets) == len(norm)
    (m,) = find_pii(text)
    assert (m.type, text[m.start:m.end]) == ("email", "j\u043ehn\uff20example.com")


# -- validators equal the references -------------------------------------------------------------
def test_luhn_equals_stdnum():
    rng = np.random.default_rng(0)
    for n in range(3000):
        s = _digits(rng, int(rng.integers(2, 20)))
        assert luhn_valid(s) == stdnum.luhn.is_valid(s), s


def test_ssn_equals_stdnum_except_the_placeholder():
    rng = np.random.default_rng(1)
    cases = [_digits(rng, 9) for _ in range(3000)] + ["078051120", "219099999", "457555462", "123456789"]
    for d in cases:
        ours = ssn_valid(d)
        ref = stdnum.us.ssn.is_valid(f"{d[:3]}-{d[3:5]}-{d[5:]}")
        assert ours == (ref and d != "123456789"), d


def test_iban_equals_stdnum_any_case():
    rng = np.random.default_rng(2)
    for _ in range(500):
        cc = ["DE", "GB", "FR", "NL", "ES"][int(rng.integers(0, 5))]
        bban = {"DE": _digits(rng, 18), "GB": "NWBK" + _digits(rng, 14), "FR": _digits(rng, 23),
                "NL": "ABNA" + _digits(rng, 10), "ES": _digits(rng, 20)}[cc]
        good = _iban(cc, bban)
        bad = good[:-1] + str((int(good[-1]) + 1) % 10)
        for v in (good, bad, good.lower(), _g4(good)):
            assert iban_valid(v) == stdnum.iban.is_valid(v.upper()), v


def test_phone_uses_libphonenumber_validity():
    rng = np.random.default_rng(4)
    for region in ("GB", "DE", "FR", "JP", "IN", "US"):
        num = _phone_number(region, 1, rng)
        intl = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        assert phone_valid(intl)
        assert phone_valid(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL))
    assert not phone_valid("2024-01-15")
    assert not phone_valid("+44 20")  # too short to be possible


def test_card_valid_rejects_look_alikes():
    assert card_valid("4111 1111 1111 1111")
    assert not card_valid("4111 1111 1111 1112")
    assert not card_valid("4444 4444 4444 4444 4448"[:19])
