"""Metric writers (console, jsonl, Weights & Biases)."""

from jaxrec.logging.writers import ConsoleWriter, JsonlWriter, MultiWriter, WandbWriter

__all__ = ["ConsoleWriter", "JsonlWriter", "MultiWriter", "WandbWriter"]
