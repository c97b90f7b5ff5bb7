"""Tailor: a conversational product recommendation chatbot."""

__version__ = "0.1.0"
