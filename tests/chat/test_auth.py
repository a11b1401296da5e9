"""rawws.chat.auth: JWT verification (every failure mode), grants, static tokens."""

from __future__ import annotations

import base64
import json

import pytest

from rawws.chat.auth import (
    Authenticator,
    Grants,
    Identity,
    JWTVerifier,
    StaticTokens,
    TokenExpired,
    TokenInvalid,
    encode_jwt,
)

SECRET = "s3cret-for-tests"
NOW = 1_700_000_000.0


def verifier(**kwargs: object) -> JWTVerifier:
    return JWTVerifier(SECRET, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_valid_token(alg: str) -> None:
    token = encode_jwt({"sub": "alice", "exp": NOW + 60}, SECRET, alg=alg)
    assert verifier().verify(token) == Identity("alice", Grants(), NOW + 60 + 30)  # + leeway


def test_reference_vector_from_rfc_7515() -> None:
    # RFC 7515 Appendix A.1 (HS256): the example JWS, with its key; its claims carry no "sub",
    # so it verifies up to the user-name rule (its exp, 1300819380, is long past: leeway huge).
    key = base64.urlsafe_b64decode(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow==")
    token = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
             ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
             ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    v = JWTVerifier(key, clock=lambda: 1300819380 - 10)
    with pytest.raises(TokenInvalid, match="sub"):
        v.verify(token)  # signature and exp accepted; only the missing user remains
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(TokenInvalid, match="bad signature"):
        v.verify(tampered)


def test_expired_is_distinct() -> None:
    token = encode_jwt({"sub": "alice", "exp": NOW - 31}, SECRET)
    with pytest.raises(TokenExpired) as info:
        verifier().verify(token)
    assert info.value.close_code == 4001


def test_exp_leeway() -> None:
    token = encode_jwt({"sub": "alice", "exp": NOW - 29}, SECRET)
    assert verifier().verify(token).user == "alice"
    with pytest.raises(TokenExpired):
        verifier(leeway=0).verify(token)


def test_not_yet_valid() -> None:
    token = encode_jwt({"sub": "alice", "nbf": NOW + 31}, SECRET)
    with pytest.raises(TokenInvalid, match="not yet valid") as info:
        verifier().verify(token)
    assert info.value.close_code == 4002
    assert verifier().verify(encode_jwt({"sub": "alice", "nbf": NOW + 29}, SECRET)).user == "alice"


def test_bad_signature() -> None:
    token = encode_jwt({"sub": "alice"}, "another-secret")
    with pytest.raises(TokenInvalid, match="bad signature"):
        verifier().verify(token)


def test_alg_none_refused() -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": "admin"}).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.xyz"):
        with pytest.raises(TokenInvalid, match="algorithm not allowed"):
            verifier().verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS1", "hs256", "None", ""])
def test_other_algorithms_refused(alg: str) -> None:
    token = encode_jwt({"sub": "alice"}, SECRET, alg=alg)
    with pytest.raises(TokenInvalid, match="algorithm not allowed"):
        verifier().verify(token)


def test_algorithm_outside_the_configured_set() -> None:
    token = encode_jwt({"sub": "alice"}, SECRET, alg="HS512")
    with pytest.raises(TokenInvalid, match="algorithm not allowed"):
        verifier(algorithms=["HS256"]).verify(token)


def test_crit_header_refused() -> None:
    token = encode_jwt({"sub": "alice"}, SECRET, header={"crit": ["exp"]})
    with pytest.raises(TokenInvalid, match="critical"):
        verifier().verify(token)


@pytest.mark.parametrize("token", ["", "a", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.e30",
                                   "x" * 9000, "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.AAAA"])
def test_malformed(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verifier().verify(token)


def test_signature_checked_before_claims_are_read() -> None:
    # Payload that is not JSON, with a wrong signature: the error is about the signature.
    header = b64(json.dumps({"alg": "HS256"}).encode())
    with pytest.raises(TokenInvalid, match="bad signature"):
        verifier().verify(f"{header}.{b64(b'garbage')}.{b64(b'sig')}")


@pytest.mark.parametrize("claims", [
    {},  # no subject
    {"sub": ""},
    {"sub": "a b"},
    {"sub": 42},
    {"sub": "alice", "exp": "tomorrow"},
    {"sub": "alice", "exp": True},
    {"sub": "alice", "nbf": None},
    {"sub": "alice", "rooms": "lobby"},
    {"sub": "alice", "topics": [1]},
    {"sub": "alice", "publish": ["a.#.b"]},
])
def test_invalid_claims(claims: dict[str, object]) -> None:
    with pytest.raises(TokenInvalid):
        verifier().verify(encode_jwt(claims, SECRET))


def test_user_id_claim_accepted_without_sub() -> None:
    assert verifier().verify(encode_jwt({"user_id": "bob"}, SECRET)).user == "bob"


def test_grants() -> None:
    token = encode_jwt({"sub": "alice", "rooms": ["lobby", "team.*"], "topics": ["stock.*"],
                        "publish": []}, SECRET)
    grants = verifier().verify(token).grants
    assert grants.may_join("lobby")
    assert grants.may_join("team.red")
    assert not grants.may_join("team")
    assert not grants.may_join("admin")
    assert grants.may_subscribe("stock.AAPL")
    assert grants.may_subscribe("stock.*")
    assert not grants.may_subscribe("stock.#")
    assert not grants.may_publish("stock.AAPL")
    unrestricted = Grants()
    assert unrestricted.may_join("x") and unrestricted.may_subscribe("#")
    assert unrestricted.may_publish("a.b")


def test_verifier_configuration_errors() -> None:
    with pytest.raises(ValueError):
        JWTVerifier("")
    with pytest.raises(ValueError):
        JWTVerifier("k", algorithms=["RS256"])
    with pytest.raises(ValueError):
        JWTVerifier("k", algorithms=[])


def test_static_tokens_lines_and_json() -> None:
    tokens = StaticTokens.parse("# comment\n\ntok-a alice\ntok-b  bob\n")
    assert len(tokens) == 2
    assert tokens.verify("tok-a") == Identity("alice")
    assert tokens.verify("tok-b").user == "bob"
    with pytest.raises(TokenInvalid):
        tokens.verify("tok-c")
    with pytest.raises(TokenInvalid):
        tokens.verify("")
    assert StaticTokens.parse('{"t1": "carol"}').verify("t1").user == "carol"


def test_static_tokens_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "tokens.txt"
    path.write_text("abc alice\n", encoding="utf-8")
    assert StaticTokens.from_file(path).verify("abc").user == "alice"


@pytest.mark.parametrize("text", ["tok", "tok alice extra", '{"t": 1}', "tok bad/user"])
def test_static_tokens_bad_file(text: str) -> None:
    with pytest.raises(ValueError):
        StaticTokens.parse(text)


def test_authenticator_tries_static_then_jwt() -> None:
    auth = Authenticator(jwt=verifier(), static=StaticTokens({"static-1": "carol"}))
    assert auth.verify("static-1").user == "carol"
    assert auth.verify(encode_jwt({"sub": "dave"}, SECRET)).user == "dave"
    with pytest.raises(TokenExpired):
        auth.verify(encode_jwt({"sub": "dave", "exp": NOW - 100}, SECRET))
    only_static = Authenticator(static=StaticTokens({"s": "carol"}))
    with pytest.raises(TokenInvalid):
        only_static.verify(encode_jwt({"sub": "dave"}, SECRET))
    with pytest.raises(ValueError):
        Authenticator()


# --- issue 11: fail closed on configuration, 4002 (never 1011) on undecodable tokens ----------


@pytest.mark.parametrize("secret", ["", b"", "   ", "\t\n"])
def test_an_empty_secret_is_refused(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="JWT secret is empty"):
        JWTVerifier(secret)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}", " {} "])
def test_an_empty_tokens_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        StaticTokens.parse(text)


@pytest.mark.parametrize("text", [
    "[]", '{"t": 1}', '{"t": NaN}', '{"t": 1e400}', '{"t": Infinity}', '{"t": -Infinity}',
    '{"t": "alice"', "{" * 5000 + "}" * 5000, '{"t": ["alice"]}',
])
def test_a_bad_json_tokens_file_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="tokens file"):
        StaticTokens.parse(text)


def _signed(header_json: bytes, payload_json: bytes) -> str:
    import hashlib
    import hmac
    signing_input = f"{b64(header_json)}.{b64(payload_json)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


GOOD_HEAD = b'{"alg":"HS256","typ":"JWT"}'


@pytest.mark.parametrize("token", [
    "é.é.é",
    "eyJhbGciOiJIUzI1NiJ9.é.AAAA",  # a non-ASCII payload part (was: UnicodeEncodeError, 1011)
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.\u00ff\u00fe",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.\ud800",  # a lone surrogate, as a query may decode
    "\x00.\x00.\x00",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.A",  # a signature whose base64url cannot decode
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.AAAA=====",
    _signed(b"\xff\xfe", b'{"sub":"alice"}'),  # header not UTF-8
    _signed(GOOD_HEAD, b"\xff\xfe"),  # payload not UTF-8, correctly signed
    _signed(GOOD_HEAD, b'{"sub":"alice","exp":1e400}'),
    _signed(GOOD_HEAD, b'{"sub":"alice","exp":NaN}'),
    _signed(GOOD_HEAD, b'{"sub":"alice","nbf":-Infinity}'),
    _signed(GOOD_HEAD, b'{"sub":"alice","exp":Infinity}'),
    _signed(GOOD_HEAD, b'{"sub":"alice","exp":1' + b"0" * 400 + b"}"),  # an int past a double
    _signed(b'{"alg":"HS256","x":1e400}', b'{"sub":"alice"}'),
    _signed(GOOD_HEAD, b"[" * 3000 + b"]" * 3000),
])
def test_undecodable_tokens_are_invalid_not_internal_errors(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verifier().verify(token)
    with pytest.raises(TokenInvalid):  # static tokens first, then JWT: the same answer
        Authenticator(jwt=verifier(), static=StaticTokens({"other": "bob"})).verify(token)


@pytest.mark.parametrize("claim", ["rooms", "topics", "publish"])
def test_a_claim_with_more_than_256_patterns_is_refused(claim: str) -> None:
    verifier().verify(encode_jwt({"sub": "alice", claim: [f"r{i}" for i in range(256)]},
                                 SECRET))
    token = encode_jwt({"sub": "alice", claim: [f"r{i}" for i in range(257)]}, SECRET)
    with pytest.raises(TokenInvalid, match="list of patterns"):
        verifier().verify(token)
