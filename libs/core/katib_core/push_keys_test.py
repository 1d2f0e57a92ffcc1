from dataclasses import dataclass

from katib_core import push_auth
from katib_core.push_keys import TokenMinter, admin_token

FIRST = b"first-secret-0123456789"
SECOND = b"second-secret-0123456789"


@dataclass
class Secret:
    value: bytes

    def signing(self) -> bytes:
        return self.value


def test_trial_tokens_verify_and_are_bound_to_their_trial() -> None:
    minter = TokenMinter(Secret(FIRST), clock=lambda: 1000.0)
    claims = push_auth.verify(minter.trial_token("team-a", "exp-1", ttl=60), [FIRST], now=1059)
    assert (claims.namespace, claims.trial, claims.expires_at) == ("team-a", "exp-1", 1060)


def test_the_admin_token_is_cached_and_reminted_at_half_life_or_on_rotation() -> None:
    secret, now = Secret(FIRST), [1000.0]
    minter = TokenMinter(secret, clock=lambda: now[0], admin_ttl=100)
    first = minter.admin_token()
    assert push_auth.verify(first, [FIRST], now=now[0]).is_admin
    now[0] = 1049
    assert minter.admin_token() == first
    now[0] = 1051
    second = minter.admin_token()
    assert second != first
    secret.value = SECOND
    third = minter.admin_token()
    assert third != second
    push_auth.verify(third, [SECOND], now=now[0])


def test_admin_token_keeps_the_cached_one_until_half_life() -> None:
    fresh = admin_token(None, FIRST, now=0, ttl=10)
    assert admin_token(fresh, FIRST, now=4.9, ttl=10) is fresh
    assert admin_token(fresh, FIRST, now=5, ttl=10) is not fresh
    assert admin_token(fresh, SECOND, now=1, ttl=10).signing == SECOND
