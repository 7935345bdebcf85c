"""C-STORE is as strict and as complete as the other paths: dcmtk's storescu with objects that
are not images and a 12-bit JPEG Extended image; hostile files sent as they are (pynetdicom sends
a file's data set bytes without reading them); conflicting content; a cut association."""

from __future__ import annotations

import io
import socket
import struct
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF

from medportal.audit.models import AuditEvent
from medportal.imaging.models import Instance, Study
from medportal.imaging.storage import image_storage
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_bytes, dicom_path
from tests.intake.test_dimse import AE_TITLE, SUCCESS, Scp, statuses, wait_for_report
from tests.intake.test_strict import HOSTILE, edited_ct, part10

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def pdf_document() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "PDF1", "Document^Patient", "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    return ds


def presentation_state() -> Dataset:
    ds = pdf_document()
    del ds.MIMETypeOfEncapsulatedDocument, ds.EncapsulatedDocument
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"
    ds.Modality, ds.ContentLabel, ds.PresentationCreationDate = "PR", "WINDOW", "20261206"
    return ds


def written(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def test_storescu_sends_an_sr_a_presentation_state_a_pdf_and_a_12_bit_jpeg(server, tmp_path, settings):
    files = [
        str(dicom_path("test-SR.dcm")),
        written(tmp_path, "pr.dcm", part10(presentation_state())),
        written(tmp_path, "pdf.dcm", part10(pdf_document())),
    ]
    sent = server.store(*files)
    jpeg = server.store("-R", "-xx", str(dicom_path("JPGExtended.dcm")))

    assert sent.returncode == 0, sent.stderr
    assert jpeg.returncode == 0, jpeg.stderr
    assert statuses(sent) + statuses(jpeg) == [SUCCESS] * 4
    kinds = {i.sop_class_name: i.is_image for i in Instance.objects.all()}
    assert kinds == {
        "Comprehensive SR Storage": False,
        "Grayscale Softcopy Presentation State Storage": False,
        "Encapsulated PDF Storage": False,
        "Secondary Capture Image Storage": True,  # JPGExtended.dcm: 12-bit JPEG Extended
    }
    jpeg_study = Instance.objects.get(is_image=True).series.study
    assert wait_for_report(jpeg_study, ReportStatus.QUEUED).status == ReportStatus.QUEUED
    time.sleep(1)  # the studies without an image are not drafted
    assert Report.objects.exclude(study=jpeg_study).filter(status=ReportStatus.RECEIVED).count() == 3


def raw_c_store(assoc, data: bytes, message_id: int) -> Dataset:
    """One C-STORE of a Part-10 file's data set bytes exactly as they are (pynetdicom's own
    send_c_store reads a file with pydicom first, which mends some breakage); the response."""
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]  # after (0002,0000) File Meta Group Length
    request = C_STORE()
    request.MessageID, request.Priority = message_id, 2
    request.AffectedSOPClassUID = CT_IMAGE
    request.AffectedSOPInstanceUID = generate_uid()
    request.DataSet = io.BytesIO(data[meta_end:])
    assoc._reactor_checkpoint.clear()  # as pynetdicom's send_c_store: the reactor must not take the answer
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(request, assoc.accepted_contexts[0].context_id)
        _, response = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    status = Dataset()
    status.Status = response.Status
    status.ErrorComment = response.ErrorComment or ""
    return status


def scu_store(server: Scp, *files: bytes) -> list[tuple[int, str]]:
    """Each file's data set bytes sent as they are; (status, ErrorComment) per file."""
    ae = AE(ae_title="MODALITY1")
    ae.requested_contexts = [build_context(CT_IMAGE, ExplicitVRLittleEndian)]
    assoc = ae.associate("127.0.0.1", server.port, ae_title=AE_TITLE)
    assert assoc.is_established
    answers = []
    for number, data in enumerate(files, 1):
        status = raw_c_store(assoc, data, number)
        answers.append((status.Status, str(status.ErrorComment)))
    assoc.release()
    return answers


@pytest.mark.parametrize(("make", "reason"), HOSTILE)
def test_a_hostile_file_sent_by_c_store_is_refused_with_its_reason(server, tmp_path, make, reason):
    [(status, comment)] = scu_store(server, make())

    assert status == 0xC000
    assert comment == reason[:64] if len(reason) >= 64 else comment.startswith(reason)
    assert not Study.objects.exists() and not Instance.objects.exists()
    refused = AuditEvent.objects.get(description="File refused")
    assert refused.detail["reason"].startswith(reason) and refused.username == "dimse"


def test_other_content_under_a_stored_uid_gets_a_warning_and_the_stored_one_stays(server, tmp_path):
    original = dicom_bytes("CT_small.dcm")
    answers = scu_store(server, original, original, edited_ct())

    assert [status for status, _ in answers] == [0x0000, 0x0000, 0xB006]
    wait_for_report(Study.objects.get(), ReportStatus.QUEUED)  # the SCP is done writing
    assert answers[2][1].startswith("conflict: SOP Instance UID")
    instance = Instance.objects.get()
    assert pydicom.dcmread(image_storage().open(instance.storage_name)).PatientName == "CompressedSamples^CT1"
    assert (
        AuditEvent.objects.filter(description="Conflicting instance refused", username="dimse").count() == 1
    )


def test_an_association_cut_halfway_keeps_every_acknowledged_instance_and_nothing_half_written(
    server, tmp_path
):
    template = pydicom.dcmread(dicom_path("CT_small.dcm"))
    template.StudyInstanceUID, template.SeriesInstanceUID = generate_uid(), generate_uid()
    uids = [generate_uid() for _ in range(4)]
    paths = []
    for number, uid in enumerate(uids[:3], 1):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = uid
        paths.append(written(tmp_path, f"{number}.dcm", part10(template)))
    ae = AE(ae_title="MODALITY1")
    ae.requested_contexts = [build_context(CT_IMAGE, ExplicitVRLittleEndian)]
    assoc = ae.associate("127.0.0.1", server.port, ae_title=AE_TITLE)
    acknowledged = [assoc.send_c_store(Path(path)).Status for path in paths]
    # The fourth C-STORE: its command and half its data set, then the connection drops.
    template.SOPInstanceUID = uids[3]
    request = C_STORE()
    request.MessageID, request.Priority = 4, 2
    request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = CT_IMAGE, uids[3]
    request.DataSet = io.BytesIO(encode(template, False, True))
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    context_id = assoc.accepted_contexts[0].context_id
    pdus = list(message.encode_msg(context_id, 4096))
    raw = assoc.dul.socket.socket
    for primitive in pdus[: len(pdus) // 2]:
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        raw.sendall(pdu.encode())
    raw.shutdown(socket.SHUT_RDWR)
    raw.close()
    assoc.abort()

    assert acknowledged == [0x0000] * 3
    # The cut association ends: its study is drafted from what was acknowledged (waiting for it
    # also keeps the SCP from writing while the test database is flushed).
    assert wait_for_report(Study.objects.get(), ReportStatus.QUEUED).status == ReportStatus.QUEUED
    assert sorted(Instance.objects.values_list("sop_instance_uid", flat=True)) == sorted(uids[:3])
    for instance in Instance.objects.all():  # each acknowledged instance whole, with its blob
        stored = pydicom.dcmread(image_storage().open(instance.storage_name))
        assert stored.SOPInstanceUID == instance.sop_instance_uid
        assert stored.pixel_array.tolist() == template.pixel_array.tolist()


def test_the_scp_accepts_the_retired_ultrasound_image_storage(server, tmp_path):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))
    retired = "1.2.840.10008.5.1.4.1.1.6"  # Ultrasound Image Storage (Retired), still sent by modalities
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = retired
    ds.Modality = "US"
    path = written(tmp_path, "us.dcm", part10(ds))
    ae = AE(ae_title="MODALITY1")
    ae.requested_contexts = [build_context(retired, ExplicitVRLittleEndian)]
    assoc = ae.associate("127.0.0.1", server.port, ae_title=AE_TITLE)
    assert assoc.is_established and assoc.accepted_contexts
    status = assoc.send_c_store(Path(path))
    assoc.release()

    assert status.Status == 0x0000
    assert Instance.objects.get().sop_class_uid == retired
    wait_for_report(Study.objects.get(), ReportStatus.QUEUED)  # the SCP is done writing
