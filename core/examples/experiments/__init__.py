"""Bundled example experiment configs (``checkout_demo.yaml`` is what ``dataeng demo`` analyses)."""
