"""Every way a study arrives: the upload page, the API, DICOMweb STOW-RS and the DIMSE C-STORE SCP.

Each hands its files to ``receive.studies_receive``: imaging validates and stores them, and
reporting opens a report for each new study. Intake sits above both.
"""
