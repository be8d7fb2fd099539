"""Real mail servers on 127.0.0.1 for the tests: a throwaway Dovecot and a common IMAP server handle."""
