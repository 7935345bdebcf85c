"""Signals reporting sends so that other apps can react without reporting importing them.

Most report changes are conditional ``UPDATE``s (``QuerySet.update``), which send no
``post_save``; the services send ``report_changed`` instead. medportal.streaming listens
and tells open worklists to refresh once the transaction commits.
"""

from django.dispatch import Signal

# Sent with ``report_id`` whenever a report's status or assignment changes.
report_changed = Signal()

# Sent once a signature commits: the report's own (``addendum_id`` None) or an addendum's.
# The outbound interfaces (HL7 ORU to the EHR) listen to send what was signed.
report_signed = Signal()
