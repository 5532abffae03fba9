//! Serving the files under a directory (the demo page, its script and styles) with
//! `tower-http`'s [`ServeDir`]: content types, `Range` requests, `Last-Modified` /
//! `If-Modified-Since`, `HEAD`, bodies streamed in chunks (a large file is never read into
//! memory at once), a directory's `index.html`, and no path that leaves the directory.
//!
//! On top of it, hidden names (a segment starting with `.`, such as `.env` or `.git`) are
//! never served, and every answer carries `Cache-Control: no-cache` (browsers revalidate,
//! so an edited file shows at the next load).

use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Empty;
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;

use crate::body::{Body, boxed, text_response};
use crate::request::RequestHead;

/// The files under a directory, mounted at a path prefix.
#[derive(Debug, Clone)]
pub struct StaticDir {
    serve: ServeDir,
    prefix: String,
}

impl StaticDir {
    /// The files under `dir`, served at `mount` (`"/"` or `"/static"`).
    pub fn new(mount: &str, dir: impl Into<PathBuf>) -> Self {
        let prefix = mount.trim_end_matches('/').to_owned();
        let serve = ServeDir::new(dir.into()).redirect_path_prefix(prefix.clone());
        Self { serve, prefix }
    }

    /// Answers a `GET` or `HEAD` whose path starts with the mount: the file (`200`, `206`
    /// for a range, `304` when unchanged), a redirect from a directory to its `/` form, or
    /// `404`.
    pub async fn serve(&self, head: &RequestHead) -> Response<Body> {
        let path = head.uri().path();
        let rest = path.strip_prefix(&self.prefix).unwrap_or(path);
        let rest = if rest.is_empty() { "/" } else { rest };
        let hidden = rest.split('/').any(|segment| {
            percent_decode_str(segment)
                .decode_utf8_lossy()
                .starts_with('.')
        });
        if hidden {
            return text_response(StatusCode::NOT_FOUND, "not found");
        }
        let uri = match head.uri().query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest.to_owned(),
        };
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = head.method().clone();
        *request.headers_mut() = head.headers().clone();
        match uri.parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return text_response(StatusCode::NOT_FOUND, "not found"),
        }
        let mut serve = self.serve.clone();
        match serve.try_call(request).await {
            Ok(response) => {
                let mut response = response.map(boxed);
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                text_response(StatusCode::NOT_FOUND, "not found")
            }
            Err(err) => {
                tracing::warn!(path, error = %err, "static file could not be read");
                text_response(StatusCode::INTERNAL_SERVER_ERROR, "file could not be read")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Params;
    use http_body_util::BodyExt;

    fn head(uri: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        RequestHead::new(req.body(()).unwrap().into_parts().0, Params::default())
    }

    #[tokio::test]
    async fn serves_files_ranges_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("armature-static-{}", std::process::id()));
        tokio::fs::create_dir_all(dir.join("sub")).await.unwrap();
        tokio::fs::write(dir.join("index.html"), "<h1>hi</h1>")
            .await
            .unwrap();
        tokio::fs::write(dir.join("sub/app.css"), "body{}")
            .await
            .unwrap();
        tokio::fs::write(dir.join(".env"), "SECRET=1")
            .await
            .unwrap();
        let files = StaticDir::new("/static", &dir);

        let res = files.serve(&head("/static/", &[])).await;
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "<h1>hi</h1>");

        let res = files.serve(&head("/static/sub/app.css", &[])).await;
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/css");
        let res = files
            .serve(&head("/static/sub/app.css", &[("Range", "bytes=0-3")]))
            .await;
        assert_eq!(res.status(), 206);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "body");
        // A directory without its slash is redirected under the mount.
        let res = files.serve(&head("/static/sub", &[])).await;
        assert!(res.status().is_redirection());
        assert_eq!(res.headers()[header::LOCATION], "/static/sub/");

        for bad in [
            "/static/sub/none.css",
            "/static/..%2F..%2Fetc%2Fpasswd",
            "/static/.env",
            "/static/%2eenv",
            "/static/sub/../../x",
        ] {
            let res = files.serve(&head(bad, &[])).await;
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, 404, "{bad}: {body:?}");
        }
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }
}
