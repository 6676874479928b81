"""The failure-mode catalog: one folder per failure mode, each a complete proof bundle."""
