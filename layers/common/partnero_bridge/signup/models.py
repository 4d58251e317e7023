"""What a sign-up call may contain, and what an accepted sign-up becomes on the queue."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

# Deliberately simple: a syntactic check that catches typos and garbage, not a full RFC
# 5322 parser; Partnero and the shop's own mail decide the rest.
_EMAIL = re.compile(r"^[^@\s\"<>,;:()\[\]\\]+@[^@\s\"<>,;:()\[\]\\]+\.[^@\s\"<>,;:()\[\]\\]+$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_TOKEN = re.compile(r"^[^\s\x00-\x1f\x7f]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http(s) URL")
    return value


def _token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError("must not contain spaces or control characters")
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(_email),
]
Token = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_token),
]
_TOKEN_ADAPTER: TypeAdapter[str] = TypeAdapter(Token)


def valid_token(value: str) -> str | None:
    """``value`` as a ``key``/``partner_key`` field would keep it (stripped), or ``None``
    when the field would refuse it: for values read from elsewhere, such as a cookie."""
    try:
        return _TOKEN_ADAPTER.validate_python(value)
    except ValidationError:
        return None


Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_url)
]


class SignupRequest(BaseModel):
    """The JSON body of ``POST /signup``. Unknown fields are refused so typos surface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Email
    key: Token | None = None
    name: Name | None = None
    surname: Name | None = None
    partner_key: Token | None = None
    referral_url: Url | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)


class SignupDelivery(BaseModel):
    """An accepted, referred sign-up as it travels on the work queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_key: str
    partner_key: str
    email: str
    name: str | None = None
    surname: str | None = None
    referral_url: str | None = None
    tags: list[str] | None = None
    trusted: bool = False
