"""DICOM PS3.15 Table E.1-1: the Application Level Confidentiality Profile attributes, as data.

Written from the standard's table (2024b edition; the option columns as the standard
gives them, where it gives them). One row per attribute:

    TAG  BASIC  [OPTION=ACTION ...]  Name

TAG is ``gggg,eeee`` (``x`` stands for any hex digit in repeating groups). BASIC is
the Basic Profile action; a compound action such as ``X/Z/D`` lets the de-identifier
pick the one the IOD needs (``deidentify`` says which it picks). Actions:

    D  replace with a dummy value of the same VR      Z  zero-length (or dummy) value
    X  remove                                          K  keep
    C  clean (of identifying information)              U  replace the UID, consistently
    U* (sequences) keep, replacing the UIDs inside

Option columns (only the options MedPortal implements are read: PC, MD and CD):

    SP Retain Safe Private          UI Retain UIDs
    DV Retain Device Identity       IN Retain Institution Identity
    PC Retain Patient Characteristics
    FD Retain Longitudinal Temporal Information with Full Dates
    MD Retain Longitudinal Temporal Information with Modified Dates
    CD Clean Descriptors            CS Clean Structured Content
    CG Clean Graphics

Private attributes (odd groups) are Basic Profile X; they are removed as a class, not
listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPTION_COLUMNS = {
    "SP": "Retain Safe Private Option",
    "UI": "Retain UIDs Option",
    "DV": "Retain Device Identity Option",
    "IN": "Retain Institution Identity Option",
    "PC": "Retain Patient Characteristics Option",
    "FD": "Retain Longitudinal Temporal Information Full Dates Option",
    "MD": "Retain Longitudinal Temporal Information Modified Dates Option",
    "CD": "Clean Descriptors Option",
    "CS": "Clean Structured Content Option",
    "CG": "Clean Graphics Option",
}
BASIC_ACTIONS = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
OPTION_ACTIONS = {"K", "C", "X"}

_TABLE = """
0008,0050 Z Accession Number
0018,4000 X CD=C Acquisition Comments
0040,0555 X/Z CS=C Acquisition Context Sequence
0008,0022 X/Z FD=K MD=C Acquisition Date
0008,002A X/Z/D FD=K MD=C Acquisition DateTime
0018,1400 X/D CD=C Acquisition Device Processing Description
0018,11BB D CD=C Acquisition Field Of View Label
0018,9424 X CD=C Acquisition Protocol Description
0008,0032 X/Z FD=K MD=C Acquisition Time
0008,0017 U UI=K Acquisition UID
0040,4035 X Actual Human Performers Sequence
0010,21B0 X CD=C Additional Patient History
0040,A353 X Address (Trial)
0038,0010 X Admission ID
0038,0020 X FD=K MD=C Admitting Date
0008,1084 X CD=C Admitting Diagnoses Code Sequence
0008,1080 X CD=C Admitting Diagnoses Description
0038,0021 X FD=K MD=C Admitting Time
0000,1000 X UI=K Affected SOP Instance UID
0010,2110 X PC=C CD=C Allergies
006A,0006 X CD=C Annotation Group Description
006A,0005 D CD=C Annotation Group Label
006A,0003 D UI=K Annotation Group UID
0044,0004 X FD=K MD=C Approval Status DateTime
4000,0010 X Arbitrary
0044,0104 D FD=K MD=C Assertion DateTime
0044,0105 X FD=K MD=C Assertion Expiration DateTime
0400,0562 D FD=K MD=C Attribute Modification DateTime
0040,A078 X Author Observer Sequence
2200,0005 X/Z Barcode Value
300A,00C3 X CD=C Beam Description
300C,0127 D FD=K MD=C Beam Hold Transition DateTime
300A,00DD X CD=C Bolus Description
0010,1081 X Branch of Service
0014,407E X FD=K MD=C Calibration Date
0018,1203 Z FD=K MD=C Calibration DateTime
0014,407C X FD=K MD=C Calibration Time
0016,004D X Camera Owner Name
0018,1007 X DV=K Cassette ID
0400,0115 D Certificate of Signer
0400,0310 X Certified Timestamp
0012,0060 Z IN=K Clinical Trial Coordinating Center Name
0012,0082 X Clinical Trial Protocol Ethics Committee Approval Number
0012,0081 D IN=K Clinical Trial Protocol Ethics Committee Name
0012,0020 D Clinical Trial Protocol ID
0012,0021 Z Clinical Trial Protocol Name
0012,0072 X CD=C Clinical Trial Series Description
0012,0071 X Clinical Trial Series ID
0012,0030 Z IN=K Clinical Trial Site ID
0012,0031 Z IN=K Clinical Trial Site Name
0012,0010 D Clinical Trial Sponsor Name
0012,0040 D Clinical Trial Subject ID
0012,0042 D Clinical Trial Subject Reading ID
0012,0051 X CD=C Clinical Trial Time Point Description
0012,0050 Z Clinical Trial Time Point ID
0040,0310 X CD=C Comments on Radiation Dose
0040,0280 X CD=C Comments on the Performed Procedure Step
300A,02EB X CD=C Compensator Description
0020,9161 U UI=K Concatenation UID
3010,000F Z CD=C Conceptual Volume Combination Description
3010,0017 Z CD=C Conceptual Volume Description
3010,0006 U UI=K Conceptual Volume UID
0040,3001 X Confidentiality Constraint on Patient Data Description
3010,0013 U UI=K Constituent Conceptual Volume UID
0008,009D X Consulting Physician Identification Sequence
0008,009C Z Consulting Physician's Name
0050,001B X Container Component ID
0040,051A X CD=C Container Description
0040,0512 D Container Identifier
0070,0086 X Content Creator's Identification Code Sequence
0070,0084 Z/D Content Creator's Name
0008,0023 Z/D FD=K MD=C Content Date
0040,A730 D CS=C Content Sequence
0008,0033 Z/D FD=K MD=C Content Time
0008,0107 D FD=K MD=C Context Group Local Version
0008,0106 D FD=K MD=C Context Group Version
0018,0010 Z/D CD=C Contrast/Bolus Agent
0018,1042 X FD=K MD=C Contrast/Bolus Start Time
0018,1043 X FD=K MD=C Contrast/Bolus Stop Time
0018,A002 X FD=K MD=C Contribution DateTime
0018,A003 X CD=C Contribution Description
0010,2150 X Country of Residence
2100,0040 X FD=K MD=C Creation Date
2100,0050 X FD=K MD=C Creation Time
0040,A307 X Current Observer (Trial)
0038,0300 X Current Patient Location
50xx,xxxx X CG=C Curve Data
0008,0025 X FD=K MD=C Curve Date
0008,0035 X FD=K MD=C Curve Time
0040,A07C X Custodial Organization Sequence
FFFC,FFFC X Data Set Trailing Padding
0040,A121 D FD=K MD=C Date
0040,A110 X FD=K MD=C Date of Document or Verbal Transaction (Trial)
0018,1205 X FD=K MD=C Date of Installation
0018,1200 X FD=K MD=C Date of Last Calibration
0018,700C X/D FD=K MD=C Date of Last Detector Calibration
0018,1204 X FD=K MD=C Date of Manufacture
0018,1012 X FD=K MD=C Date of Secondary Capture
0040,A120 D FD=K MD=C DateTime
0018,1202 X FD=K MD=C DateTime of Last Calibration
0018,9701 D FD=K MD=C Decay Correction DateTime
0018,937F X CD=C Decomposition Description
0008,2111 X CD=C Derivation Description
2100,0140 D Destination AE
0018,700A X/D DV=K Detector ID
3010,001B Z Device Alternate Identifier
0050,0020 X DV=K Device Description
3010,002D D DV=K Device Label
0018,1000 X/Z/D DV=K Device Serial Number
0016,004B X CD=C Device Setting Description
0018,1002 U UI=K DV=K Device UID
0400,0105 D FD=K MD=C Digital Signature DateTime
0400,0100 U Digital Signature UID
FFFA,FFFA X Digital Signatures Sequence
0020,9164 U UI=K Dimension Organization UID
0038,0030 X FD=K MD=C Discharge Date
0038,0040 X CD=C Discharge Diagnosis Description
0038,0032 X FD=K MD=C Discharge Time
300A,079A X CD=C Displacement Reference Label
4008,011A X Distribution Address
4008,0119 X Distribution Name
300A,0016 X CD=C Dose Reference Description
300A,0013 U UI=K Dose Reference UID
3010,006E U UI=K Dosimetric Objective UID
0068,6226 D FD=K MD=C Effective DateTime
0042,0011 D Encapsulated Document
0018,9517 X/D FD=K MD=C End Acquisition DateTime
3010,0037 X CD=C Entity Description
3010,0035 D CD=C Entity Label
3010,0038 D CD=C Entity Long Label
3010,0036 X CD=C Entity Name
300A,0676 X CD=C Equipment Frame of Reference Description
0012,0087 X FD=K MD=C Ethics Committee Approval Effectiveness End Date
0012,0086 X FD=K MD=C Ethics Committee Approval Effectiveness Start Date
0010,2160 X PC=K Ethnic Group
0018,9804 D FD=K MD=C Exclusion Start DateTime
0040,4011 X FD=K MD=C Expected Completion DateTime
0008,0058 U UI=K Failed SOP Instance UID List
0070,031A U UI=K Fiducial UID
0040,2017 Z Filler Order Number / Imaging Service Request
003A,032B X CD=C Filter Lookup Table Description
0040,A023 X FD=K MD=C Findings Group Recording Date (Trial)
0040,A024 X FD=K MD=C Findings Group Recording Time (Trial)
3008,0054 X/D FD=K MD=C First Treatment Date
300A,0196 X CD=C Fixation Device Description
0034,0002 D Flow Identifier
0034,0001 D Flow Identifier Sequence
300A,0072 X CD=C Fraction Group Description
3010,007F Z CD=C Fractionation Notes
0018,9074 D FD=K MD=C Frame Acquisition DateTime
0020,9158 X CD=C Frame Comments
0020,0052 U UI=K Frame of Reference UID
0034,0007 D FD=K MD=C Frame Origin Timestamp
0018,9151 D FD=K MD=C Frame Reference DateTime
0018,9623 D FD=K MD=C Functional Sync Pulse
0016,0076 X GPS Altitude
0016,0075 X GPS Altitude Ref
0016,008C X GPS Area Information
0016,008D X FD=K MD=C GPS Date Stamp
0016,0088 X GPS Dest Bearing
0016,0087 X GPS Dest Bearing Ref
0016,008A X GPS Dest Distance
0016,0089 X GPS Dest Distance Ref
0016,0084 X GPS Dest Latitude
0016,0083 X GPS Dest Latitude Ref
0016,0086 X GPS Dest Longitude
0016,0085 X GPS Dest Longitude Ref
0016,008E X GPS Differential
0016,007B X GPS DOP
0016,0081 X GPS Img Direction
0016,0080 X GPS Img Direction Ref
0016,0072 X GPS Latitude
0016,0071 X GPS Latitude Ref
0016,0074 X GPS Longitude
0016,0073 X GPS Longitude Ref
0016,0082 X GPS Map Datum
0016,007A X GPS Measure Mode
0016,008B X GPS Processing Method
0016,0078 X GPS Satellites
0016,007D X GPS Speed
0016,007C X GPS Speed Ref
0016,0079 X GPS Status
0016,0077 X GPS Time Stamp
0016,007F X GPS Track
0016,007E X GPS Track Ref
0016,0070 X GPS Version ID
0018,1008 X DV=K Gantry ID
0018,1005 X DV=K Generator ID
0070,0001 D CG=C Graphic Annotation Sequence
0072,000A D FD=K MD=C Hanging Protocol Creation DateTime
0040,E004 X FD=K MD=C HL7 Document Effective Time
0040,4037 X Human Performer's Name
0040,4036 X Human Performer's Organization
0088,0200 X Icon Image Sequence
0008,4000 X CD=C Identifying Comments
0020,4000 X CD=C Image Comments
0028,4000 X Image Presentation Comments
0040,2400 X CD=C Imaging Service Request Comments
003A,0314 D FD=K MD=C Impedance Measurement DateTime
4008,0300 X CD=C Impressions
0068,6270 D FD=K MD=C Information Issue DateTime
0008,0015 X FD=K MD=C Instance Coercion DateTime
0008,0012 X/D FD=K MD=C Instance Creation Date
0008,0013 X/Z/D FD=K MD=C Instance Creation Time
0008,0014 U UI=K Instance Creator UID
0400,0600 X Instance Origin Status
0008,0081 X IN=K Institution Address
0008,0082 X/Z/D IN=K Institution Code Sequence
0008,0080 X/Z/D IN=K Institution Name
0008,1040 X IN=K Institutional Department Name
0008,1041 X IN=K Institutional Department Type Code Sequence
0018,9919 Z/D FD=K MD=C Instruction Performed DateTime
0010,1050 X Insurance Plan Identification
3010,0085 X FD=K MD=C Intended Fraction Start Time
3010,004D X/D FD=K MD=C Intended Phase End Date
3010,004C X/D FD=K MD=C Intended Phase Start Date
0040,1011 X Intended Recipients of Results Identification Sequence
300A,0741 D FD=K MD=C Interlock DateTime
300A,0742 D CD=C Interlock Description
300A,0783 D CD=C Interlock Origin Description
4008,0112 X FD=K MD=C Interpretation Approval Date
4008,0113 X FD=K MD=C Interpretation Approval Time
4008,0111 X Interpretation Approver Sequence
4008,010C X Interpretation Author
4008,0115 X CD=C Interpretation Diagnosis Description
4008,0200 X Interpretation ID
4008,0202 X Interpretation ID Issuer
4008,0100 X FD=K MD=C Interpretation Recorded Date
4008,0101 X FD=K MD=C Interpretation Recorded Time
4008,0102 X Interpretation Recorder
4008,010B X CD=C Interpretation Text
4008,010A X Interpretation Transcriber
4008,0108 X FD=K MD=C Interpretation Transcription Date
4008,0109 X FD=K MD=C Interpretation Transcription Time
0018,0035 X FD=K MD=C Intervention Drug Start Time
0018,0027 X FD=K MD=C Intervention Drug Stop Time
0008,3010 U UI=K Irradiation Event UID
0040,2004 X FD=K MD=C Issue Date of Imaging Service Request
0040,2005 X FD=K MD=C Issue Time of Imaging Service Request
0038,0011 X Issuer of Admission ID
0038,0014 X Issuer of Admission ID Sequence
0012,0022 X Issuer of Clinical Trial Protocol ID
0012,0073 X Issuer of Clinical Trial Series ID
0012,0032 X Issuer of Clinical Trial Site ID
0012,0041 X Issuer of Clinical Trial Subject ID
0012,0043 X Issuer of Clinical Trial Subject Reading ID
0012,0055 X Issuer of Clinical Trial Time Point ID
0010,0021 X Issuer of Patient ID
0038,0061 X Issuer of Service Episode ID
0038,0064 X Issuer of Service Episode ID Sequence
0040,0513 Z Issuer of the Container Identifier Sequence
0040,0562 Z Issuer of the Specimen Identifier Sequence
2200,0002 X/Z CD=C Label Text
0028,1214 U UI=K Large Palette Color Lookup Table UID
0010,21D0 X FD=K MD=C Last Menstrual Date
0016,004F X DV=K Lens Make
0016,0050 X DV=K Lens Model
0016,0051 X DV=K Lens Serial Number
0016,004E X DV=K Lens Specification
0050,0021 X CD=C Long Device Description
0400,0404 X MAC
0016,002B X CD=C Maker Note
0018,100B U UI=K DV=K Manufacturer's Device Class UID
3010,0043 Z DV=K Manufacturer's Device Identifier
0002,0003 U UI=K Media Storage SOP Instance UID
0010,2000 X CD=C Medical Alerts
0010,1090 X Medical Record Locator
0010,1080 X Military Rank
0400,0550 X Modified Attributes Sequence
0020,3403 X FD=K MD=C Modified Image Date
0020,3406 X Modified Image Description
0020,3405 X FD=K MD=C Modified Image Time
0020,3401 X Modifying Device ID
0400,0563 D Modifying System
3008,0056 X/D FD=K MD=C Most Recent Treatment Date
0018,937B X CD=C Multi-energy Acquisition Description
003A,0310 U UI=K Multiplex Group UID
0008,1060 X Name of Physician(s) Reading Study
0040,1010 X Names of Intended Recipients of Results
0008,1000 X Network ID
0400,0552 X Nonconforming Data Element Value
0400,0551 X Nonconforming Modified Attributes Sequence
0040,A192 X FD=K MD=C Observation Date (Trial)
0040,A032 X/D FD=K MD=C Observation DateTime
0040,A033 X FD=K MD=C Observation Start DateTime
0040,A402 U UI=K Observation Subject UID (Trial)
0040,A193 X FD=K MD=C Observation Time (Trial)
0040,A171 U UI=K Observation UID
0010,2180 X CD=C Occupation
0008,1072 X/D Operator Identification Sequence
0008,1070 X/Z/D Operators' Name
0040,2010 X Order Callback Phone Number
0040,2011 X Order Callback Telecom Information
0040,2008 X Order Entered By
0040,2009 X Order Enterer's Location
0400,0561 X Original Attributes Sequence
2100,0070 X Originator
0012,0023 X Other Clinical Trial Protocol IDs Sequence
0010,1000 X Other Patient IDs
0010,1002 X Other Patient IDs Sequence
0010,1001 X Other Patient Names
60xx,4000 X CG=C Overlay Comments
60xx,3000 X CG=C Overlay Data
0008,0024 X FD=K MD=C Overlay Date
0008,0034 X FD=K MD=C Overlay Time
300A,0760 D FD=K MD=C Override DateTime
0028,1199 U UI=K Palette Color Lookup Table UID
0040,A07A X Participant Sequence
0040,A082 Z FD=K MD=C Participation DateTime
0010,4000 X CD=C Patient Comments
0010,0020 Z/D Patient ID
300A,0794 X CD=C Patient Setup Photo Description
300A,0650 U UI=K Patient Setup UID
0038,0500 X PC=C CD=C Patient State
0040,1004 X Patient Transport Arrangements
300A,0792 X CD=C Patient Treatment Preparation Method Description
300A,078E X CD=C Patient Treatment Preparation Procedure Parameter Description
0010,1040 X Patient's Address
0010,1010 X PC=K Patient's Age
0010,0030 Z Patient's Birth Date
0010,1005 X Patient's Birth Name
0010,0032 X Patient's Birth Time
0038,0400 X Patient's Institution Residence
0010,0050 X Patient's Insurance Plan Code Sequence
0010,1060 X Patient's Mother's Birth Name
0010,0010 Z Patient's Name
0010,0101 X Patient's Primary Language Code Sequence
0010,0102 X Patient's Primary Language Modifier Code Sequence
0010,21F0 X Patient's Religious Preference
0010,0040 Z PC=K Patient's Sex
0010,2203 X/Z PC=K Patient's Sex Neutered
0010,1020 X PC=K Patient's Size
0010,2155 X Patient's Telecom Information
0010,2154 X Patient's Telephone Numbers
0010,1030 X PC=K Patient's Weight
0040,0243 X Performed Location
0040,0254 X CD=C Performed Procedure Step Description
0040,0250 X FD=K MD=C Performed Procedure Step End Date
0040,4051 X FD=K MD=C Performed Procedure Step End DateTime
0040,0251 X FD=K MD=C Performed Procedure Step End Time
0040,0253 X Performed Procedure Step ID
0040,0244 X FD=K MD=C Performed Procedure Step Start Date
0040,4050 X FD=K MD=C Performed Procedure Step Start DateTime
0040,0245 X FD=K MD=C Performed Procedure Step Start Time
0040,0241 X DV=K Performed Station AE Title
0040,4030 X DV=K Performed Station Geographic Location Code Sequence
0040,0242 X DV=K Performed Station Name
0040,4028 X DV=K Performed Station Name Code Sequence
0008,1052 X Performing Physician Identification Sequence
0008,1050 X Performing Physician's Name
0040,1101 D Person Identification Code Sequence
0040,A123 D Person Name
0040,1102 X Person's Address
0040,1104 X Person's Telecom Information
0040,1103 X Person's Telephone Numbers
4008,0114 X Physician Approving Interpretation
0008,1048 X Physician(s) of Record
0008,1049 X Physician(s) of Record Identification Sequence
0008,1062 X Physician(s) Reading Study Identification Sequence
0040,2016 Z Placer Order Number / Imaging Service Request
0018,1004 X DV=K Plate ID
3002,0123 X CD=C Position Acquisition Template Description
3002,0121 X CD=C Position Acquisition Template Name
0040,0012 X PC=C Pre-Medication
0010,21C0 X PC=K Pregnancy Status
300A,000E X CD=C Prescription Description
3010,007B Z CD=C Prescription Notes
3010,0081 Z CD=C Prescription Notes Sequence
0070,0082 X FD=K MD=C Presentation Creation Date
0070,0083 X FD=K MD=C Presentation Creation Time
0070,1101 U UI=K Presentation Display Collection UID
0070,1102 U UI=K Presentation Sequence Collection UID
3010,0061 X CD=C Prior Treatment Dose Description
0040,4052 X FD=K MD=C Procedure Step Cancellation DateTime
0044,000B X FD=K MD=C Product Expiration DateTime
0018,1030 X/D CD=C Protocol Name
0008,1088 X CD=C Pyramid Description
0020,0027 X CD=C Pyramid Label
0008,0019 U UI=K Pyramid UID
300A,0619 D CD=C Radiation Dose Identification Label
300A,0623 D CD=C Radiation Dose In-Vivo Measurement Label
300A,067D Z CD=C Radiation Generation Mode Description
300A,067C D CD=C Radiation Generation Mode Label
0018,1078 X FD=K MD=C Radiopharmaceutical Start DateTime
0018,1072 X FD=K MD=C Radiopharmaceutical Start Time
0018,1079 X FD=K MD=C Radiopharmaceutical Stop DateTime
0018,1073 X FD=K MD=C Radiopharmaceutical Stop Time
300C,0113 X CD=C Reason for Omission Description
0040,100A X CD=C Reason for Requested Procedure Code Sequence
0032,1030 X CD=C Reason for Study
3010,005C Z CD=C Reason for Superseding
0400,0565 D Reason for the Attribute Modification
0040,2001 X CD=C Reason for the Imaging Service Request
0040,1002 X CD=C Reason for the Requested Procedure
0032,1066 X CD=C Reason for Visit
0032,1067 X CD=C Reason for Visit Code Sequence
0074,1234 X Receiving AE
300A,073A D FD=K MD=C Recorded RT Control Point DateTime
3010,000B U UI=K Referenced Conceptual Volume UID
0040,A13A D FD=K MD=C Referenced DateTime
0400,0402 X Referenced Digital Signature Sequence
300A,0083 U UI=K Referenced Dose Reference UID
3010,006F U UI=K Referenced Dosimetric Objective UID
3010,0031 U UI=K Referenced Fiducials UID
3006,0024 U UI=K Referenced Frame of Reference UID
0040,4023 U UI=K Referenced General Purpose Scheduled Procedure Step Transaction UID
0008,1140 X/Z/U* UI=K Referenced Image Sequence
0040,A172 U UI=K Referenced Observation UID (Trial)
0038,0004 X Referenced Patient Alias Sequence
0010,1100 X Referenced Patient Photo Sequence
0008,1120 X UI=X Referenced Patient Sequence
0008,1111 X/Z/D UI=K Referenced Performed Procedure Step Sequence
0400,0403 X Referenced SOP Instance MAC Sequence
0008,1155 U UI=K Referenced SOP Instance UID
0004,1511 U UI=K Referenced SOP Instance UID in File
0008,1110 X/Z UI=K Referenced Study Sequence
300A,0785 U UI=K Referenced Treatment Position Group UID
0008,0096 X Referring Physician Identification Sequence
0008,0092 X Referring Physician's Address
0008,0090 Z Referring Physician's Name
0008,0094 X Referring Physician's Telephone Numbers
0010,2152 X Region of Residence
3006,00C2 U UI=K Related Frame of Reference UID
0040,0275 X CD=C Request Attributes Sequence
0032,1070 X CD=C Requested Contrast Agent
0040,1400 X CD=C Requested Procedure Comments
0032,1060 X/Z CD=C Requested Procedure Description
0040,1001 X Requested Procedure ID
0040,1005 X Requested Procedure Location
0018,9937 X CD=C Requested Series Description
0000,1001 U UI=K Requested SOP Instance UID
0074,1236 X Requesting AE
0032,1032 X Requesting Physician
0032,1033 X Requesting Service
0018,9185 X CD=C Respiratory Motion Compensation Technique Description
0010,2299 X Responsible Organization
0010,2297 X Responsible Person
4008,4000 X CD=C Results Comments
4008,0118 X Results Distribution List Sequence
4008,0040 X Results ID
4008,0042 X Results ID Issuer
0008,0054 X Retrieve AE Title
300E,0004 Z FD=K MD=C Review Date
300E,0005 Z FD=K MD=C Review Time
300E,0008 X/Z Reviewer Name
3006,004D X ROI Creator Sequence
3006,002D X FD=K MD=C ROI DateTime
3006,0028 X CD=C ROI Description
3006,0038 X CD=C ROI Generation Description
3006,00A6 Z ROI Interpreter
3006,004E X ROI Interpreter Sequence
3006,0026 Z CD=C ROI Name
3006,002E X FD=K MD=C ROI Observation DateTime
3006,0088 X CD=C ROI Observation Description
3006,0085 X CD=C ROI Observation Label
300A,0615 Z RT Accessory Device Slot ID
300A,0611 Z RT Accessory Holder Slot ID
3010,005A Z CD=C RT Physician Intent Narrative
300A,0006 X/D FD=K MD=C RT Plan Date
300A,0004 X CD=C RT Plan Description
300A,0002 D CD=C RT Plan Label
300A,0003 X CD=C RT Plan Name
300A,0007 X/D FD=K MD=C RT Plan Time
3010,0054 D CD=C RT Prescription Label
300A,062A D CD=C RT Tolerance Set Label
3010,0056 X/D CD=C RT Treatment Approach Label
3010,003B U UI=K RT Treatment Phase UID
3008,0162 D FD=K MD=C Safe Position Exit Date
3008,0164 D FD=K MD=C Safe Position Exit Time
3008,0166 D FD=K MD=C Safe Position Return Date
3008,0168 D FD=K MD=C Safe Position Return Time
0038,001A X FD=K MD=C Scheduled Admission Date
0038,001B X FD=K MD=C Scheduled Admission Time
0038,001C X FD=K MD=C Scheduled Discharge Date
0038,001D X FD=K MD=C Scheduled Discharge Time
0040,4034 X Scheduled Human Performers Sequence
0038,001E X Scheduled Patient Institution Residence
0040,000B X Scheduled Performing Physician Identification Sequence
0040,0006 X Scheduled Performing Physician's Name
0040,0007 X CD=C Scheduled Procedure Step Description
0040,0004 X FD=K MD=C Scheduled Procedure Step End Date
0040,0005 X FD=K MD=C Scheduled Procedure Step End Time
0040,4008 X FD=K MD=C Scheduled Procedure Step Expiration DateTime
0040,0009 X Scheduled Procedure Step ID
0040,0011 X DV=K Scheduled Procedure Step Location
0040,4010 X FD=K MD=C Scheduled Procedure Step Modification DateTime
0040,0002 X FD=K MD=C Scheduled Procedure Step Start Date
0040,4005 X FD=K MD=C Scheduled Procedure Step Start DateTime
0040,0003 X FD=K MD=C Scheduled Procedure Step Start Time
0040,0001 X DV=K Scheduled Station AE Title
0040,4027 X DV=K Scheduled Station Geographic Location Code Sequence
0040,0010 X DV=K Scheduled Station Name
0040,4025 X DV=K Scheduled Station Name Code Sequence
0032,1020 X DV=K Scheduled Study Location
0032,1021 X DV=K Scheduled Study Location AE Title
0032,1000 X FD=K MD=C Scheduled Study Start Date
0032,1001 X FD=K MD=C Scheduled Study Start Time
0032,1010 X FD=K MD=C Scheduled Study Stop Date
0032,1011 X FD=K MD=C Scheduled Study Stop Time
0072,005E D Selector AE Value
0072,005F D Selector AS Value
0072,0061 D FD=K MD=C Selector DA Value
0072,0063 D FD=K MD=C Selector DT Value
0072,0066 D Selector LO Value
0072,0068 D Selector LT Value
0072,0065 D Selector OB Value
0072,006A D Selector PN Value
0072,006C D Selector SH Value
0072,006E D Selector ST Value
0072,006B D FD=K MD=C Selector TM Value
0072,006D D Selector UN Value
0072,0071 D Selector UR Value
0072,0070 D Selector UT Value
0008,0021 X/D FD=K MD=C Series Date
0008,103E X CD=C Series Description
0020,000E U UI=K Series Instance UID
0008,0031 X/D FD=K MD=C Series Time
0038,0062 X CD=C Service Episode Description
0038,0060 X Service Episode ID
300A,01B2 X CD=C Setup Technique Description
300A,01A6 X CD=C Shielding Device Description
0040,06FA X Slide Identifier
0010,21A0 X PC=K Smoking Status
0100,0420 X FD=K MD=C SOP Authorization DateTime
0008,0018 U UI=K SOP Instance UID
3010,0015 U UI=K Source Conceptual Volume UID
0018,936A D FD=K MD=C Source End DateTime
0064,0003 U UI=K Source Frame of Reference UID
0034,0005 D Source Identifier
0008,2112 X/Z/U* UI=K Source Image Sequence
300A,0216 X DV=K Source Manufacturer
0400,0564 Z Source of Previous Values
3008,0105 X/Z DV=K Source Serial Number
0018,9369 D FD=K MD=C Source Start DateTime
300A,022C D FD=K MD=C Source Strength Reference Date
300A,022E D FD=K MD=C Source Strength Reference Time
0038,0050 X PC=C Special Needs
0040,050A X Specimen Accession Number
0040,0602 X CD=C Specimen Detailed Description
0040,0551 D Specimen Identifier
0040,0610 Z CS=C Specimen Preparation Sequence
0040,0600 X CD=C Specimen Short Description
0040,0554 U UI=K Specimen UID
0018,9516 X/D FD=K MD=C Start Acquisition DateTime
0008,0055 X DV=K Station AE Title
0008,1010 X/Z/D DV=K Station Name
0088,0140 U UI=K Storage Media File-set UID
3006,0008 Z FD=K MD=C Structure Set Date
3006,0006 X CD=C Structure Set Description
3006,0002 D CD=C Structure Set Label
3006,0004 X CD=C Structure Set Name
3006,0009 Z FD=K MD=C Structure Set Time
0032,1040 X FD=K MD=C Study Arrival Date
0032,1041 X FD=K MD=C Study Arrival Time
0032,4000 X CD=C Study Comments
0032,1050 X FD=K MD=C Study Completion Date
0032,1051 X FD=K MD=C Study Completion Time
0008,0020 Z FD=K MD=C Study Date
0008,1030 X CD=C Study Description
0020,0010 Z Study ID
0032,0012 X Study ID Issuer
0020,000D U UI=K Study Instance UID
0032,0034 X FD=K MD=C Study Read Date
0032,0035 X FD=K MD=C Study Read Time
0008,0030 Z FD=K MD=C Study Time
0032,0032 X FD=K MD=C Study Verified Date
0032,0033 X FD=K MD=C Study Verified Time
0044,0010 X FD=K MD=C Substance Administration DateTime
0020,0200 U UI=K Synchronization Frame of Reference UID
0018,2042 U UI=K Target UID
0040,A354 X Telephone Number (Trial)
0040,DB0D U UI=K Template Extension Creator UID
0040,DB0C U UI=K Template Extension Organization UID
0040,DB07 X FD=K MD=C Template Local Version
0040,DB06 X FD=K MD=C Template Version
4000,4000 X Text Comments
2030,0020 X Text String
0040,A122 D FD=K MD=C Time
0040,A112 X FD=K MD=C Time of Document Creation or Verbal Transaction (Trial)
0018,1201 X FD=K MD=C Time of Last Calibration
0018,700E X/D FD=K MD=C Time of Last Detector Calibration
0018,1014 X FD=K MD=C Time of Secondary Capture
0008,0201 X FD=K MD=C Timezone Offset From UTC
0088,0910 X Topic Author
0088,0912 X Topic Keywords
0088,0906 X Topic Subject
0088,0904 X Topic Title
0062,0021 U UI=K Tracking UID
0008,1195 U UI=K Transaction UID
0018,5011 X DV=K Transducer Identification Sequence
3008,0024 D FD=K MD=C Treatment Control Point Date
3008,0025 D FD=K MD=C Treatment Control Point Time
3008,0250 X/D FD=K MD=C Treatment Date
300A,00B2 X/Z DV=K Treatment Machine Name
300A,0608 D CD=C Treatment Position Group Label
300A,0609 U UI=K Treatment Position Group UID
300A,0700 U UI=K Treatment Session UID
3010,0077 X/D CD=C Treatment Site
300A,000B X CD=C Treatment Sites
3010,007A Z CD=C Treatment Technique Notes
3008,0251 X/D FD=K MD=C Treatment Time
300A,0736 D FD=K MD=C Treatment Tolerance Violation DateTime
300A,0734 D CD=C Treatment Tolerance Violation Description
0018,100A X DV=K UDI Sequence
0040,A124 U UID
0018,1009 X DV=K Unique Device Identifier
3010,0033 D CD=C User Content Label
3010,0034 D CD=C User Content Long Label
0040,A352 X Verbal Source (Trial)
0040,A358 X Verbal Source Identifier Code Sequence (Trial)
0040,A030 D FD=K MD=C Verification DateTime
0040,A088 Z Verifying Observer Identification Code Sequence
0040,A075 D Verifying Observer Name
0040,A073 D Verifying Observer Sequence
0040,A027 D Verifying Organization
0038,4000 X CD=C Visit Comments
003A,0329 X CD=C Waveform Filter Description
0018,9371 D DV=K X-Ray Detector ID
0018,9373 X DV=K X-Ray Detector Label
0018,9367 D DV=K X-Ray Source ID
"""


@dataclass(frozen=True)
class ProfileRow:
    """One attribute of Table E.1-1: its Basic Profile action and the options' actions."""

    tag: str  # "gggg,eeee", upper case; "x" for any digit of a repeating group
    name: str
    basic: str
    options: dict[str, str] = field(default_factory=dict)

    def matches(self, group: int, element: int) -> bool:
        pattern = self.tag.replace(",", "")
        value = f"{group:04X}{element:04X}"
        return all(p in ("x", v) for p, v in zip(pattern, value, strict=True))


def _parse(text: str) -> list[ProfileRow]:
    rows = []
    for line in text.strip().splitlines():
        tag, basic, *rest = line.split()
        options = {}
        while rest and re.fullmatch(r"[A-Z]{2}=[A-Z]", rest[0]):
            column, action = rest.pop(0).split("=")
            if column not in OPTION_COLUMNS or action not in OPTION_ACTIONS:
                raise ValueError(f"bad option {column}={action} in Table E.1-1 row {line!r}")
            options[column] = action
        if basic not in BASIC_ACTIONS or not re.fullmatch(r"[0-9A-Fx]{4},[0-9A-Fx]{4}", tag):
            raise ValueError(f"bad Table E.1-1 row {line!r}")
        rows.append(ProfileRow(tag=tag, name=" ".join(rest), basic=basic, options=options))
    return rows


ROWS: list[ProfileRow] = _parse(_TABLE)
# Exact tags (as ints) -> row; the few repeating-group rows are matched separately.
BY_TAG: dict[int, ProfileRow] = {int(row.tag.replace(",", ""), 16): row for row in ROWS if "x" not in row.tag}
PATTERN_ROWS: list[ProfileRow] = [row for row in ROWS if "x" in row.tag]
if len(BY_TAG) + len(PATTERN_ROWS) != len(ROWS):
    raise ValueError("Table E.1-1 lists a tag twice")


def row_for(tag: int) -> ProfileRow | None:
    """The table's row for a data element tag, or None when the table does not list it."""
    row = BY_TAG.get(tag)
    if row is not None:
        return row
    group, element = tag >> 16, tag & 0xFFFF
    return next((row for row in PATTERN_ROWS if row.matches(group, element)), None)


# Words "clean" keeps in descriptors (Clean Descriptors Option): modality, anatomy,
# orientation, contrast and technique terms that say what was imaged, never who or where.
_VOCABULARY = """
    ABD ABDO ABDOMEN ACQUISITION ADC AND ANGIO ANGIOGRAPHY ANKLE AORTA AP ARTERIAL AX AXIAL
    BONE BRAIN BREAST CALCIUM CARDIAC CAROTID CERVICAL CHEST CINE COLON CONTRAST COR CORONAL
    CORONARY CR CT CTA DELAYED DIFFUSION DWI DX ELBOW EXAM FACE FEMUR FLAIR FOOT FOREARM
    FRONTAL GAD GADOLINIUM HAND HEAD HEART HIGH HIP HUMERUS IV KIDNEY KNEE KUB LAT LATERAL LEFT
    LIVER LOCALIZER LOW LUMBAR LUNG LUNGS MAMMO MAMMOGRAPHY MEDIASTINUM MG MIP MPR MR MRA MRI
    NECK NO NON ORAL ORBIT ORBITS PA PANCREAS PELVIS PERFUSION PET PLAIN PORTAL POST PRE
    PROTOCOL RECON RENAL RIB RIBS RIGHT ROUTINE SAG SAGITTAL SCOUT SERIES SHOULDER SINUS SKULL
    SOFT SPINE SPIR STIR STANDARD SURVIEW SWI T1 T2 TFE THORACIC THORAX TIBIA TISSUE TOF
    TOPOGRAM TRA TRANSVERSE US VENOUS VIEW WHOLE WITH WITHOUT WO WRIST XR BODY RESOLUTION
"""
# No single letters: alone they could be a name's initials.
CLEAN_VOCABULARY = frozenset(_VOCABULARY.split())
