//! The browser client (`web/`), embedded into the binary.
//!
//! `cargo build` embeds these files with `include_bytes!`, so the binary serves the page on its
//! own: it works offline, needs no Node and no files next to it. Editing a file under `web/`
//! takes effect at the next build.

/// `web/index.html`: the landing page and the call page.
const INDEX_HTML: &[u8] = include_bytes!("../../web/index.html");
/// `web/app.js`: the page's script (an ES module).
const APP_JS: &[u8] = include_bytes!("../../web/app.js");
/// `web/style.css`: the page's style sheet.
const STYLE_CSS: &[u8] = include_bytes!("../../web/style.css");

/// Looks up an embedded file by its name inside `web/` (`"index.html"`, `"app.js"`,
/// `"style.css"`). Returns its content type and its bytes, or `None` for any other name.
///
/// The lookup is an exact match against a fixed list, so no request path can reach any other
/// file.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "index.html" => Some(("text/html; charset=utf-8", INDEX_HTML)),
        // Browsers refuse to run a module script served with another type.
        "app.js" => Some(("text/javascript; charset=utf-8", APP_JS)),
        "style.css" => Some(("text/css; charset=utf-8", STYLE_CSS)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::asset;

    #[test]
    fn known_files_are_embedded() {
        let (ty, body) = asset("index.html").unwrap();
        assert!(ty.starts_with("text/html"));
        assert!(!body.is_empty());
        assert!(asset("app.js").unwrap().0.starts_with("text/javascript"));
        assert!(asset("style.css").unwrap().0.starts_with("text/css"));
    }

    #[test]
    fn other_names_are_not_found() {
        for name in [
            "",
            "/",
            "../Cargo.toml",
            "index.htm",
            "/static/app.js",
            "APP.JS",
        ] {
            assert!(asset(name).is_none(), "{name}");
        }
    }
}
