from django.contrib import admin

from medportal.imaging.models import Patient, Study


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["patient_id", "name", "birth_date", "sex"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["study_uid", "patient", "modality", "accession_number", "received_at"]
