from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from medportal.audit import views as audit_views
from medportal.imaging import views as imaging_views
from medportal.reporting import api as reporting_api
from medportal.reporting import views as reporting_views

urlpatterns = [
    path("", reporting_views.worklist, name="worklist"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("studies/upload/", reporting_views.upload, name="upload"),
    path("studies/sample/", reporting_views.sample_load, name="sample-load"),
    path("studies/<int:study_id>/", reporting_views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/indication/", reporting_views.study_indication, name="study-indication"),
    path("instances/<int:instance_id>/image.png", imaging_views.instance_image, name="instance-image"),
    path("reports/<int:report_id>/panel/", reporting_views.report_panel, name="report-panel"),
    path("reports/<int:report_id>/draft/", reporting_views.report_draft, name="report-draft"),
    path("reports/<int:report_id>/save/", reporting_views.report_save, name="report-save"),
    path("reports/<int:report_id>/sign/", reporting_views.report_sign, name="report-sign"),
    path("audit/", audit_views.audit_list, name="audit-list"),
    # Automation API (token authentication).
    path("api/studies/", reporting_api.studies_create, name="api-studies"),
    path("api/studies/<int:study_id>/", reporting_api.study_read, name="api-study"),
    path("api/reports/<int:report_id>/", reporting_api.report_detail, name="api-report"),
    path("api/reports/<int:report_id>/draft/", reporting_api.report_draft, name="api-report-draft"),
    path("api/reports/<int:report_id>/sign/", reporting_api.report_sign, name="api-report-sign"),
    path("admin/", admin.site.urls),
]
