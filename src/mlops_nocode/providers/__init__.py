"""Providers: one module per target behind a small common interface; placement."""
