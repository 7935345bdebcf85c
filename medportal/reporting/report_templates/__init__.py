"""Report templates: the normal text and AI instruction per modality and body part.

``library``: choosing, creating and changing templates (each change audited); ``mrrt``: reading
an IHE MRRT (RadReport) HTML template; ``forms`` and ``views``: the admin pages.
"""
