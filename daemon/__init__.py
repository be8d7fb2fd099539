"""zwxx: the mail-intake daemon of the government-affairs information office."""

__version__ = "0.1.0"
