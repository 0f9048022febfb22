from src.exceptions import PaymentRequired, Unprocessable


class InsufficientBalance(PaymentRequired):
    """402: the balance does not cover the price."""


class InvalidLedgerEntry(Unprocessable):
    """422: a top-up or adjustment that is not allowed (no reason, below zero, ...)."""
