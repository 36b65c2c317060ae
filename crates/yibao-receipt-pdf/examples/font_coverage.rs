//! Prints, as a Markdown table, how many code points of each Han block ([`HAN_BLOCKS`]) each
//! font given on the command line draws, and the chain of all of them (first font = main font).
//! `docs/fonts.md` was written from its output:
//!
//! ```sh
//! cargo run -p yibao-receipt-pdf --example font_coverage -- \
//!     /usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
//!     /usr/share/fonts/truetype/hanazono/HanaMinA.ttf \
//!     /usr/share/fonts/truetype/hanazono/HanaMinB.ttf \
//!     /usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf
//! ```

use std::path::PathBuf;

use yibao_receipt_pdf::{ReceiptFont, ReceiptFonts, HAN_BLOCKS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((main, fallbacks)) = paths.split_first() else {
        return Err("usage: font_coverage MAIN_FONT [FALLBACK_FONT…]".into());
    };
    let mut columns = Vec::new();
    let main_font = ReceiptFont::load(main)?;
    let mut chain = ReceiptFonts::new(main_font.clone());
    columns.push((
        main_font.postscript_name().to_owned(),
        ReceiptFonts::new(main_font).han_coverage()?,
    ));
    for path in fallbacks {
        let font = ReceiptFont::load_fallback(path)?;
        columns.push((
            font.postscript_name().to_owned(),
            ReceiptFonts::new(font.clone()).han_coverage()?,
        ));
        chain = chain.with_fallback(font)?;
    }
    columns.push(("chain".to_owned(), chain.han_coverage()?));

    print!("| block | assigned |");
    for (name, _) in &columns {
        print!(" {name} |");
    }
    println!();
    print!("| --- | ---: |");
    for _ in &columns {
        print!(" ---: |");
    }
    println!();
    for (i, block) in HAN_BLOCKS.iter().enumerate() {
        print!(
            "| {} ({:04X}–) | {} |",
            block.short,
            block.assigned[0].start(),
            block.assigned_count()
        );
        for (_, coverage) in &columns {
            print!(" {} |", coverage[i].covered);
        }
        println!();
    }
    Ok(())
}
