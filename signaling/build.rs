//! Embeds the browser client: walks `web/` at the workspace root and writes a table of every file
//! in it (path relative to `web/`, content type, `include_bytes!` of the file) to
//! `$OUT_DIR/web_assets.rs`, which `src/assets.rs` includes.
//!
//! Adding a file under `web/` needs no change here or in the server: the next `cargo build`
//! embeds it and serves it at `/static/<path>`. Hidden files (a name starting with `.`) and editor
//! backups (ending in `~`) are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.join("../web");
    // A directory here makes Cargo rebuild when any file under it changes (or is added).
    println!("cargo:rerun-if-changed={}", web.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    walk(&web, "", &mut files);
    files.sort();

    let mut out = String::from(
        "/// Every file under `web/`: (path relative to `web/`, content type, bytes). Sorted by path.\n\
         pub(crate) static FILES: &[(&str, &str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        let content_type = content_type(rel);
        let abs = abs.to_str().expect("web/ paths must be UTF-8");
        writeln!(
            out,
            "    ({rel:?}, {content_type:?}, include_bytes!({abs:?})),"
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("web_assets.rs");
    fs::write(dest, out).expect("write web_assets.rs");
}

/// Collects `(relative path with '/' separators, absolute path)` of every file under `dir`.
fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("read a web/ directory entry");
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            panic!("web/ file names must be UTF-8: {:?}", entry.path());
        };
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let path = entry.path();
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            walk(&path, &format!("{rel}/"), files);
        } else {
            let abs = fs::canonicalize(&path).expect("canonical path");
            files.push((rel, abs));
        }
    }
}

/// The `Content-Type` for a file, by its extension. Browsers refuse to run a module script
/// served with a type that is not JavaScript, so `.js` and `.mjs` must be right.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" | "md" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        _ => {
            println!(
                "cargo:warning=web/{path}: unknown extension, served as application/octet-stream"
            );
            "application/octet-stream"
        }
    }
}
