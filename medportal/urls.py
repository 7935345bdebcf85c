from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from medportal.accounts import user_views
from medportal.accounts import views as accounts_views
from medportal.audit import views as audit_views
from medportal.communication import views as communication_views
from medportal.exports import views as export_report_views
from medportal.hl7 import views as hl7_views
from medportal.imaging import dicomweb, export_views
from medportal.imaging import views as imaging_views
from medportal.intake import api as intake_api
from medportal.intake import stow
from medportal.intake import views as intake_views
from medportal.ohif import views as ohif_views
from medportal.operations import views as operations_views
from medportal.quality import views as quality_views
from medportal.reporting import api as reporting_api
from medportal.reporting import draft_setup_views, proofread_views
from medportal.reporting import views as reporting_views
from medportal.reporting.report_templates import views as template_views

urlpatterns = [
    path("", reporting_views.worklist, name="worklist"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("login/code/", accounts_views.login_second_step, name="login-second-factor"),
    path("account/two-factor/", accounts_views.totp_enrol, name="totp-enrol"),
    path("studies/upload/", intake_views.upload, name="upload"),
    path("studies/sample/", intake_views.sample_load, name="sample-load"),
    path("studies/<int:study_id>/", reporting_views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/indication/", reporting_views.study_indication, name="study-indication"),
    path("studies/<int:study_id>/body-part/", draft_setup_views.study_body_part, name="study-body-part"),
    path("reports/<int:report_id>/prior/", draft_setup_views.report_prior, name="report-prior"),
    path(
        "studies/<int:study_id>/export/deidentified.zip",
        export_views.study_export_deidentified,
        name="study-export-deidentified",
    ),
    path("instances/<int:instance_id>/image.png", imaging_views.instance_image, name="instance-image"),
    path("instances/<int:instance_id>/header/", imaging_views.instance_header_view, name="instance-header"),
    path("reports/<int:report_id>/panel/", reporting_views.report_panel, name="report-panel"),
    path("reports/<int:report_id>/draft/", reporting_views.report_draft, name="report-draft"),
    path("reports/<int:report_id>/save/", reporting_views.report_save, name="report-save"),
    path("reports/<int:report_id>/sign/", reporting_views.report_sign, name="report-sign"),
    path(
        "reports/<int:report_id>/proofread/fix/",
        proofread_views.report_proofread_fix,
        name="report-proofread-fix",
    ),
    path("reports/<int:report_id>/addenda/", reporting_views.report_addendum, name="report-addendum"),
    path("reports/<int:report_id>/cancel/", reporting_views.report_cancel, name="report-cancel"),
    path("reports/<int:report_id>/claim/", reporting_views.report_claim, name="report-claim"),
    path("reports/<int:report_id>/release/", reporting_views.report_release, name="report-release"),
    path("reports/<int:report_id>/assign/", reporting_views.report_assign, name="report-assign"),
    path(
        "reports/<int:report_id>/export/report.pdf",
        export_report_views.report_export_pdf,
        name="report-export-pdf",
    ),
    path(
        "reports/<int:report_id>/export/fhir.json",
        export_report_views.report_export_fhir,
        name="report-export-fhir",
    ),
    path(
        "reports/<int:report_id>/export/sr.dcm", export_report_views.report_export_sr, name="report-export-sr"
    ),
    path(
        "reports/<int:report_id>/export/pacs/", export_report_views.report_send_pacs, name="report-send-pacs"
    ),
    path("worklist/next/", reporting_views.worklist_next, name="worklist-next"),
    path("templates/", template_views.template_list, name="template-list"),
    path("templates/new/", template_views.template_create, name="template-create"),
    path("templates/import/", template_views.template_import, name="template-import"),
    path("templates/<int:template_id>/", template_views.template_edit, name="template-edit"),
    path(
        "templates/<int:template_id>/active/", template_views.template_set_active, name="template-set-active"
    ),
    path("templates/<int:template_id>/delete/", template_views.template_delete, name="template-delete"),
    path("audit/", audit_views.audit_list, name="audit-list"),
    path("audit/export.csv", audit_views.audit_export_csv, name="audit-export-csv"),
    path("quality/", quality_views.quality_page, name="quality"),
    path("quality/export.csv", quality_views.quality_export_csv, name="quality-export-csv"),
    path("interfaces/hl7/", hl7_views.outbox, name="hl7-outbox"),
    path("interfaces/hl7/<int:message_id>/resend/", hl7_views.outbox_resend, name="hl7-outbox-resend"),
    path("workers/", operations_views.workers_status, name="workers-status"),
    path("users/", user_views.user_list, name="user-list"),
    path("users/new/", user_views.user_new, name="user-new"),
    path("users/<int:user_id>/", user_views.user_edit, name="user-edit"),
    path("users/<int:user_id>/active/", user_views.user_active, name="user-active"),
    path("users/<int:user_id>/password/", user_views.user_password, name="user-password"),
    # Critical results and follow-ups (medportal.communication).
    path(
        "reports/<int:report_id>/communication/",
        communication_views.communication_panel,
        name="communication-panel",
    ),
    path("reports/<int:report_id>/critical/", communication_views.critical_mark, name="critical-mark"),
    path("critical/<int:critical_id>/notify/", communication_views.critical_notify, name="critical-notify"),
    path(
        "critical/<int:critical_id>/read-back/",
        communication_views.critical_read_back,
        name="critical-read-back",
    ),
    path("critical/", communication_views.critical_list, name="critical-list"),
    path(
        "reports/<int:report_id>/follow-ups/", communication_views.followup_confirm, name="followup-confirm"
    ),
    path("follow-ups/", communication_views.followup_list, name="followup-list"),
    path("critical/ack/<str:token>/", communication_views.critical_acknowledge, name="critical-acknowledge"),
    # Automation API (token authentication).
    path("api/studies/", intake_api.studies_create, name="api-studies"),
    path("api/studies/<int:study_id>/", reporting_api.study_read, name="api-study"),
    path("api/reports/<int:report_id>/", reporting_api.report_detail, name="api-report"),
    path("api/reports/<int:report_id>/draft/", reporting_api.report_draft, name="api-report-draft"),
    path("api/reports/<int:report_id>/sign/", reporting_api.report_sign, name="api-report-sign"),
    path(
        "api/reports/<int:report_id>/proofread/",
        proofread_views.api_report_proofread,
        name="api-report-proofread",
    ),
    path("api/reports/<int:report_id>/fhir/", export_report_views.api_report_fhir, name="api-report-fhir"),
    path("api/reports/<int:report_id>/pdf/", export_report_views.api_report_pdf, name="api-report-pdf"),
    path("api/reports/<int:report_id>/sr/", export_report_views.api_report_sr, name="api-report-sr"),
    path("admin/", admin.site.urls),
    # The OHIF Viewer (medportal.ohif): its configuration, its files, and its routes (index.html).
    path("viewer/app-config.js", ohif_views.viewer_config, name="viewer-config"),
    path("viewer/", ohif_views.viewer_app, name="viewer"),
    path("viewer/<path:path>", ohif_views.viewer_app, name="viewer-path"),
]

# DICOMweb (PS3.18): STOW-RS, QIDO-RS and WADO-RS; tokens, and for reads the login session.
_STUDY = "dicomweb/studies/<str:study>"
_SERIES = f"{_STUDY}/series/<str:series>"
_INSTANCE = f"{_SERIES}/instances/<str:instance>"
urlpatterns += [
    path(
        "dicomweb/studies",
        dicomweb.by_method(GET=dicomweb.studies_search, POST=stow.studies_store),
        name="dicomweb-studies",
    ),
    path("dicomweb/series", dicomweb.series_search, name="dicomweb-all-series"),
    path("dicomweb/instances", dicomweb.instances_search, name="dicomweb-all-instances"),
    path(
        _STUDY,
        dicomweb.by_method(GET=dicomweb.study_retrieve, POST=stow.studies_store),
        name="dicomweb-study",
    ),
    path(f"{_STUDY}/metadata", dicomweb.metadata, name="dicomweb-study-metadata"),
    path(f"{_STUDY}/thumbnail", dicomweb.thumbnail, name="dicomweb-study-thumbnail"),
    path(f"{_STUDY}/series", dicomweb.series_search, name="dicomweb-study-series"),
    path(f"{_STUDY}/instances", dicomweb.instances_search, name="dicomweb-study-instances"),
    path(_SERIES, dicomweb.series_retrieve, name="dicomweb-series"),
    path(f"{_SERIES}/metadata", dicomweb.metadata, name="dicomweb-series-metadata"),
    path(f"{_SERIES}/thumbnail", dicomweb.thumbnail, name="dicomweb-series-thumbnail"),
    path(f"{_SERIES}/instances", dicomweb.instances_search, name="dicomweb-series-instances"),
    path(_INSTANCE, dicomweb.instance_retrieve, name="dicomweb-instance"),
    path(f"{_INSTANCE}/metadata", dicomweb.metadata, name="dicomweb-instance-metadata"),
    path(f"{_INSTANCE}/rendered", dicomweb.instance_render, name="dicomweb-instance-rendered"),
    path(
        f"{_INSTANCE}/frames/<int:frame>/rendered", dicomweb.instance_render, name="dicomweb-frame-rendered"
    ),
    path(f"{_INSTANCE}/thumbnail", dicomweb.thumbnail, name="dicomweb-instance-thumbnail"),
    path(f"{_INSTANCE}/frames/<int:frame>/thumbnail", dicomweb.thumbnail, name="dicomweb-frame-thumbnail"),
    path(f"{_INSTANCE}/frames/<str:frames>", dicomweb.instance_frames, name="dicomweb-frames"),
    path(f"{_INSTANCE}/pixeldata", dicomweb.instance_pixel_data, name="dicomweb-pixel-data"),
]
