"""Modules loaded by the Rasa servers (Python 3.10 venv), not by Tailor: this folder is on the
Rasa servers' ``PYTHONPATH`` (``tailor.runtime.rasa.RASA_PLUGINS``). They import Rasa, never
``tailor``."""
