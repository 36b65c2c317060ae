//! Exports for staff: XLSX reports (the unpaid list, collection, refunds, reconciliation) and the
//! printable public listing of the paid.
//!
//! Every XLSX report has the same shape: a title row naming the region (or channel) and period, a
//! bold header row frozen under it, one row per record with counts and amounts as numbers (amounts
//! in yuan with a `0.00` format, so Excel can sum them), a totals row, and notes (warnings) below.
//! Its file name carries the region and date, in ASCII and, for Chinese, RFC 5987 `filename*`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_xlsxwriter::{Format, FormatAlign, Workbook};
use yibao_domain::{FeeYear, IdNumber, PersonName, StationCode};
use yibao_storage::StandingRow;

use crate::error::ServiceError;

/// The XLSX content type.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One cell of a report row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// A count: a number, summed in the totals row.
    Count(i64),
    /// An amount in fen, written as yuan with two decimals: a number, summed in the totals row.
    Yuan(i64),
    Empty,
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }
}

/// A column: its header and width (characters).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub width: u16,
}

pub const fn column(header: &'static str, width: u16) -> Column {
    Column { header, width }
}

/// A report as one XLSX sheet.
#[derive(Debug, Clone)]
pub struct XlsxReport {
    /// ASCII file name without extension, e.g. `unpaid-320600-2021-20201102`.
    pub file_stem: String,
    /// Chinese file name without extension, e.g. `南通市2021年度未缴费名单-2020-11-02`.
    pub file_title: String,
    /// The sheet's name (at most 31 characters).
    pub sheet_name: String,
    /// The title row: what, which region or channel, which period.
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// The totals row's first cell, e.g. `合计（3 人）`.
    pub totals_label: String,
    /// Lines written under the totals (warnings for staff).
    pub notes: Vec<String>,
}

/// An amount in fen as the number of yuan Excel stores. `fen / 100` in binary floating point is the
/// double nearest the exact decimal (both operands are exact), which the workbook's XML writes as
/// its shortest decimal: 1999 fen is `19.99` in the file, never `19.989999999999998`.
fn yuan_number(fen: i64) -> f64 {
    // Amounts are bounded far below 2^53 fen (`Fen`), so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let exact = fen as f64;
    exact / 100.0
}

impl XlsxReport {
    /// The workbook's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ServiceError> {
        let mut stream = XlsxStream::begin(self)?;
        for row in &self.rows {
            stream.row(row)?;
        }
        stream.finish(&self.totals_label, &self.notes)
    }

    /// The HTTP answer: the workbook as an attachment named after the report.
    pub fn into_response(self) -> Result<Response, ServiceError> {
        let bytes = self.to_bytes()?;
        Ok(self.attachment(bytes))
    }

    /// `bytes` (this report's workbook) as an attachment named after the report.
    pub fn attachment(&self, bytes: Vec<u8>) -> Response {
        (
            [
                (header::CONTENT_TYPE, XLSX_CONTENT_TYPE.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    content_disposition(&self.file_stem, &self.file_title),
                ),
            ],
            bytes,
        )
            .into_response()
    }
}

/// A report's sheet written a row at a time: rust_xlsxwriter's constant memory mode writes each
/// finished row to a temporary file, so that a list of 100 000 people costs a few megabytes
/// whatever its length (the rows are never all in memory, nor their strings in a shared table).
/// The title, header and column widths come from a report (its rows are not read); the totals
/// row sums the count and amount columns as the rows go by.
pub struct XlsxStream {
    workbook: Workbook,
    text: Format,
    money: Format,
    count: Format,
    sums: Vec<Option<Cell>>,
    /// The next row's index (after the title and header rows).
    next_row: u32,
}

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> ServiceError {
    ServiceError::internal("xlsx", e)
}

fn column_index(n: usize) -> Result<u16, ServiceError> {
    u16::try_from(n).map_err(|e| ServiceError::internal("xlsx columns", e))
}

impl XlsxStream {
    /// The sheet of `report` with its title and header rows (its rows are not written).
    pub fn begin(report: &XlsxReport) -> Result<XlsxStream, ServiceError> {
        let mut workbook = Workbook::new();
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name(&report.sheet_name).map_err(xlsx_error)?;
        let title = Format::new().set_bold().set_font_size(14);
        let bold = Format::new().set_bold().set_align(FormatAlign::Center);
        for (c, col) in report.columns.iter().enumerate() {
            sheet
                .set_column_width(column_index(c)?, col.width)
                .map_err(xlsx_error)?;
        }
        let last = column_index(report.columns.len().max(1) - 1)?;
        if last > 0 {
            sheet
                .merge_range(0, 0, 0, last, &report.title, &title)
                .map_err(xlsx_error)?;
        } else {
            sheet
                .write_string_with_format(0, 0, &report.title, &title)
                .map_err(xlsx_error)?;
        }
        for (c, col) in report.columns.iter().enumerate() {
            sheet
                .write_string_with_format(1, column_index(c)?, col.header, &bold)
                .map_err(xlsx_error)?;
        }
        sheet.set_freeze_panes(2, 0).map_err(xlsx_error)?;
        Ok(XlsxStream {
            workbook,
            text: Format::new().set_num_format("@"),
            money: Format::new().set_num_format("0.00"),
            count: Format::new().set_num_format("0"),
            sums: vec![None; report.columns.len()],
            next_row: 2,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        usize::try_from(self.next_row - 2).unwrap_or(usize::MAX)
    }

    /// Writes the next row.
    pub fn row(&mut self, row: &[Cell]) -> Result<(), ServiceError> {
        let r = self.next_row;
        let sheet = self.workbook.worksheet_from_index(0).map_err(xlsx_error)?;
        for (c, cell) in row.iter().enumerate() {
            let col = column_index(c)?;
            match cell {
                Cell::Text(value) => {
                    sheet
                        .write_string_with_format(r, col, value, &self.text)
                        .map_err(xlsx_error)?;
                }
                Cell::Count(n) => {
                    #[allow(clippy::cast_precision_loss)]
                    let value = *n as f64;
                    sheet
                        .write_number_with_format(r, col, value, &self.count)
                        .map_err(xlsx_error)?;
                    add(&mut self.sums, c, Cell::Count(*n))?;
                }
                Cell::Yuan(fen) => {
                    sheet
                        .write_number_with_format(r, col, yuan_number(*fen), &self.money)
                        .map_err(xlsx_error)?;
                    add(&mut self.sums, c, Cell::Yuan(*fen))?;
                }
                Cell::Empty => {}
            }
        }
        self.next_row = r
            .checked_add(1)
            .ok_or_else(|| ServiceError::internal("xlsx rows", "too many rows"))?;
        Ok(())
    }

    /// The totals row, the notes under it, and the workbook's bytes.
    pub fn finish(mut self, totals_label: &str, notes: &[String]) -> Result<Vec<u8>, ServiceError> {
        let totals = self.next_row;
        let total_money = Format::new().set_bold().set_num_format("0.00");
        let total_count = Format::new().set_bold().set_num_format("0");
        let total_text = Format::new().set_bold();
        let sheet = self.workbook.worksheet_from_index(0).map_err(xlsx_error)?;
        sheet
            .write_string_with_format(totals, 0, totals_label, &total_text)
            .map_err(xlsx_error)?;
        for (c, sum) in self.sums.iter().enumerate() {
            let col = column_index(c)?;
            match sum {
                Some(Cell::Count(n)) if c > 0 => {
                    #[allow(clippy::cast_precision_loss)]
                    let value = *n as f64;
                    sheet
                        .write_number_with_format(totals, col, value, &total_count)
                        .map_err(xlsx_error)?;
                }
                Some(Cell::Yuan(fen)) if c > 0 => {
                    sheet
                        .write_number_with_format(totals, col, yuan_number(*fen), &total_money)
                        .map_err(xlsx_error)?;
                }
                _ => {}
            }
        }
        for (i, note) in notes.iter().enumerate() {
            let r = u32::try_from(i)
                .ok()
                .and_then(|i| totals.checked_add(2 + i))
                .ok_or_else(|| ServiceError::internal("xlsx rows", "too many rows"))?;
            sheet.write_string(r, 0, note).map_err(xlsx_error)?;
        }
        self.workbook.save_to_buffer().map_err(xlsx_error)
    }
}

fn add(sums: &mut [Option<Cell>], column: usize, cell: Cell) -> Result<(), ServiceError> {
    let overflow = || ServiceError::internal("xlsx totals", "sum overflows");
    let Some(slot) = sums.get_mut(column) else {
        return Ok(());
    };
    *slot = Some(match (slot.take(), cell) {
        (None, cell) => cell,
        (Some(Cell::Count(a)), Cell::Count(b)) => {
            Cell::Count(a.checked_add(b).ok_or_else(overflow)?)
        }
        (Some(Cell::Yuan(a)), Cell::Yuan(b)) => Cell::Yuan(a.checked_add(b).ok_or_else(overflow)?),
        (Some(other), _) => other,
    });
    Ok(())
}

/// `attachment` with an ASCII `filename` and the Chinese one as RFC 5987 `filename*`.
pub fn content_disposition(ascii_stem: &str, title: &str) -> String {
    let ascii: String = ascii_stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in format!("{title}.xlsx").bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}.xlsx\"; filename*=UTF-8''{encoded}")
}

/// `南通市（320600）` or the code alone when the region is not registered.
pub fn region_label(code: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name}（{code}）"),
        None => code.to_owned(),
    }
}

/// Channel kinds in Chinese (the `channels.kind` codes), as
/// [`crate::services::accounts::CHANNEL_KINDS`] names them; `其他渠道` for a code it does not know.
pub fn channel_kind_zh(kind: &str) -> &'static str {
    crate::services::accounts::CHANNEL_KINDS
        .iter()
        .find(|(code, _)| *code == kind)
        .map_or("其他渠道", |(_, name)| *name)
}

/// The standing list (everyone, or the unpaid list) of a region or station as a report.
pub fn standing_report(
    rows: &[StandingRow],
    region_code: &str,
    region_name: Option<&str>,
    fee_year: FeeYear,
    station: Option<&StationCode>,
    only_unpaid: bool,
    today: NaiveDate,
) -> XlsxReport {
    let mut report = standing_report_shell(
        region_code,
        region_name,
        fee_year,
        station,
        only_unpaid,
        today,
    );
    report.rows = rows.iter().map(standing_cells).collect();
    report.totals_label = standing_totals_label(rows.len());
    report
}

/// The standing report's title, columns and notes, without rows (for [`XlsxStream`]).
pub fn standing_report_shell(
    region_code: &str,
    region_name: Option<&str>,
    fee_year: FeeYear,
    station: Option<&StationCode>,
    only_unpaid: bool,
    today: NaiveDate,
) -> XlsxReport {
    let what = if only_unpaid {
        "未缴费名单"
    } else {
        "参保缴费情况"
    };
    let scope = station.map_or_else(String::new, |s| format!("服务站 {} ", s.as_str()));
    let stem_station = station.map_or_else(String::new, |s| format!("-{}", s.as_str()));
    let kind = if only_unpaid { "unpaid" } else { "standing" };
    XlsxReport {
        file_stem: format!(
            "{kind}-{region_code}-{fee_year}{stem_station}-{}",
            today.format("%Y%m%d")
        ),
        file_title: format!(
            "{}{fee_year}年度{what}{}-{today}",
            region_name.unwrap_or(region_code),
            station.map_or_else(String::new, |s| format!("-{}", s.as_str()))
        ),
        sheet_name: what.to_owned(),
        title: format!(
            "{} {scope}{fee_year}年度城乡居民医保{what}（导出日期 {today}）",
            region_label(region_code, region_name)
        ),
        columns: vec![
            column("服务站", 10),
            column("姓名", 12),
            column("身份证号码", 22),
            column("联系电话", 15),
            column("状态", 16),
            column("原因", 40),
            column("应缴金额（元）", 14),
        ],
        rows: Vec::new(),
        totals_label: standing_totals_label(0),
        notes: vec![
            "本表含完整身份证号码、姓名和电话，仅供服务站催缴使用，下载已记入审计日志。".to_owned(),
        ],
    }
}

/// The totals row's label of a standing report of `people` rows.
pub fn standing_totals_label(people: usize) -> String {
    format!("合计（{people} 人）")
}

/// One person's row of the standing report.
pub fn standing_cells(r: &StandingRow) -> Vec<Cell> {
    let mut reason = yibao_storage::records::standing_name_zh(&r.standing).to_owned();
    if let Some(detail) = &r.detail {
        reason.push('：');
        reason.push_str(detail);
    }
    vec![
        Cell::text(r.station_code.clone().unwrap_or_default()),
        Cell::text(&r.name),
        Cell::text(r.id_number.as_str()),
        r.phone.clone().map_or(Cell::Empty, Cell::Text),
        Cell::text(yibao_storage::records::standing_name_zh(&r.standing)),
        Cell::Text(reason),
        r.amount_fen.map_or(Cell::Empty, Cell::Yuan),
    ]
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A name as lists show it (张*三); "*" for one that does not parse.
pub fn mask_name(name: &str) -> String {
    PersonName::parse(name).map_or_else(|_| "*".to_owned(), |n| n.masked())
}

/// An ID number as lists show it (320602**********12).
pub fn mask_id(id: &str) -> String {
    IdNumber::parse(id, NaiveDate::MAX).map_or_else(
        |_| "******************".to_owned(),
        |p| p.id_number.masked(),
    )
}

/// A printable HTML page listing the paid of a region or station, masked (张*三, 320602**********12).
pub fn paid_listing_html(
    region_name: &str,
    fee_year: FeeYear,
    station: Option<&StationCode>,
    rows: &[StandingRow],
    today: NaiveDate,
) -> String {
    let scope = station.map_or_else(String::new, |s| {
        format!("（服务站 {}）", escape(s.as_str()))
    });
    let mut body = String::new();
    let mut n = 0;
    for row in rows.iter().filter(|r| r.standing == "paid") {
        n += 1;
        body.push_str(&format!(
            "<tr><td>{n}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&mask_name(&row.name)),
            escape(&row.id_number.masked())
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{region} {fee_year}年度城乡居民医保缴费公示</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #444;padding:.3em .8em}}@media print{{button{{display:none}}}}</style></head>\
         <body><h1>{region} {fee_year}年度城乡居民基本医疗保险缴费公示{scope}</h1>\
         <p>以下居民已缴纳{fee_year}年度城乡居民基本医疗保险费（共{n}人）。姓名和身份证号码已部分隐藏。</p>\
         <table><thead><tr><th>序号</th><th>姓名</th><th>身份证号码</th></tr></thead><tbody>\n{body}</tbody></table>\
         <p>公示日期：{today}</p><button onclick=\"window.print()\">打印</button></body></html>\n",
        region = escape(region_name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use yibao_domain::Fen;

    #[test]
    fn listing_masks_and_escapes() {
        let row = |name: &str, id: &str, standing: &str| StandingRow {
            region: "320600".parse().unwrap(),
            station_code: Some("CZ-01".into()),
            id_number: IdNumber::try_from(id.to_owned()).unwrap(),
            name: name.into(),
            standing: standing.into(),
            detail: None,
            amount_fen: Some(43000),
            phone: None,
        };
        let rows = vec![
            row("张三丰", "320602198001011235", "paid"),
            row("李四", "11010519491231002X", "unpaid"),
        ];
        let html = paid_listing_html(
            "南通<市>",
            FeeYear::new(2021).unwrap(),
            None,
            &rows,
            NaiveDate::from_ymd_opt(2020, 12, 1).unwrap(),
        );
        assert!(html.contains("张*丰"));
        assert!(html.contains("320602**********35"));
        assert!(!html.contains("320602198001011235"));
        assert!(!html.contains("李"), "unpaid people are not listed");
        assert!(html.contains("南通&lt;市&gt;"));
        assert!(html.contains("共1人"));
    }

    #[test]
    fn yuan_numbers_are_the_exact_decimals() {
        for fen in [0, 1, 10, 1999, 6840, 43000, 172000, 9_999_999_999] {
            let shown = format!("{}", yuan_number(fen));
            let exact = Fen::new(fen).unwrap().to_yuan_string();
            let trimmed = exact.trim_end_matches('0').trim_end_matches('.');
            assert_eq!(shown, trimmed, "{fen} fen");
        }
    }

    #[test]
    fn file_names_carry_chinese_in_rfc5987() {
        let header = content_disposition("unpaid-320600-2021-20201102", "南通市2021年度未缴费名单");
        assert!(header.starts_with("attachment; filename=\"unpaid-320600-2021-20201102.xlsx\"; filename*=UTF-8''%E5%8D%97"), "{header}");
        assert!(
            header.ends_with(
                "2021%E5%B9%B4%E5%BA%A6%E6%9C%AA%E7%BC%B4%E8%B4%B9%E5%90%8D%E5%8D%95.xlsx"
            ),
            "{header}"
        );
        assert!(header.is_ascii());
    }
}
