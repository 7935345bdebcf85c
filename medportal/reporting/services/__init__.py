"""Every change to a report goes through these functions (web, API and worker alike).

``drafts``: requesting an AI draft and the worker's side of writing it; ``editing``: saving,
signing, addenda and cancelling; ``claims``: who reads which study (claim, release, assign, next).
"""
