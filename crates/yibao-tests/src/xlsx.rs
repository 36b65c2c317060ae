//! Reading back the XLSX reports the server writes: the first sheet's XML and its cells. Test
//! support: a workbook that cannot be read fails the test (the `unwrap`s are deliberate).

/// The first worksheet's XML and the shared strings of an XLSX workbook.
pub fn sheet_of(bytes: &[u8]) -> (String, Vec<String>) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let sheet = read("xl/worksheets/sheet1.xml");
    let shared = read("xl/sharedStrings.xml");
    let strings = shared
        .split("<t")
        .skip(1)
        .filter_map(|s| {
            s.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</t>"))
        })
        .map(|(text, _)| text.to_owned())
        .collect();
    (sheet, strings)
}

/// A cell's value: `Ok(number text)` for a number, `Err(text)` for a shared string.
pub fn cell(sheet: &(String, Vec<String>), reference: &str) -> Option<Result<String, String>> {
    let start = sheet.0.find(&format!("<c r=\"{reference}\""))?;
    let rest = &sheet.0[start..];
    let end = rest
        .find("</c>")
        .unwrap_or_else(|| rest.find("/>").unwrap_or(0));
    let xml = &rest[..end];
    let value = xml.split("<v>").nth(1)?.split("</v>").next()?.to_owned();
    if xml.contains("t=\"s\"") {
        Some(Err(sheet.1[value.parse::<usize>().unwrap()].clone()))
    } else {
        Some(Ok(value))
    }
}
