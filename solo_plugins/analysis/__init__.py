"""Analyses behind the paper's figures (torch only)."""
