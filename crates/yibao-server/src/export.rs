//! Exports for staff: the standing list as XLSX, and the printable public listing of the paid.

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, Workbook};
use yibao_domain::{FeeYear, IdNumber, PersonName, RegionCode, StationCode};
use yibao_storage::StandingRow;

use crate::error::ApiError;

/// The standing list as an XLSX workbook. Amounts are written as text in yuan (`430.00`): the
/// workbook never holds a floating-point amount.
pub fn standing_xlsx(
    rows: &[[String; 6]],
    region: RegionCode,
    fee_year: FeeYear,
) -> Result<Vec<u8>, ApiError> {
    table_xlsx(
        &format!("{region}-{fee_year}"),
        &[
            "服务站",
            "姓名",
            "身份证号码",
            "状态",
            "原因",
            "应缴金额（元）",
        ],
        rows,
        &[(2, 22), (4, 40)],
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn mask_name(name: &str) -> String {
    PersonName::parse(name).map_or_else(|_| "*".to_owned(), |n| n.masked())
}

fn mask_id(id: &str) -> String {
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
            escape(&mask_id(&row.id_number))
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

/// A table as an XLSX workbook: one sheet, a bold header row, every cell text (amounts already
/// written in yuan by the caller, so the workbook never holds a floating-point amount), and the
/// column widths given as (column, width).
pub fn table_xlsx<R: AsRef<[String]>>(
    name: &str,
    headers: &[&str],
    rows: &[R],
    widths: &[(u16, u16)],
) -> Result<Vec<u8>, ApiError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let xlsx = |e: rust_xlsxwriter::XlsxError| ApiError::internal("xlsx", e);
    sheet.set_name(name).map_err(xlsx)?;
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let column = |c: usize| u16::try_from(c).map_err(|e| ApiError::internal("xlsx columns", e));
    for (col, title) in headers.iter().enumerate() {
        sheet
            .write_string_with_format(0, column(col)?, *title, &bold)
            .map_err(xlsx)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = u32::try_from(i + 1).map_err(|e| ApiError::internal("xlsx rows", e))?;
        for (col, value) in row.as_ref().iter().enumerate() {
            sheet
                .write_string_with_format(r, column(col)?, value, &text)
                .map_err(xlsx)?;
        }
    }
    for (col, width) in widths {
        sheet.set_column_width(*col, *width).map_err(xlsx)?;
    }
    workbook.save_to_buffer().map_err(xlsx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_masks_and_escapes() {
        let row = |name: &str, id: &str, standing: &str| StandingRow {
            region: "320600".into(),
            station_code: Some("CZ-01".into()),
            id_number: id.into(),
            name: name.into(),
            standing: standing.into(),
            detail: None,
            amount_fen: Some(43000),
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
    fn xlsx_is_a_zip() {
        let rows = vec![[
            "CZ-01".to_owned(),
            "张三".to_owned(),
            "320602198001011235".to_owned(),
            "未缴费".to_owned(),
            "未缴费".to_owned(),
            "430.00".to_owned(),
        ]];
        let bytes = standing_xlsx(
            &rows,
            RegionCode::parse("320600").unwrap(),
            FeeYear::new(2021).unwrap(),
        )
        .unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }
}
