//! Reading back the XLSX reports the server writes: the first sheet's XML and its cells. Test
//! support: a workbook that cannot be read fails the test (the `unwrap`s are deliberate).

/// The first worksheet's XML and every string of an XLSX workbook: the shared strings, then the
/// sheet's inline ones (the server's reports write theirs inline, a row at a time).
pub fn sheet_of(bytes: &[u8]) -> (String, Vec<String>) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name).ok()?.read_to_string(&mut text).unwrap();
        Some(text)
    };
    let sheet = read("xl/worksheets/sheet1.xml").unwrap();
    let shared = read("xl/sharedStrings.xml").unwrap_or_default();
    let text_of = |xml: &str, open: &str| -> Vec<String> {
        xml.split(open)
            .skip(1)
            .filter_map(|s| {
                s.split_once('>')
                    .and_then(|(_, rest)| rest.split_once("</t>"))
            })
            .map(|(text, _)| text.to_owned())
            .collect()
    };
    // The shared strings first (their indexes are the cells' values), then the inline ones.
    let mut strings = text_of(&shared, "<t");
    strings.extend(text_of(&sheet, "<is><t"));
    (sheet, strings)
}

/// A cell's value: `Ok(number text)` for a number, `Err(text)` for a string (shared or inline).
pub fn cell(sheet: &(String, Vec<String>), reference: &str) -> Option<Result<String, String>> {
    let start = sheet.0.find(&format!("<c r=\"{reference}\""))?;
    let rest = &sheet.0[start..];
    let end = rest
        .find("</c>")
        .unwrap_or_else(|| rest.find("/>").unwrap_or(0));
    let xml = &rest[..end];
    if xml.contains("t=\"inlineStr\"") {
        let text = xml.split("<t").nth(1)?.split_once('>')?.1;
        return Some(Err(text.split("</t>").next()?.to_owned()));
    }
    let value = xml.split("<v>").nth(1)?.split("</v>").next()?.to_owned();
    if xml.contains("t=\"s\"") {
        Some(Err(sheet.1[value.parse::<usize>().unwrap()].clone()))
    } else {
        Some(Ok(value))
    }
}
