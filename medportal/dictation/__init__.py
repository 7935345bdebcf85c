"""Dictation into the report editor: audio from the browser, MedASR on its own queue, text (and
spoken commands) back to the field with the cursor; the Impression written from the Findings."""
