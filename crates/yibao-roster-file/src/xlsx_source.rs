//! XLSX rosters: the first worksheet, streamed.
//!
//! The zip crate reads the archive's directory; each part is then read straight from the file
//! (stored or deflated, its CRC-32 and size checked) so that the worksheet can stream without
//! borrowing the archive. `quick-xml` reads it event by event. The shared-string table is loaded
//! whole (bounded by [`Limits::max_shared_strings`]), each entry already cleaned and cut to one
//! character over [`Limits::max_cell_chars`].
//!
//! The worksheets are listed in workbook order (`xl/workbook.xml`, resolved through
//! `xl/_rels/workbook.xml.rels`; chart sheets skipped, hidden sheets after the visible ones), with
//! their names; without a workbook, `xl/worksheets/sheet1.xml` is the only one. Which sheet is read
//! is the caller's choice (see [`crate::RosterReader::open_finding`]).
//!
//! Cell values: shared strings (`t="s"`), inline strings (`t="inlineStr"`, rich-text runs
//! concatenated, phonetic runs left out), formula strings (`t="str"`), booleans (`TRUE`/`FALSE`),
//! errors (`#N/A` …) as stored, and numbers (no `t`, or `t="n"`) as Excel shows them: the stored
//! text rounded to 15 significant digits by [`crate::excel_number_text`] (`68.400000000000006` →
//! `68.4`), never through a float. Cells are placed by their reference (`C7`), rows keep the
//! numbers stored in the file.
//!
//! Beyond the [`Limits`], a zip bomb is bounded too: a part may not inflate past 64 times the
//! file-size limit (at least 64 MiB), and no single XML event may span more than 16 MiB.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::DeflateDecoder;
use quick_xml::events::{BytesStart, Event};

use crate::error::column_name;
use crate::{clean_cell, excel_number_text, finish_row, truncate_chars, Limits, RosterFileError};

const OLE_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";
const FALLBACK_SHEET: &str = "xl/worksheets/sheet1.xml";
const WORKBOOK: &str = "xl/workbook.xml";
const WORKBOOK_RELS: &str = "xl/_rels/workbook.xml.rels";
const SHARED_STRINGS: &str = "xl/sharedStrings.xml";
/// Excel's own bounds on a sheet.
const EXCEL_MAX_ROW: usize = 1_048_576;
const EXCEL_MAX_COLUMN: usize = 16_384;
/// A cell holds at most 32 767 characters in Excel, each at most 4 bytes in UTF-8.
const MAX_RAW_CELL_BYTES: usize = 32_767 * 4 + 4096;
/// Most bytes one XML event (a tag, a run of text) may span.
const MAX_EVENT_BYTES: u64 = 16 * 1024 * 1024;
/// Bounds on the small parts' lists.
const MAX_SHEETS: usize = 4096;
const MAX_RELATIONSHIPS: usize = 65_536;

type PartXml = quick_xml::Reader<BufReader<Budget<Checked<EntryReader>>>>;

/// An opened workbook: its worksheets in order and the shared strings, loaded once.
pub(crate) struct XlsxBook {
    package: Package,
    /// Worksheet name (none for the fallback sheet) and where its part is.
    sheets: Vec<(Option<String>, Entry)>,
    shared: Arc<SharedStrings>,
    limits: Limits,
}

pub(crate) struct XlsxRows {
    xml: PartXml,
    buf: Vec<u8>,
    shared: Arc<SharedStrings>,
    limits: Limits,
    state: SheetState,
}

#[derive(Default)]
struct SheetState {
    in_sheet_data: bool,
    seen_sheet_data: bool,
    finished: bool,
    last_row: usize,
    /// Number of the `<row>` being read.
    row: Option<usize>,
    cells: Vec<String>,
    /// Column the next cell without a reference gets (1-based).
    next_column: usize,
    cell: Option<Cell>,
    in_v: bool,
    in_is: bool,
    in_t: bool,
    phonetic_depth: usize,
}

struct Cell {
    column: usize,
    kind: CellKind,
    value: String,
    inline: String,
    has_inline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellKind {
    Shared,
    Inline,
    Bool,
    /// Numbers (no `t`, or `t="n"`): shown as Excel shows them.
    Number,
    /// Formula strings, errors, ISO dates: the text of `<v>` as stored.
    Raw,
}

enum Step {
    Continue,
    Row(usize, Vec<String>),
    End,
}

impl XlsxBook {
    pub(crate) fn open(path: &Path, limits: Limits) -> Result<XlsxBook, RosterFileError> {
        let mut file = File::open(path)?;
        let mut magic = [0u8; 8];
        let got = read_up_to(&mut file, &mut magic)?;
        if magic[..got].starts_with(OLE_MAGIC) {
            return Err(RosterFileError::bad_xlsx(
                "这是旧版Excel（.xls）文件或设置了打开密码的Excel文件，不是.xlsx：请取消密码并另存为 .xlsx",
            ));
        }
        if !magic[..got].starts_with(b"PK") {
            return Err(RosterFileError::bad_xlsx(
                "文件不是xlsx格式（不是zip压缩包），可能是改了扩展名的其他文件",
            ));
        }
        file.seek(SeekFrom::Start(0))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
        let package = Package {
            path: path.to_path_buf(),
            total_budget: limits.max_file_bytes.saturating_mul(64).max(64 << 20),
        };

        let sheet_paths = find_worksheets(&package, &mut archive)?;
        let shared_path = sheet_paths.shared_strings;
        let mut sheets = Vec::new();
        for (name, path) in &sheet_paths.worksheets {
            if let Some(entry) = find_entry(&mut archive, path)? {
                sheets.push((Some(name.clone()), entry));
            }
        }
        if sheets.is_empty() {
            if let Some(entry) = find_entry(&mut archive, FALLBACK_SHEET)? {
                sheets.push((None, entry));
            }
        }
        if sheets.is_empty() {
            return Err(RosterFileError::bad_xlsx(
                "找不到工作表（xlsx文件中没有可读的sheet）",
            ));
        }
        let shared = match find_entry(&mut archive, &shared_path)? {
            Some(entry) => load_shared_strings(package.open(&entry)?, &limits)?,
            None => SharedStrings::default(),
        };
        drop(archive);
        Ok(XlsxBook {
            package,
            sheets,
            shared: Arc::new(shared),
            limits,
        })
    }

    /// Worksheets in the order they are tried: visible ones in tab order, then hidden ones.
    pub(crate) fn sheet_count(&self) -> usize {
        self.sheets.len()
    }

    /// The name of sheet `index` as its tab shows it; `None` for a workbook without a sheet list.
    pub(crate) fn sheet_name(&self, index: usize) -> Option<&str> {
        self.sheets.get(index).and_then(|(name, _)| name.as_deref())
    }

    /// The rows of sheet `index`, streamed from its start.
    pub(crate) fn rows(&self, index: usize) -> Result<XlsxRows, RosterFileError> {
        let (_, entry) = self
            .sheets
            .get(index)
            .ok_or_else(|| RosterFileError::bad_xlsx("找不到工作表"))?;
        Ok(XlsxRows {
            xml: self.package.open(entry)?,
            buf: Vec::new(),
            shared: Arc::clone(&self.shared),
            limits: self.limits,
            state: SheetState {
                next_column: 1,
                ..SheetState::default()
            },
        })
    }
}

impl XlsxRows {
    /// The next `<row>` with its number; rows without content as an empty `Vec`.
    pub(crate) fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, RosterFileError> {
        if self.state.finished {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.read_row(&mut buf);
        self.buf = buf;
        if result.is_err() {
            self.state.finished = true;
        }
        result
    }

    fn read_row(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(usize, Vec<String>)>, RosterFileError> {
        loop {
            buf.clear();
            self.xml.get_mut().get_mut().new_event();
            let event = self.xml.read_event_into(buf).map_err(xml_error)?;
            let step = match &event {
                Event::Start(e) => self.on_start(e, false)?,
                Event::Empty(e) => self.on_start(e, true)?,
                Event::End(e) => self.on_end(e.local_name().as_ref())?,
                Event::Eof => {
                    if self.state.row.is_some() || self.state.in_sheet_data {
                        return Err(RosterFileError::bad_xlsx(
                            "工作表内容不完整（文件可能在传输中被截断）",
                        ));
                    }
                    if !self.state.seen_sheet_data {
                        return Err(RosterFileError::bad_xlsx("工作表中没有数据区（sheetData）"));
                    }
                    Step::End
                }
                other => {
                    if self.capturing() {
                        if let Some(text) = text_of(other)? {
                            self.push_text(&text)?;
                        }
                    }
                    Step::Continue
                }
            };
            match step {
                Step::Continue => {}
                Step::Row(row, cells) => return Ok(Some((row, cells))),
                Step::End => {
                    self.state.finished = true;
                    // Read the rest of the part so that its size and checksum get verified.
                    self.xml.get_mut().get_mut().new_event();
                    io::copy(self.xml.get_mut(), &mut io::sink()).map_err(part_io_error)?;
                    return Ok(None);
                }
            }
        }
    }

    fn capturing(&self) -> bool {
        self.state.cell.is_some() && (self.state.in_v || self.state.in_t)
    }

    fn push_text(&mut self, text: &str) -> Result<(), RosterFileError> {
        let row = self.state.row.unwrap_or(0);
        let in_v = self.state.in_v;
        let Some(cell) = self.state.cell.as_mut() else {
            return Ok(());
        };
        let target = if in_v {
            &mut cell.value
        } else {
            &mut cell.inline
        };
        if target.len().saturating_add(text.len()) > MAX_RAW_CELL_BYTES {
            return Err(RosterFileError::bad_xlsx(format!(
                "{}{row}单元格的内容超过Excel的32767个字符上限",
                column_name(cell.column)
            )));
        }
        target.push_str(text);
        Ok(())
    }

    fn on_start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<Step, RosterFileError> {
        let s = &mut self.state;
        match e.local_name().as_ref() {
            b"sheetData" => {
                s.seen_sheet_data = true;
                if empty {
                    return Ok(Step::End);
                }
                s.in_sheet_data = true;
            }
            b"row" if s.in_sheet_data && s.row.is_none() => {
                let row = match attribute(e, b"r")? {
                    None => s.last_row + 1,
                    Some(text) => match text.parse::<usize>() {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            return Err(RosterFileError::bad_xlsx(format!(
                                "工作表中的行号“{}”无效",
                                shorten(&text)
                            )))
                        }
                    },
                };
                if row <= s.last_row {
                    return Err(RosterFileError::bad_xlsx(format!(
                        "工作表中第{row}行出现在第{}行之后，行的顺序错误",
                        s.last_row
                    )));
                }
                if row > EXCEL_MAX_ROW {
                    return Err(RosterFileError::bad_xlsx(format!(
                        "行号{row}超过Excel的最大行数{EXCEL_MAX_ROW}"
                    )));
                }
                s.last_row = row;
                s.cells.clear();
                s.next_column = 1;
                if empty {
                    return Ok(Step::Row(row, Vec::new()));
                }
                s.row = Some(row);
            }
            b"c" => {
                if let (Some(row), None) = (s.row, s.cell.as_ref()) {
                    let column = match attribute(e, b"r")? {
                        Some(reference) => parse_column(&reference).ok_or_else(|| {
                            RosterFileError::bad_xlsx(format!(
                                "第{row}行的单元格位置“{}”无效",
                                shorten(&reference)
                            ))
                        })?,
                        None => s.next_column,
                    };
                    if column > EXCEL_MAX_COLUMN {
                        return Err(RosterFileError::bad_xlsx(format!(
                            "第{row}行的单元格超出Excel的最大列数"
                        )));
                    }
                    s.next_column = column + 1;
                    if !empty {
                        let kind = match attribute(e, b"t")?.as_deref() {
                            Some("s") => CellKind::Shared,
                            Some("inlineStr") => CellKind::Inline,
                            Some("b") => CellKind::Bool,
                            None | Some("n") => CellKind::Number,
                            _ => CellKind::Raw,
                        };
                        s.cell = Some(Cell {
                            column,
                            kind,
                            value: String::new(),
                            inline: String::new(),
                            has_inline: false,
                        });
                        s.in_v = false;
                        s.in_is = false;
                        s.in_t = false;
                        s.phonetic_depth = 0;
                    }
                }
            }
            b"v" if s.cell.is_some() && !empty => s.in_v = true,
            b"is" => {
                if let Some(cell) = s.cell.as_mut() {
                    cell.has_inline = true;
                    s.in_is = !empty;
                }
            }
            b"rPh" if s.in_is && !empty => s.phonetic_depth += 1,
            b"t" if s.in_is && s.phonetic_depth == 0 && !empty => s.in_t = true,
            _ => {}
        }
        Ok(Step::Continue)
    }

    fn on_end(&mut self, name: &[u8]) -> Result<Step, RosterFileError> {
        match name {
            b"v" => self.state.in_v = false,
            b"t" => self.state.in_t = false,
            b"is" => self.state.in_is = false,
            b"rPh" => self.state.phonetic_depth = self.state.phonetic_depth.saturating_sub(1),
            b"c" => {
                if let Some(cell) = self.state.cell.take() {
                    self.state.in_v = false;
                    self.state.in_t = false;
                    self.state.in_is = false;
                    self.place(cell)?;
                }
            }
            b"row" => {
                if let Some(row) = self.state.row.take() {
                    let cells = std::mem::take(&mut self.state.cells);
                    return Ok(Step::Row(row, finish_row(row, cells, &self.limits)?));
                }
            }
            b"sheetData" => {
                self.state.in_sheet_data = false;
                return Ok(Step::End);
            }
            _ => {}
        }
        Ok(Step::Continue)
    }

    /// Puts a finished cell's cleaned text into the row.
    fn place(&mut self, cell: Cell) -> Result<(), RosterFileError> {
        let row = self.state.row.unwrap_or(0);
        let text = match cell.kind {
            CellKind::Shared => {
                let index = cell.value.trim();
                index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.shared.get(i))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        RosterFileError::bad_xlsx(format!(
                            "{}{row}单元格引用的共享字符串“{}”不存在",
                            column_name(cell.column),
                            shorten(index)
                        ))
                    })?
            }
            CellKind::Bool => match cell.value.trim() {
                "1" => "TRUE".to_owned(),
                "0" => "FALSE".to_owned(),
                other => clean_cell(other),
            },
            CellKind::Number => {
                let stored = clean_cell(&cell.value);
                excel_number_text(&stored).unwrap_or(stored)
            }
            CellKind::Inline if cell.has_inline => clean_cell(&cell.inline),
            CellKind::Inline | CellKind::Raw => clean_cell(&cell.value),
        };
        if text.is_empty() {
            return Ok(());
        }
        if cell.column > self.limits.max_columns {
            return Err(RosterFileError::TooManyColumns {
                row,
                limit: self.limits.max_columns,
            });
        }
        let cells = &mut self.state.cells;
        if cells.len() < cell.column {
            cells.resize(cell.column, String::new());
        }
        if let Some(slot) = cells.get_mut(cell.column - 1) {
            *slot = text;
        }
        Ok(())
    }
}

/// First `max` characters of untrusted text shown in a message.
fn shorten(text: &str) -> String {
    let mut shown = text.to_owned();
    truncate_chars(&mut shown, 20);
    shown
}

/// The column of a cell reference such as `C7` (`C` → 3); `None` if it is not one.
fn parse_column(reference: &str) -> Option<usize> {
    let letters_end = reference
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(reference.len());
    let (letters, digits) = reference.split_at(letters_end);
    if letters.is_empty() || letters.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    letters.bytes().try_fold(0usize, |acc, b| {
        let value = usize::from(b.to_ascii_uppercase() - b'A') + 1;
        acc.checked_mul(26)?.checked_add(value)
    })
}

/// The value of the attribute with local name `local`, unescaped.
fn attribute(e: &BytesStart<'_>, local: &[u8]) -> Result<Option<String>, RosterFileError> {
    for attr in e.attributes() {
        let attr =
            attr.map_err(|err| RosterFileError::bad_xlsx(format!("XML属性格式错误（{err}）")))?;
        if attr.key.local_name().as_ref() == local {
            let value = attr
                .unescape_value()
                .map_err(|err| RosterFileError::bad_xlsx(format!("XML属性格式错误（{err}）")))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// The character data an event carries: text (line ends normalised as XML 1.0 requires), CDATA,
/// or a resolved character or entity reference.
fn text_of<'b>(event: &Event<'b>) -> Result<Option<Cow<'b, str>>, RosterFileError> {
    let encoding = |err: quick_xml::encoding::EncodingError| {
        RosterFileError::bad_xlsx(format!("XML文字编码错误（{err}）"))
    };
    match event {
        Event::Text(t) => t.xml10_content().map(Some).map_err(encoding),
        Event::CData(t) => t.decode().map(Some).map_err(encoding),
        Event::GeneralRef(r) => {
            if r.is_char_ref() {
                match r.resolve_char_ref() {
                    Ok(Some(c)) => Ok(Some(Cow::Owned(c.to_string()))),
                    _ => Err(RosterFileError::bad_xlsx("XML中有无效的字符引用")),
                }
            } else {
                let name = r.decode().map_err(encoding)?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(text) => Ok(Some(Cow::Borrowed(text))),
                    None => Err(RosterFileError::bad_xlsx(format!(
                        "XML中有未知的实体“&{};”",
                        shorten(&name)
                    ))),
                }
            }
        }
        _ => Ok(None),
    }
}

fn xml_error(err: quick_xml::Error) -> RosterFileError {
    match err {
        quick_xml::Error::Io(io) => match Arc::try_unwrap(io) {
            Ok(io) => part_io_error(io),
            Err(shared) => RosterFileError::Io(io::Error::new(shared.kind(), shared.to_string())),
        },
        other => RosterFileError::bad_xlsx(format!("工作表XML格式错误（{other}）")),
    }
}

/// An I/O error while reading a part: ours passed through, corrupt compressed data as
/// [`RosterFileError::BadXlsx`], the rest as [`RosterFileError::Io`].
fn part_io_error(io: io::Error) -> RosterFileError {
    match RosterFileError::from_io(io) {
        RosterFileError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            RosterFileError::bad_xlsx(format!("文件已损坏，无法解压（{io}）"))
        }
        other => other,
    }
}

fn zip_error(err: zip::result::ZipError) -> RosterFileError {
    match err {
        zip::result::ZipError::Io(io) if io.kind() != io::ErrorKind::UnexpectedEof => {
            RosterFileError::Io(io)
        }
        other => RosterFileError::bad_xlsx(format!(
            "文件不是有效的xlsx（zip）文件，可能已损坏或不完整（{other}）"
        )),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Where a part's bytes are in the file.
#[derive(Clone)]
struct Entry {
    data_start: u64,
    compressed_size: u64,
    size: u64,
    crc32: u32,
    method: zip::CompressionMethod,
}

/// The part named `name` (exactly, else ignoring ASCII case), if the archive has it.
fn find_entry(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    name: &str,
) -> Result<Option<Entry>, RosterFileError> {
    let index = match archive.index_for_name(name) {
        Some(index) => index,
        None => {
            let found = archive
                .file_names()
                .filter_map(Result::ok)
                .find(|candidate| candidate.eq_ignore_ascii_case(name))
                .map(|candidate| candidate.into_owned());
            match found.and_then(|candidate| archive.index_for_name(&candidate)) {
                Some(index) => index,
                None => return Ok(None),
            }
        }
    };
    let file = archive.by_index_raw(index).map_err(zip_error)?;
    if file.encrypted() {
        return Err(RosterFileError::bad_xlsx(
            "文件设置了密码，请在Excel中取消密码后再上传",
        ));
    }
    let data_start = file
        .data_start()
        .ok_or_else(|| RosterFileError::bad_xlsx("文件结构异常（找不到数据位置）"))?;
    Ok(Some(Entry {
        data_start,
        compressed_size: file.compressed_size(),
        size: file.size(),
        crc32: file.crc32(),
        method: file.compression(),
    }))
}

struct Package {
    path: PathBuf,
    total_budget: u64,
}

impl Package {
    /// An XML reader over one part, read from its own handle on the file.
    fn open(&self, entry: &Entry) -> Result<PartXml, RosterFileError> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(entry.data_start))?;
        let raw = file.take(entry.compressed_size);
        let inner = if entry.method == zip::CompressionMethod::STORE {
            EntryReader::Stored(raw)
        } else if entry.method == zip::CompressionMethod::DEFLATE {
            EntryReader::Deflated(Box::new(DeflateDecoder::new(raw)))
        } else {
            return Err(RosterFileError::bad_xlsx(format!(
                "不支持的压缩方式（{:?}），请用Excel重新保存",
                entry.method
            )));
        };
        let checked = Checked {
            inner,
            hasher: crc32fast::Hasher::new(),
            expected_crc: entry.crc32,
            expected_size: entry.size,
            seen: 0,
        };
        let budget = Budget {
            inner: checked,
            event_left: MAX_EVENT_BYTES,
            total_left: self.total_budget,
        };
        Ok(quick_xml::Reader::from_reader(BufReader::new(budget)))
    }
}

enum EntryReader {
    Stored(Take<File>),
    Deflated(Box<DeflateDecoder<Take<File>>>),
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            EntryReader::Stored(r) => r.read(buf),
            EntryReader::Deflated(r) => r.read(buf),
        }
    }
}

/// Checks a part's size and CRC-32 against the zip directory when it ends.
struct Checked<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    expected_crc: u32,
    expected_size: u64,
    seen: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.seen != self.expected_size
                || self.hasher.clone().finalize() != self.expected_crc
            {
                return Err(RosterFileError::bad_xlsx("文件已损坏（校验不通过）").into_io());
            }
            return Ok(0);
        }
        self.seen = self.seen.saturating_add(n as u64);
        if self.seen > self.expected_size {
            return Err(RosterFileError::bad_xlsx("文件已损坏（解压后大小不符）").into_io());
        }
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Bounds what a part may inflate to, in all and between two XML events.
struct Budget<R> {
    inner: R,
    event_left: u64,
    total_left: u64,
}

impl<R> Budget<R> {
    fn new_event(&mut self) {
        self.event_left = MAX_EVENT_BYTES;
    }
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.total_left == 0 {
            return Err(RosterFileError::bad_xlsx("解压后的内容过大，文件内容异常").into_io());
        }
        if self.event_left == 0 {
            return Err(RosterFileError::bad_xlsx("单个XML元素超过16MB，文件内容异常").into_io());
        }
        let allowed = self.event_left.min(self.total_left);
        let max = usize::try_from(allowed)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.event_left -= n as u64;
        self.total_left -= n as u64;
        Ok(n)
    }
}

/// The shared-string table: all entries in one buffer, cleaned and cut to `max_cell_chars + 1`
/// characters (enough to tell a too-long cell).
#[derive(Default)]
struct SharedStrings {
    text: String,
    ends: Vec<usize>,
}

impl SharedStrings {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.ends.get(previous)?,
            None => 0,
        };
        self.text.get(start..end)
    }
}

fn load_shared_strings(
    mut xml: PartXml,
    limits: &Limits,
) -> Result<SharedStrings, RosterFileError> {
    let mut table = SharedStrings::default();
    let mut buf = Vec::new();
    let mut current = String::new();
    let mut in_si = false;
    let mut in_t = false;
    let mut phonetic_depth = 0usize;
    let add = |table: &mut SharedStrings, text: &str| {
        if table.len() >= limits.max_shared_strings {
            return Err(RosterFileError::TooManySharedStrings {
                limit: limits.max_shared_strings,
            });
        }
        let mut cleaned = clean_cell(text);
        truncate_chars(&mut cleaned, limits.max_cell_chars.saturating_add(1));
        table.push(&cleaned);
        Ok(())
    };
    loop {
        buf.clear();
        xml.get_mut().get_mut().new_event();
        let event = xml.read_event_into(&mut buf).map_err(xml_error)?;
        match &event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"si" => {
                    in_si = true;
                    in_t = false;
                    phonetic_depth = 0;
                    current.clear();
                }
                b"rPh" if in_si => phonetic_depth += 1,
                b"t" if in_si && phonetic_depth == 0 => in_t = true,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == b"si" => add(&mut table, "")?,
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_t = false,
                b"rPh" => phonetic_depth = phonetic_depth.saturating_sub(1),
                b"si" if in_si => {
                    in_si = false;
                    add(&mut table, &current)?;
                }
                _ => {}
            },
            Event::Eof => return Ok(table),
            other => {
                if in_t {
                    if let Some(text) = text_of(other)? {
                        if current.len().saturating_add(text.len()) > MAX_RAW_CELL_BYTES {
                            return Err(RosterFileError::bad_xlsx(format!(
                                "第{}个共享字符串超过Excel的32767个字符上限",
                                table.len() + 1
                            )));
                        }
                        current.push_str(&text);
                    }
                }
            }
        }
    }
}

/// The worksheets to try, in order, as (name, part), and the shared-string part.
struct SheetPaths {
    worksheets: Vec<(String, String)>,
    shared_strings: String,
}

/// Reads the workbook and its relationships; a missing or unreadable workbook leaves only the
/// fallback sheet, a malformed one is an error.
fn find_worksheets(
    package: &Package,
    archive: &mut zip::ZipArchive<BufReader<File>>,
) -> Result<SheetPaths, RosterFileError> {
    let mut paths = SheetPaths {
        worksheets: Vec::new(),
        shared_strings: SHARED_STRINGS.to_owned(),
    };
    let (Some(workbook), Some(rels)) = (
        find_entry(archive, WORKBOOK)?,
        find_entry(archive, WORKBOOK_RELS)?,
    ) else {
        return Ok(paths);
    };
    let sheets = read_sheets(package.open(&workbook)?)?;
    let relationships = read_relationships(package.open(&rels)?)?;
    if let Some(rel) = relationships
        .values()
        .find(|rel| rel.kind.ends_with("/sharedStrings"))
    {
        paths.shared_strings = resolve_target("xl", &rel.target);
    }
    let worksheets: Vec<(String, String, bool)> = sheets
        .iter()
        .filter_map(|sheet| {
            let rel = relationships.get(&sheet.id)?;
            rel.kind.ends_with("/worksheet").then(|| {
                (
                    sheet.name.clone(),
                    resolve_target("xl", &rel.target),
                    sheet.hidden,
                )
            })
        })
        .collect();
    paths.worksheets = worksheets
        .iter()
        .filter(|(_, _, hidden)| !hidden)
        .chain(worksheets.iter().filter(|(_, _, hidden)| *hidden))
        .map(|(name, path, _)| (name.clone(), path.clone()))
        .collect();
    Ok(paths)
}

struct SheetRef {
    id: String,
    name: String,
    hidden: bool,
}

fn read_sheets(mut xml: PartXml) -> Result<Vec<SheetRef>, RosterFileError> {
    let mut sheets = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        xml.get_mut().get_mut().new_event();
        match xml.read_event_into(&mut buf).map_err(xml_error)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"sheet" => {
                if sheets.len() >= MAX_SHEETS {
                    return Err(RosterFileError::bad_xlsx("工作簿中的工作表过多"));
                }
                let Some(id) = attribute(&e, b"id")? else {
                    continue;
                };
                let hidden = matches!(
                    attribute(&e, b"state")?.as_deref(),
                    Some("hidden" | "veryHidden")
                );
                let mut name = attribute(&e, b"name")?.unwrap_or_default();
                truncate_chars(&mut name, 64);
                sheets.push(SheetRef { id, name, hidden });
            }
            Event::End(e) if e.local_name().as_ref() == b"sheets" => return Ok(sheets),
            Event::Eof => return Ok(sheets),
            _ => {}
        }
    }
}

struct Relationship {
    kind: String,
    target: String,
}

fn read_relationships(mut xml: PartXml) -> Result<HashMap<String, Relationship>, RosterFileError> {
    let mut relationships = HashMap::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        xml.get_mut().get_mut().new_event();
        match xml.read_event_into(&mut buf).map_err(xml_error)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Relationship" => {
                if relationships.len() >= MAX_RELATIONSHIPS {
                    return Err(RosterFileError::bad_xlsx("工作簿中的关联项过多"));
                }
                if attribute(&e, b"TargetMode")?.as_deref() == Some("External") {
                    continue;
                }
                if let (Some(id), Some(kind), Some(target)) = (
                    attribute(&e, b"Id")?,
                    attribute(&e, b"Type")?,
                    attribute(&e, b"Target")?,
                ) {
                    relationships.insert(id, Relationship { kind, target });
                }
            }
            Event::Eof => return Ok(relationships),
            _ => {}
        }
    }
}

/// A relationship target as a part name: relative to `base` unless absolute, `.` and `..`
/// resolved.
fn resolve_target(base: &str, target: &str) -> String {
    let target = target.replace('\\', "/");
    let joined = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("{base}/{target}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_from_references() {
        assert_eq!(parse_column("A1"), Some(1));
        assert_eq!(parse_column("C7"), Some(3));
        assert_eq!(parse_column("AA10"), Some(27));
        assert_eq!(parse_column("xfd1048576"), Some(16384));
        assert_eq!(parse_column("ZZZ1"), Some(18278));
        assert_eq!(parse_column("ABCD1"), None);
        assert_eq!(parse_column("1"), None);
        assert_eq!(parse_column("A1B"), None);
        assert_eq!(parse_column(""), None);
    }

    #[test]
    fn targets_resolve_like_part_names() {
        assert_eq!(
            resolve_target("xl", "worksheets/sheet1.xml"),
            "xl/worksheets/sheet1.xml"
        );
        assert_eq!(
            resolve_target("xl", "/xl/worksheets/sheet2.xml"),
            "xl/worksheets/sheet2.xml"
        );
        assert_eq!(
            resolve_target("xl", "../xl/./worksheets/s.xml"),
            "xl/worksheets/s.xml"
        );
    }

    #[test]
    fn shared_strings_table() {
        let mut table = SharedStrings::default();
        table.push("张三");
        table.push("");
        table.push("b");
        assert_eq!(table.get(0), Some("张三"));
        assert_eq!(table.get(1), Some(""));
        assert_eq!(table.get(2), Some("b"));
        assert_eq!(table.get(3), None);
    }
}
