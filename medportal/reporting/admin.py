from django.contrib import admin

from medportal.reporting.models import Report, ReportVersion


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "status", "model_id", "signed_by", "signed_at"]
    list_filter = ["status"]
    readonly_fields = [
        "study",
        "status",
        "attempt",
        "draft_text",
        "version",
        "model_id",
        "model_revision",
        "prompt",
        "generation_params",
        "preprocessing",
        "signed_by",
        "signed_at",
    ]

    def has_change_permission(self, request, obj=None):
        # Signed reports are immutable; corrections are addenda.
        if obj is not None and obj.is_signed:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(ReportVersion)
class ReportVersionAdmin(admin.ModelAdmin):
    list_display = ["report", "number", "source", "author", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
