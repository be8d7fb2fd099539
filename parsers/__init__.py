"""Pure parsing functions: raw bytes in, typed results out; no I/O, no database, no clock."""
