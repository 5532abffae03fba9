//! Writes the typed chat's AsyncAPI document and TypeScript/JavaScript client into
//! `static/generated/` (or the directory given as the first argument):
//!
//! ```text
//! cargo xtask asyncapi        # or: cargo run -p examples --example asyncapi [DIR]
//! ```
//!
//! `tests/asyncapi.rs` fails when the checked-in files differ from what this writes.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/generated")
        });
    std::fs::create_dir_all(&dir)?;
    for (name, contents) in examples::typed_chat::generated_files()? {
        let path = dir.join(name);
        std::fs::write(&path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
