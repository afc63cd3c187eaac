"""Thin Litestar handlers: decode, call the store or the read side, encode."""
