"""Backends run an ExecutionPlan: `local` (processes), `docker` (containers), `kubernetes` (Jobs)."""

from .base import Backend, Handle, LogChunk, Outcome, get_backend

__all__ = ["Backend", "Handle", "LogChunk", "Outcome", "get_backend"]
