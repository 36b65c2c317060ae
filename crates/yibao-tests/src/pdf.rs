//! Reading back the PDFs the server writes, with poppler's `pdftotext` (Debian `poppler-utils`,
//! installed by `scripts/install-fonts --test-tools`).

/// The text of a PDF (`pdftotext`), or `None` with a notice when poppler is missing outside CI
/// (under `CI=true` a missing `pdftotext` fails the test).
pub fn text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(_) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have pdftotext"
            );
            eprintln!("NOTICE: pdftotext missing (poppler-utils): PDF text not checked");
            None
        }
    }
}
