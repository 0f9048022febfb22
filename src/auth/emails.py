"""Why an e-mail address is refused, in words an operator can act on.

Accounts are validated by pydantic's `EmailStr`, i.e. the `email-validator` package, which
refuses special-use and reserved domains (RFC 6761 and IANA's special-use list: `.test`,
`.local`, `.localhost`, `.invalid`, `.onion`, `.arpa`) even though they look fine, so
`admin@forge.test` is not an address Data Forge can create.
"""

from __future__ import annotations

import email_validator

# Addresses that pass, for the hint: a real domain, or a private name that is not reserved.
EXAMPLES = "admin@example.com, admin@yourcompany.com or admin@forge.lan"


def problem(address: str) -> str | None:
    """None if `address` is accepted for an account, else one sentence saying why not and what works."""
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        domain = address.rpartition("@")[2].strip().lower().rstrip(".")
        reserved = [name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
                    if domain == name or domain.endswith("." + name)]
        if "@" in address and reserved:
            names = ", ".join(f".{n}" for n in email_validator.SPECIAL_USE_DOMAIN_NAMES)
            return (f"its domain {domain!r} is under .{reserved[0]}, a special-use name reserved for tests and "
                    f"local networks (RFC 6761); email-validator, which checks every address here, refuses all "
                    f"of them ({names}). Use an address such as {EXAMPLES}.")
        return f"{str(error).rstrip('.')}. Use an address such as {EXAMPLES}."
    return None
