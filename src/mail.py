"""Outgoing e-mail. With no SMTP_HOST configured, mail is written to the log."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

from src.config import get_settings

log = logging.getLogger("forge.mail")


def _send_smtp(message: EmailMessage) -> None:
    settings = get_settings()
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


async def send_mail(*, to: str, subject: str, body: str) -> None:
    settings = get_settings()
    if not settings.smtp_host:
        log.info("mail to=%s subject=%r\n%s", to, subject, body)
        return
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.smtp_from, to, subject
    message.set_content(body)
    await asyncio.to_thread(_send_smtp, message)
