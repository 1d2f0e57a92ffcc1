import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_core import push_auth
from katib_core.errors import PermissionDeniedError, UnauthenticatedError
from katib_core.push_auth import Action, Claims

SECRET = b"s3cret-s3cret-s3cret"
OTHER = b"another-secret-of-ours"
NOW = 1_800_000_000


def token(ns: str = "team-a", trial: str = "exp-abc", exp: int = NOW + 60, secret: bytes = SECRET) -> str:
    return push_auth.mint(secret, Claims(ns, trial, exp))


def test_round_trip() -> None:
    claims = push_auth.verify(token(), [SECRET], now=NOW)
    assert (claims.namespace, claims.trial, claims.expires_at) == ("team-a", "exp-abc", NOW + 60)
    assert claims.nonce


def test_every_token_is_unique() -> None:
    assert token() != token()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed"),
        ("abc", "malformed"),
        ("abc.", "malformed"),
        ("abc.!!!", "not base64url"),
    ],
)
def test_malformed_tokens(text: str, message: str) -> None:
    with pytest.raises(UnauthenticatedError, match=message):
        push_auth.verify(text, [SECRET], now=NOW)


def test_forged_claims_fail_the_signature() -> None:
    payload, signature = token().split(".")
    body = json.loads(push_auth._unb64(payload))
    body["trial"] = "someone-else"
    forged = push_auth._b64(json.dumps(body).encode()) + "." + signature
    with pytest.raises(UnauthenticatedError, match="does not match"):
        push_auth.verify(forged, [SECRET], now=NOW)


def test_expired() -> None:
    with pytest.raises(UnauthenticatedError, match="expired"):
        push_auth.verify(token(exp=NOW), [SECRET], now=NOW)


def test_rotation_first_signs_all_verify_and_dropping_revokes() -> None:
    old = token(secret=OTHER)
    assert push_auth.verify(old, [SECRET, OTHER], now=NOW).trial == "exp-abc"
    with pytest.raises(UnauthenticatedError, match="retired"):
        push_auth.verify(old, [SECRET], now=NOW)


def test_no_secret_configured() -> None:
    with pytest.raises(UnauthenticatedError, match="no push secret"):
        push_auth.verify(token(), [], now=NOW)


@pytest.mark.parametrize(
    ("claims", "action", "trial", "recorded", "allowed"),
    [
        (Claims("a", "t1", NOW), Action.REPORT, "t1", None, True),
        (Claims("a", "t1", NOW), Action.REPORT, "t1", "a", True),
        (Claims("a", "t1", NOW), Action.REPORT, "t2", None, False),  # forged trial name
        (Claims("a", "t1", NOW), Action.REPORT, "t1", "b", False),  # same name, other namespace
        (Claims("a", "t1", NOW), Action.READ, "t1", "a", True),
        (Claims("a", "t1", NOW), Action.READ, "t2", "a", False),
        (Claims("a", "t1", NOW), Action.DELETE, "t1", "a", False),
        (Claims("a", "*", NOW), Action.READ, "t9", "a", True),
        (Claims("a", "*", NOW), Action.READ, "t9", "b", False),
        (Claims("a", "*", NOW), Action.READ, "t9", None, False),
        (Claims("a", "*", NOW), Action.DELETE, "t9", "a", True),
        (Claims("a", "*", NOW), Action.REPORT, "t9", "a", False),
        (Claims("*", "*", NOW), Action.DELETE, "t9", None, True),
        (Claims("*", "*", NOW), Action.REPORT, "anything", "x", True),
    ],
)
def test_authorize(claims: Claims, action: Action, trial: str, recorded: str | None, allowed: bool) -> None:
    if allowed:
        push_auth.authorize(claims, action, trial, trial_namespace=recorded)
    else:
        with pytest.raises(PermissionDeniedError):
            push_auth.authorize(claims, action, trial, trial_namespace=recorded)


def test_bearer() -> None:
    assert push_auth.bearer([("x", "y"), ("authorization", "Bearer abc.def")]) == "abc.def"
    assert push_auth.bearer([("authorization", "Basic zzz")]) is None
    assert push_auth.bearer([]) is None


def test_parse_secrets() -> None:
    assert push_auth.parse_secrets("# comment\n" + SECRET.decode() + "\n\n" + OTHER.decode() + "\n") == [SECRET, OTHER]
    with pytest.raises(ValueError, match="no secret"):
        push_auth.parse_secrets("# nothing\n")
    with pytest.raises(ValueError, match="16 bytes"):
        push_auth.parse_secrets("short\n")


@given(st.text(max_size=200))
def test_arbitrary_text_never_verifies(text: str) -> None:
    with pytest.raises(UnauthenticatedError):
        push_auth.verify(text, [SECRET], now=NOW)


def test_trial_secret_names_are_valid_and_distinct() -> None:
    assert push_auth.trial_secret_name("exp-abc") == "exp-abc-push-token"
    long_a, long_b = "a" * 250 + "x", "a" * 250 + "y"
    names = {push_auth.trial_secret_name(long_a), push_auth.trial_secret_name(long_b)}
    assert len(names) == 2
    assert all(len(name) <= 253 and name.endswith("-push-token") for name in names)


def test_new_secrets_are_long_enough_and_fresh() -> None:
    first, second = push_auth.new_secret(), push_auth.new_secret()
    assert first != second
    assert push_auth.parse_secrets(first + "\n") == [first.encode()]
