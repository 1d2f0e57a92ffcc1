"""Test helpers usable from every resolve (standard library only)."""
