//! Serving files from a directory (the demo page, its script and styles) and fixed pages.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full, text_response};

/// The `Content-Type` for a file name, from its extension (`application/octet-stream` when
/// unknown).
///
/// ```
/// use armature_realtime::static_files::content_type;
/// assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
/// assert_eq!(content_type("app.JS"), "text/javascript; charset=utf-8");
/// ```
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Resolves a decoded request path (`a/b.js`) under `root`, refusing anything that could
/// leave it: `..`, `.`, backslashes, NUL, or a hidden name (leading `.`). An empty path (or
/// one ending in `/`) means `index.html`.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    let mut parts = request_path.split('/').filter(|p| !p.is_empty()).peekable();
    if parts.peek().is_none() {
        return Some(path.join("index.html"));
    }
    for part in parts {
        if part.starts_with('.') || part.contains(['\\', '\0', ':']) {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

/// Serves `request_path` from `root`: `200` with the file and its content type, `404` when
/// there is no such file (or the path tries to leave `root`). A directory serves its
/// `index.html`.
pub async fn serve_file(root: &Path, request_path: &str) -> Response<Body> {
    let Some(mut path) = resolve(root, request_path) else {
        return text_response(StatusCode::NOT_FOUND, "not found");
    };
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            bytes_response(Bytes::from(bytes), content_type(name))
        }
        Err(_) => text_response(StatusCode::NOT_FOUND, "not found"),
    }
}

/// A `200` response with `bytes` and `content_type`, not to be cached without revalidation.
pub fn bytes_response(bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(full(bytes));
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn resolve_refuses_escapes() {
        let root = Path::new("/srv");
        assert_eq!(resolve(root, ""), Some(PathBuf::from("/srv/index.html")));
        assert_eq!(
            resolve(root, "js/app.js"),
            Some(PathBuf::from("/srv/js/app.js"))
        );
        for bad in [
            "../etc/passwd",
            "a/../../b",
            ".env",
            "a\\..\\b",
            "c:x",
            "a/./b",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn serves_files_with_content_type() {
        let dir = std::env::temp_dir().join(format!("armature-static-{}", std::process::id()));
        tokio::fs::create_dir_all(dir.join("sub")).await.unwrap();
        tokio::fs::write(dir.join("index.html"), "<h1>hi</h1>")
            .await
            .unwrap();
        tokio::fs::write(dir.join("sub/app.css"), "body{}")
            .await
            .unwrap();

        let res = serve_file(&dir, "").await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "<h1>hi</h1>");

        let res = serve_file(&dir, "sub/app.css").await;
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert_eq!(serve_file(&dir, "sub/none.css").await.status(), 404);
        assert_eq!(serve_file(&dir, "../x").await.status(), 404);
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }
}
