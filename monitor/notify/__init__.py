"""Delivery stage: render an alert or a digest for each service and send it through apprise.

- :mod:`~monitor.notify.text`: the data (:class:`AlertMessage`, :class:`Digest`), the cleaning
  of feed text (hostile input) and the plain-text rendering.
- :mod:`~monitor.notify.chat`: Markdown (and plain text) for chat services, within their limits.
- :mod:`~monitor.notify.email`: HTML + text email from Jinja2 templates, threaded by story.
- :mod:`~monitor.notify.channel`: URLs (validation, redaction) and :class:`Channel`, which
  renders per target and sends.

May not touch: the outbox, retries or schedules (``monitor.delivery``), nor the config.
"""

from monitor.notify.channel import (
    CONSOLE_SCHEME,
    Channel,
    DeliveryResult,
    TargetOutcome,
    outcome_lines,
    redact,
    register_console_scheme,
    sample_alert,
    url_key,
    validate_url,
)
from monitor.notify.chat import escape_md, render_chat
from monitor.notify.email import load_template_dir, render_email, set_template_dir
from monitor.notify.text import (
    BODY_MAX,
    TITLE_MAX,
    AlertMessage,
    Digest,
    clean_text,
    defuse_mentions,
    render,
)

__all__ = [
    "BODY_MAX",
    "CONSOLE_SCHEME",
    "TITLE_MAX",
    "AlertMessage",
    "Channel",
    "DeliveryResult",
    "Digest",
    "TargetOutcome",
    "clean_text",
    "defuse_mentions",
    "escape_md",
    "load_template_dir",
    "outcome_lines",
    "redact",
    "register_console_scheme",
    "render",
    "render_chat",
    "render_email",
    "sample_alert",
    "set_template_dir",
    "url_key",
    "validate_url",
]
