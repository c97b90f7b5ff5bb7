"""Rasa SDK custom actions for Tailor (thin: logic lives in ``tailor``)."""
