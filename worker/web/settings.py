"""Who may read the plan pages, and how far back an order's timeline goes. Nested into the
worker's settings as `web`: ORDER_STATUS_WEB__BEARER_TOKEN, ORDER_STATUS_WEB__BASIC_USERNAME,
ORDER_STATUS_WEB__BASIC_PASSWORD, ORDER_STATUS_WEB__TIMELINE_EVENTS."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class WebSettings(BaseModel):
    """Open when nothing is set (for a server bound to localhost). With a token, basic-auth
    credentials or both, every request must present one of them."""

    model_config = ConfigDict(frozen=True)

    bearer_token: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="The plan view accepts `Authorization: Bearer <token>` (a secret: never "
        "logged). With neither this nor basic-auth credentials, the plan is served only on a "
        "loopback address.",
    )
    basic_username: str | None = Field(
        default=None,
        min_length=1,
        pattern="^[^:]*$",  # RFC 7617: the first colon ends the user-id
        description="With ORDER_STATUS_WEB__BASIC_PASSWORD: the plan view accepts HTTP basic "
        "authentication.",
    )
    basic_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="With ORDER_STATUS_WEB__BASIC_USERNAME (a secret: never logged).",
    )

    timeline_events: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Events kept per order in Redis for the plan's timeline and fallout history "
        "(about 350 bytes each in Redis; 0 keeps none).",
    )

    @model_validator(mode="after")
    def _basic_needs_both(self) -> WebSettings:
        if (self.basic_username is None) != (self.basic_password is None):
            raise ValueError("basic_username and basic_password are set together or not at all")
        return self

    @property
    def protected(self) -> bool:
        return self.bearer_token is not None or self.basic_username is not None
