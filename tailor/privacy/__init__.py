"""Privacy: what Tailor keeps about a shopper, their export, forgetting, retention, consent
and redaction of personal data from what is stored and logged.

Data functions take the caller's session (the caller commits); Rasa's tracker store, which
lives in another database, is reached through :class:`TrackerStore`.
"""

from tailor.privacy.consent import ConsentChange, apply_consent, deidentify_opted_out
from tailor.privacy.export import DataExport, export_data, summary_text
from tailor.privacy.forget import ForgetReport, forget
from tailor.privacy.redaction import RedactingFilter, install_log_redaction, luhn_valid, redact
from tailor.privacy.retention import RetentionReport, apply_retention
from tailor.privacy.subject import ConversationOwned, Subject, senders_of
from tailor.privacy.tracker import TrackerStore, tracker_store_url

__all__ = [
    "ConsentChange",
    "ConversationOwned",
    "DataExport",
    "ForgetReport",
    "RedactingFilter",
    "RetentionReport",
    "Subject",
    "TrackerStore",
    "apply_consent",
    "apply_retention",
    "deidentify_opted_out",
    "export_data",
    "forget",
    "install_log_redaction",
    "luhn_valid",
    "redact",
    "senders_of",
    "summary_text",
    "tracker_store_url",
]
