"""Behaviour of the API-key store, the failed-auth tracker and the authenticator that the gateway relies on.

Written against the mutants of ``scripts/mutation.sh auth`` that the gateway-level tests let survive: exact
error types and messages, the limits of names, owners and tokens, the key-file reload rules (time injected),
block expiry and the bounds of the tracker's tables, and the JWT options (issuer, leeway, audience, scope claim).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import pytest

import modelshield.serve.auth as auth_mod
from modelshield.errors import DataError, InputNotFoundError, UserError
from modelshield.serve.auth import SCOPES, ApiKey, Authenticator, AuthError, FailureTracker, KeyStore, Principal


def _refusal(fn, *args):
    with pytest.raises(AuthError) as info:
        fn(*args)
    return info.value.status, info.value.reason, info.value.key_id


# -- AuthError, Principal, ApiKey -------------------------------------------------------------------


def test_auth_error_carries_status_reason_and_key_id():
    exc = AuthError(403, "key lacks the 'admin' scope", key_id="0a0b0c0d")
    assert (exc.status, exc.reason, exc.key_id, str(exc)) == (403, "key lacks the 'admin' scope", "0a0b0c0d",
                                                               "key lacks the 'admin' scope")
    assert AuthError(401, "x").key_id is None


def test_admin_implies_every_scope_and_other_scopes_only_themselves():
    mon = Principal(key_id="k", name="n", scopes=frozenset({"monitor"}))
    adm = Principal(key_id="k", name="n", scopes=frozenset({"admin"}))
    assert mon.has("monitor") and not mon.has("predict") and not mon.has("admin")
    assert all(adm.has(s) for s in SCOPES)
    Authenticator.authorize(mon, "monitor")
    Authenticator.authorize(adm, "predict")
    with pytest.raises(AuthError) as info:
        Authenticator.authorize(mon, "predict")
    assert (info.value.status, info.value.reason, info.value.key_id) == (403, "key lacks the 'predict' scope", "k")


def test_public_record_has_every_field_but_the_salt_and_hash(tmp_path):
    now = [1234.5]
    ks = KeyStore(tmp_path, clock=lambda: now[0])
    rec, _ = ks.create("svc", ["predict"], rate_per_s=2.0, daily_rows=9, rows_per_s=3.0, owner="team-a")
    assert rec.public() == {"id": rec.id, "name": "svc", "scopes": ["predict"], "created": 1234.5, "revoked": None,
                            "rate_per_s": 2.0, "daily_rows": 9, "meta": {"owner": "team-a"}, "rows_per_s": 3.0}


# -- creating keys ----------------------------------------------------------------------------------


def test_a_key_is_msk_id_secret_and_only_the_salted_sha256_of_the_secret_is_stored(tmp_path):
    ks = KeyStore(tmp_path)
    rec, token = ks.create("a", ["monitor"])
    prefix, kid, secret = token.split("_", 2)
    assert prefix == "msk" and kid == rec.id and len(kid) == 8 and int(kid, 16) >= 0
    assert len(secret) == 43  # token_urlsafe(32): 32 random bytes
    assert len(rec.salt) == 32 and int(rec.salt, 16) >= 0  # 16 random bytes
    assert rec.hash == hashlib.sha256(bytes.fromhex(rec.salt) + secret.encode("utf-8")).hexdigest()
    stored = json.loads((tmp_path / "keys.json").read_text(encoding="utf-8"))
    assert stored["version"] == 1
    assert stored["keys"] == [{**rec.public(), "salt": rec.salt, "hash": rec.hash}]


def test_a_new_key_id_never_reuses_an_existing_one(tmp_path, monkeypatch):
    ks = KeyStore(tmp_path)
    first, _ = ks.create("a", ["predict"])
    real = auth_mod.secrets.token_hex
    ids = iter([first.id, first.id, "0badc0de"])

    def token_hex(n=None):  # the next two ids drawn collide with the existing key
        return next(ids) if n == 4 else real(n)

    monkeypatch.setattr(auth_mod.secrets, "token_hex", token_hex)
    second, token = ks.create("b", ["predict"])
    assert second.id == "0badc0de" and token.startswith("msk_0badc0de_")
    assert {k.id: k.name for k in ks.list()} == {first.id: "a", "0badc0de": "b"}


def test_scopes_are_checked_deduplicated_and_sorted(tmp_path):
    ks = KeyStore(tmp_path)
    rec, _ = ks.create("a", ["predict", "admin", "predict", "monitor"])
    assert rec.scopes == ["admin", "monitor", "predict"]
    with pytest.raises(UserError) as none:
        ks.create("b", [])
    assert str(none.value) == "give at least one scope: predict, monitor, admin"
    with pytest.raises(UserError) as bad:
        ks.create("c", ["predict", "root", "alpha"])
    assert str(bad.value) == "unknown scope 'alpha'; choose from predict, monitor, admin"
    assert [k.name for k in ks.list()] == ["a"]


@pytest.mark.parametrize(("name", "ok"), [("", False), ("n", True), ("n" * 100, True), ("n" * 101, False)])
def test_key_names_are_1_to_100_characters(tmp_path, name, ok):
    ks = KeyStore(tmp_path)
    if ok:
        assert ks.create(name, ["predict"])[0].name == name
    else:
        with pytest.raises(UserError, match=r"^key name must be 1-100 characters$"):
            ks.create(name, ["predict"])


@pytest.mark.parametrize(("owner", "ok"), [(None, True), ("o", True), ("o" * 100, True), ("", False),
                                           ("o" * 101, False), ("team\na", False), ("tab\t", False)])
def test_key_owners_are_1_to_100_printable_characters(tmp_path, owner, ok):
    ks = KeyStore(tmp_path)
    if ok:
        rec, _ = ks.create("k", ["predict"], owner=owner)
        assert rec.meta == ({"owner": owner} if owner is not None else {})
    else:
        with pytest.raises(UserError, match=r"^key owner must be 1-100 printable characters$"):
            ks.create("k", ["predict"], owner=owner)


def test_created_and_revoked_come_from_the_clock_and_list_is_oldest_first(tmp_path):
    now = [30.0]
    ks = KeyStore(tmp_path, clock=lambda: now[0])
    ids = {}
    for name, t in (("third", 30.0), ("first", 10.0), ("second", 20.0)):
        now[0] = t
        ids[name] = ks.create(name, ["predict"])[0].id
    assert [(k.name, k.created) for k in ks.list()] == [("first", 10.0), ("second", 20.0), ("third", 30.0)]
    now[0] = 40.0
    assert ks.revoke(ids["first"]).revoked == 40.0
    now[0] = 50.0
    assert ks.revoke(ids["first"]).revoked == 40.0  # revoking again keeps the first time
    # persisted: another store (the CLI) reads the same
    other = KeyStore(tmp_path)
    assert other.get(ids["first"]).revoked == 40.0 and other.get(ids["second"]).revoked is None
    assert other.get("ffffffff") is None
    with pytest.raises(InputNotFoundError) as info:
        ks.revoke("ffffffff")
    assert str(info.value) == "no key with id 'ffffffff' (see 'modelshield keys list')"


# -- verifying keys ---------------------------------------------------------------------------------


def test_verify_returns_the_keys_principal_with_its_limits(tmp_path):
    ks = KeyStore(tmp_path)
    rec, token = ks.create("svc", ["monitor", "predict"], rate_per_s=2.5, daily_rows=7, rows_per_s=3.5)
    assert ks.verify(token) == Principal(key_id=rec.id, name="svc", scopes=frozenset({"monitor", "predict"}),
                                         rate_per_s=2.5, daily_rows=7, rows_per_s=3.5)
    plain, ptoken = ks.create("plain", ["predict"])
    assert ks.verify(ptoken) == Principal(key_id=plain.id, name="plain", scopes=frozenset({"predict"}))


def test_a_secret_containing_underscores_verifies(tmp_path):
    ks = KeyStore(tmp_path)
    for _ in range(200):  # about half of all secrets contain '_' (token_urlsafe's alphabet)
        rec, token = ks.create("k", ["predict"])
        if "_" in token.split("_", 2)[2]:
            break
    else:  # pragma: no cover - probability 2^-200
        pytest.fail("no secret with an underscore")
    assert ks.verify(token).key_id == rec.id


def test_refusals_name_the_key_only_when_it_exists(tmp_path):
    ks = KeyStore(tmp_path)
    rec, token = ks.create("a", ["predict"])
    _, kid, secret = token.split("_", 2)
    assert _refusal(ks.verify, f"msk_{kid}_{secret}x") == (401, "invalid API key", rec.id)
    assert _refusal(ks.verify, f"abc_{kid}_{secret}") == (401, "invalid API key", None)  # not our prefix
    assert _refusal(ks.verify, f"msk_{kid}") == (401, "invalid API key", rec.id)  # no secret at all
    assert _refusal(ks.verify, f"msk_ffffffff_{secret}") == (401, "invalid API key", None)
    ks.revoke(rec.id)
    assert _refusal(ks.verify, token) == (401, "revoked API key", rec.id)
    # a wrong secret for a revoked key says no more than for any other wrong secret
    assert _refusal(ks.verify, token + "x") == (401, "invalid API key", rec.id)


def test_the_dummy_record_accepts_no_secret(tmp_path):
    ks = KeyStore(tmp_path)
    assert ks._dummy.hash == "0" * 64 and len(ks._dummy.salt) == 32
    for token in ("msk_00000000_", "msk_00000000_x", "msk__", "msk", ""):
        assert _refusal(ks.verify, token) == (401, "invalid API key", None)


# -- the key file ------------------------------------------------------------------------------------


def test_the_key_file_is_reread_when_its_mtime_changes_not_otherwise(tmp_path):
    ks = KeyStore(tmp_path, reload_every_s=0)
    _, t1 = ks.create("a", ["predict"])
    other = KeyStore(tmp_path)
    _, t2 = other.create("b", ["predict"])
    assert ks.verify(t2).name == "b"  # changed on disk: re-read
    # same modification time, different content: not re-read (the check is one stat(), not a parse)
    path = tmp_path / "keys.json"
    st = path.stat()
    saved = path.read_text(encoding="utf-8")
    path.write_text(json.dumps({"version": 1, "keys": []}), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ks.verify(t1).name == "a" and ks.verify(t2).name == "b"
    # its own writes do not make it re-read either
    _, t3 = ks.create("c", ["predict"])
    st = path.stat()
    path.write_text(saved, encoding="utf-8")  # without "c"
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ks.verify(t3).name == "c"


def test_the_key_file_is_checked_at_most_every_reload_every_s(tmp_path, monkeypatch):
    mono = [0.0]
    monkeypatch.setattr(auth_mod.time, "monotonic", lambda: mono[0])
    ks = KeyStore(tmp_path, reload_every_s=0.5)
    assert ks.reload_every_s == 0.5
    _, token = KeyStore(tmp_path).create("late", ["predict"])
    mono[0] = 0.25
    assert _refusal(ks.verify, token)[1] == "invalid API key"  # not checked yet
    assert ks.get(token.split("_")[1]) is None
    mono[0] = 0.5  # exactly reload_every_s after the start: checked
    assert ks.verify(token).name == "late"
    _, token2 = KeyStore(tmp_path).create("later", ["predict"])
    mono[0] = 0.99
    assert _refusal(ks.verify, token2)[1] == "invalid API key"
    mono[0] = 1.0
    assert ks.get(token2.split("_")[1]).name == "later"


def test_the_default_reload_interval_is_50_ms(tmp_path):
    assert KeyStore(tmp_path).reload_every_s == 0.05


def test_a_missing_key_file_or_state_dir_means_no_keys(tmp_path):
    assert KeyStore(tmp_path / "nowhere").list() == []
    (tmp_path / "afile").write_text("x")
    assert KeyStore(tmp_path / "afile").list() == []  # NotADirectoryError
    (tmp_path / "keys.json").write_text(json.dumps({"version": 1}), encoding="utf-8")
    assert KeyStore(tmp_path).list() == []


def test_an_unreadable_key_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError) as info:
        KeyStore(tmp_path / ("d" * 300))
    assert str(info.value) == f"cannot read the key file {tmp_path / ('d' * 300) / 'keys.json'}: File name too long"


@pytest.mark.parametrize(("body", "kind"), [("{not json", "JSONDecodeError"),
                                            (json.dumps({"keys": [{"id": "01234567", "name": "x"}]}), "TypeError"),
                                            (json.dumps({"keys": [{"name": "x"}]}), "KeyError"),
                                            (json.dumps({"keys": 5}), "TypeError")])
def test_a_corrupt_key_file_is_a_data_error_that_names_no_content(tmp_path, body, kind):
    (tmp_path / "keys.json").write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as info:
        KeyStore(tmp_path)
    assert str(info.value) == f"{tmp_path / 'keys.json'}: corrupt key file ({kind})"


def test_records_round_trip_through_the_file(tmp_path):
    ks = KeyStore(tmp_path)
    rec, token = ks.create("svc", ["admin"], rate_per_s=1.5, daily_rows=3, rows_per_s=0.5, owner="o")
    again = KeyStore(tmp_path).get(rec.id)
    assert isinstance(again, ApiKey) and again == rec
    assert KeyStore(tmp_path).verify(token).key_id == rec.id


# -- failed-authentication bursts -------------------------------------------------------------------


def test_a_failure_exactly_window_s_old_still_counts():
    now = [100.0]
    ft = FailureTracker(burst=2, window_s=10, block_s=5, clock=lambda: now[0])
    assert not ft.record_failure("c")
    now[0] = 110.0  # the first failure is exactly window_s old: still in the window
    assert ft.record_failure("c")
    ft2 = FailureTracker(burst=2, window_s=10, block_s=5, clock=lambda: now[0])
    now[0] = 100.0
    assert not ft2.record_failure("c")
    now[0] = 110.001
    assert not ft2.record_failure("c")  # now it left the window


def test_a_block_lasts_block_s_from_the_failure_that_started_it():
    now = [50.0]
    ft = FailureTracker(burst=3, window_s=60, block_s=20, clock=lambda: now[0])
    assert [ft.record_failure("c") for _ in range(3)] == [False, False, True]
    assert ft.blocked_for("c") == 20.0
    assert ft.blocked() == {"c": 20.0}
    now[0] = 63.56
    assert ft.blocked() == {"c": 6.4}  # rounded to 0.1 s
    assert ft.blocked_for("c") == pytest.approx(6.44)
    now[0] = 70.0
    assert ft.blocked() == {}  # ended exactly now
    assert ft.blocked_for("c") == 0.0
    assert "c" not in ft._blocked  # an ended block is forgotten when asked about
    # the burst count restarted at the block: one more failure does not block again
    assert not ft.record_failure("c")


def test_an_ended_block_forgotten_by_another_thread_meanwhile_is_no_error():
    """Two requests of one client asking at once: the second finds the ended block already dropped."""
    now = [0.0]
    ft = FailureTracker(burst=1, window_s=60, block_s=30, clock=lambda: now[0])
    assert ft.record_failure("c")
    now[0] = 31.0

    def clock_with_a_concurrent_check():  # the other thread runs between reading the block and dropping it
        ft._blocked.pop("c", None)
        return now[0]

    ft._clock = clock_with_a_concurrent_check
    assert ft.blocked_for("c") == 0.0


def test_blocks_are_per_client():
    now = [0.0]
    ft = FailureTracker(burst=2, window_s=60, block_s=30, clock=lambda: now[0])
    ft.record_failure("a")
    assert not ft.record_failure("b")
    assert ft.record_failure("a")
    assert ft.blocked_for("b") == 0.0 and ft.blocked_for("a") == 30.0


def test_a_full_block_table_drops_ended_blocks_then_the_soonest_to_end():
    now = [0.0]
    ft = FailureTracker(burst=1, window_s=60, block_s=30, clock=lambda: now[0], max_clients=2)
    assert ft.record_failure("z")  # blocked until 30
    now[0] = 10.0
    assert ft.record_failure("b")  # until 40
    now[0] = 20.0
    assert ft.record_failure("c")  # the table is full: "z" (ends first, though last by name) makes room
    assert set(ft.blocked()) == {"b", "c"} and ft.blocked_for("z") == 0.0
    now[0] = 45.0  # "b" ended; "c" (until 50) has not
    assert ft.record_failure("d")
    assert set(ft.blocked()) == {"c", "d"} and ft.blocked_for("c") == 5.0


def test_the_failure_table_evicts_the_least_recently_failed_client():
    now = [0.0]
    ft = FailureTracker(burst=3, window_s=60, block_s=30, clock=lambda: now[0], max_clients=2)
    ft.record_failure("old")
    ft.record_failure("mid")
    ft.record_failure("old")  # "old" failed again: now "mid" is the stalest
    ft.record_failure("new")
    assert list(ft._fails) == ["old", "new"]
    assert ft.record_failure("old")  # its two earlier failures were kept


def test_the_default_bound_is_100000_clients():
    ft = FailureTracker(burst=5, window_s=60, block_s=30, clock=lambda: 0.0)
    assert ft.max_clients == 100_000
    for i in range(100_001):
        ft.record_failure(str(i))
    assert len(ft._fails) == 100_000 and "0" not in ft._fails and "100000" in ft._fails


# -- the Authorization header ---------------------------------------------------------------------


@pytest.fixture
def keyed(tmp_path):
    ks = KeyStore(tmp_path)
    rec, token = ks.create("svc", ["predict"])
    return Authenticator(ks), rec, token


def test_the_header_must_be_bearer_and_a_token(keyed):
    a, rec, token = keyed
    for header in (None, ""):
        assert _refusal(a.authenticate, header) == (401, "missing Authorization header", None)
    for header in (f"Basic {token}", "Bearer", "Bearer    ", f"Token {token}", f"Bearer{token}"):
        assert _refusal(a.authenticate, header) == (401, "expected 'Authorization: Bearer <key>'", None)
    for header in (f"Bearer {token}", f"bearer {token}", f"BEARER   {token}  "):
        assert a.authenticate(header).key_id == rec.id


def test_tokens_longer_than_8192_characters_are_refused_before_any_lookup(keyed):
    a, _, _ = keyed
    assert _refusal(a.authenticate, "Bearer msk_" + "a" * (8192 - 4)) == (401, "invalid API key", None)
    assert _refusal(a.authenticate, "Bearer msk_" + "a" * (8193 - 4)) == (
        401, "expected 'Authorization: Bearer <key>'", None)


def test_without_jwt_a_token_that_is_not_a_key_is_an_invalid_key(keyed):
    a, _, _ = keyed
    assert a.jwt_config is None and a._jwt_key is None
    for token in ("a.b.c", "mskx_1_2", "msk-1-2"):
        assert _refusal(a.authenticate, f"Bearer {token}") == (401, "invalid API key", None)


# -- JWT ---------------------------------------------------------------------------------------------

SECRET = "s" * 40


def _jwt_auth(tmp_path, monkeypatch, **cfg):
    from modelshield.serve.config import JWTConfig

    monkeypatch.setenv("MS_TEST_JWT", SECRET)
    conf = JWTConfig.model_validate({"algorithms": ["HS256"], "secret_env": "MS_TEST_JWT", **cfg})
    return Authenticator(KeyStore(tmp_path), conf)


def _tok(**claims):
    jwt = pytest.importorskip("jwt")
    base = {"sub": "svc-1", "exp": int(time.time()) + 60, "scope": "predict"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


def test_a_jwt_gives_a_principal_named_after_its_subject(tmp_path, monkeypatch):
    a = _jwt_auth(tmp_path, monkeypatch)
    assert a._jwt_key == SECRET
    assert a.authenticate(f"Bearer {_tok(scope='predict monitor bogus')}") == Principal(
        key_id="jwt:svc-1", name="svc-1", scopes=frozenset({"predict", "monitor"}))
    long = a.authenticate(f"Bearer {_tok(sub='u' * 100)}")
    assert long.name == "u" * 64 and long.key_id == "jwt:" + "u" * 64


@pytest.mark.parametrize(("claim", "scopes"), [("monitor admin", {"monitor", "admin"}),
                                               (["predict", "root"], {"predict"}),
                                               (5, set()), (None, set())])
def test_the_scope_claim_is_a_string_or_a_list(tmp_path, monkeypatch, claim, scopes):
    a = _jwt_auth(tmp_path, monkeypatch, scope_claim="perms")
    tok = _tok(scope="admin", perms=claim)  # "scope" is not the configured claim
    assert a.authenticate(f"Bearer {tok}").scopes == frozenset(scopes)


@pytest.mark.parametrize(("claims", "error"), [
    ({"exp": None}, "MissingRequiredClaimError"),
    ({"sub": None}, "MissingRequiredClaimError"),
    ({"exp": 1}, "ExpiredSignatureError"),
])
def test_jwt_refusals_name_the_error_class(tmp_path, monkeypatch, claims, error):
    a = _jwt_auth(tmp_path, monkeypatch)
    assert _refusal(a.authenticate, f"Bearer {_tok(**claims)}") == (401, f"invalid token ({error})", None)


def test_jwt_issuer_and_audience_are_checked_when_configured(tmp_path, monkeypatch):
    a = _jwt_auth(tmp_path, monkeypatch, issuer="https://idp", audience="ms")
    assert a.authenticate(f"Bearer {_tok(iss='https://idp', aud='ms')}").name == "svc-1"
    assert _refusal(a.authenticate, f"Bearer {_tok(iss='https://other', aud='ms')}")[1] == \
        "invalid token (InvalidIssuerError)"
    assert _refusal(a.authenticate, f"Bearer {_tok(iss='https://idp', aud='x')}")[1] == \
        "invalid token (InvalidAudienceError)"
    # no audience configured: a token's audience is not checked
    b = _jwt_auth(tmp_path, monkeypatch)
    assert b.authenticate(f"Bearer {_tok(aud='anything')}").name == "svc-1"


def test_jwt_leeway_accepts_a_token_that_expired_within_it(tmp_path, monkeypatch):
    tok = _tok(exp=int(time.time()) - 5)
    assert _jwt_auth(tmp_path, monkeypatch, leeway_s=60).authenticate(f"Bearer {tok}").name == "svc-1"
    assert _refusal(_jwt_auth(tmp_path, monkeypatch).authenticate, f"Bearer {tok}")[1] == \
        "invalid token (ExpiredSignatureError)"


def test_a_jwt_is_only_tried_with_exactly_three_parts(tmp_path, monkeypatch):
    a = _jwt_auth(tmp_path, monkeypatch)
    tok = _tok()
    assert _refusal(a.authenticate, f"Bearer {tok}.x") == (401, "invalid API key", None)
    assert _refusal(a.authenticate, f"Bearer {tok.rsplit('.', 1)[0]}") == (401, "invalid API key", None)


def test_without_pyjwt_the_error_names_the_extra(monkeypatch):
    from modelshield.errors import MissingExtraError
    from modelshield.serve.config import JWTConfig

    monkeypatch.setitem(sys.modules, "jwt", None)  # import jwt -> ImportError
    with pytest.raises(MissingExtraError) as info:
        Authenticator._load_jwt_key(JWTConfig.model_validate({"secret_env": "X"}))
    assert str(info.value) == "pyjwt is needed for JWT authentication: pip install 'modelshield[serve]'"


def test_jwt_key_sources(tmp_path, monkeypatch):
    from modelshield.serve.config import JWTConfig

    def load(**cfg):
        return Authenticator._load_jwt_key(JWTConfig.model_validate(cfg))

    monkeypatch.delenv("MS_NO_SUCH_ENV", raising=False)
    with pytest.raises(UserError) as unset:
        load(secret_env="MS_NO_SUCH_ENV")
    assert str(unset.value) == "JWT secret environment variable MS_NO_SUCH_ENV is not set"
    monkeypatch.setenv("MS_EMPTY_ENV", "")
    with pytest.raises(UserError, match=r"^JWT secret environment variable MS_EMPTY_ENV is not set$"):
        load(secret_env="MS_EMPTY_ENV")
    monkeypatch.setenv("MS_SHORT_ENV", "k" * 31)
    with pytest.raises(UserError) as short:
        load(secret_env="MS_SHORT_ENV")
    assert str(short.value) == "the JWT HS256 secret must be at least 32 characters"
    monkeypatch.setenv("MS_OK_ENV", "k" * 32)
    assert load(secret_env="MS_OK_ENV") == "k" * 32
    with pytest.raises(UserError) as neither:
        load()
    assert str(neither.value) == "jwt config needs secret_env (HS256) or public_key_file (RS256/EdDSA)"
    missing = tmp_path / "nope.pem"
    with pytest.raises(InputNotFoundError) as nf:
        load(algorithms=["RS256"], public_key_file=str(missing))
    assert str(nf.value) == f"JWT public key file not found: {missing}"
    pem = tmp_path / "pub.pem"
    pem.write_bytes(b"-----BEGIN PUBLIC KEY-----\nabc\n")
    # a key file wins over an environment variable
    assert load(algorithms=["RS256"], public_key_file=str(pem), secret_env="MS_OK_ENV") == pem.read_bytes()
