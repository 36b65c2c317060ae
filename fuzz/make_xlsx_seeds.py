#!/usr/bin/env python3
"""Writes the roster_xlsx seed workbooks into corpus/roster_xlsx/ (run from fuzz/).

Minimal workbooks like the ones crates/yibao-roster-file/tests/xlsx_files.rs builds: shared and
inline strings, a date serial, a number; once with stored parts (which mutate well, the XML being
in the clear) and once deflated (as Excel writes them)."""
import io
import zipfile

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

SHARED = ["姓名", "身份证号码", "参保地区", "张三", "居住证起始日期", "户籍类型", "居住证"]
SHEET = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>'
    '<c r="D1" t="s"><v>5</v></c><c r="E1" t="s"><v>4</v></c></row>'
    '<row r="2"><c r="A2" t="s"><v>3</v></c><c r="B2" t="inlineStr"><is><t>\'11010519491231002X</t></is></c>'
    '<c r="C2"><v>320600</v></c></row>'
    '<row r="4"><c r="A4" t="inlineStr"><is><r><t>李</t></r><r><t>四</t></r></is></c>'
    '<c r="B4" t="str"><v>320602198001011235</v></c><c r="C4" t="inlineStr"><is><t>320600</t></is></c>'
    '<c r="D4" t="s"><v>6</v></c><c r="E4" s="1"><v>43831</v></c></row>'
)


def book(compression):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        z.writestr("[Content_Types].xml", HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/></Types>')
        z.writestr("_rels/.rels", HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", HEAD + f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
                   '<sheet name="花名册" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
                   f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        items = "".join(f"<si><t>{s}</t></si>" for s in SHARED)
        z.writestr("xl/sharedStrings.xml", HEAD + f'<sst xmlns="{MAIN}" count="{len(SHARED)}" uniqueCount="{len(SHARED)}">{items}</sst>')
        z.writestr("xl/worksheets/sheet1.xml", HEAD + f'<worksheet xmlns="{MAIN}" xmlns:r="{REL}"><sheetData>{SHEET}</sheetData></worksheet>')
    return out.getvalue()


for name, compression in [("stored.xlsx", zipfile.ZIP_STORED), ("deflated.xlsx", zipfile.ZIP_DEFLATED)]:
    with open(f"corpus/roster_xlsx/{name}", "wb") as f:
        f.write(book(compression))
