"""Telling people: the report, its plot, the optional LLM summary, and the notification."""
