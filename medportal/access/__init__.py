"""Who may do what: the roles, the table of what each may do, and the page guard.

A leaf: it imports nothing of MedPortal's, so every app (audit included) may use it.
"""
