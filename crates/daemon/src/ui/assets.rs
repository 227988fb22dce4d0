//! The UI's style sheets and script: embedded, linked with their content's version
//! (`/ui/assets/ui.css?v=<hash>`), and answered as cacheable for good under that version, so
//! a browser fetches each once per daemon build rather than with every page. The rate limit
//! of the admin listener lets them through ([`crate::gate::limited`]): they are constant bytes,
//! and a page whose HTML came through must not render unstyled because its style sheet was
//! refused.

use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// One embedded file.
pub(crate) struct Asset {
    /// Its path under the listener.
    pub path: &'static str,
    content_type: &'static str,
    body: &'static str,
    version: u64,
}

/// 64-bit FNV-1a of `bytes`: the version a link carries (a change of content is a new URL).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset { path, content_type, body, version: fnv1a(body.as_bytes()) }
}

/// The style sheet.
pub(crate) const CSS: Asset = asset("/ui/assets/ui.css", "text/css; charset=utf-8", include_str!("assets/ui.css"));
/// The style sheet for browsers without script.
pub(crate) const NOJS_CSS: Asset =
    asset("/ui/assets/nojs.css", "text/css; charset=utf-8", include_str!("assets/nojs.css"));
/// The script.
pub(crate) const JS: Asset = asset("/ui/assets/ui.js", "text/javascript; charset=utf-8", include_str!("assets/ui.js"));

impl Asset {
    /// The link a page carries: the path with the content's version.
    pub(crate) fn href(&self) -> String {
        format!("{}?v={:016x}", self.path, self.version)
    }

    /// The answer: cacheable for a year (and never revalidated) when asked for this
    /// version, revalidated on every use otherwise (an old page's link).
    pub(crate) fn answer(&self, asked: Option<&str>) -> Response {
        // Compared as a number: no formatting per request.
        let current = asked.is_some_and(|v| v.len() == 16 && u64::from_str_radix(v, 16) == Ok(self.version));
        let cache = if current { "public, max-age=31536000, immutable" } else { "no-cache" };
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
            self.body,
        )
            .into_response()
    }
}

/// The `?v=` of an asset's link.
#[derive(Deserialize)]
pub(crate) struct Version {
    v: Option<String>,
}

/// The handler of `asset`'s route.
pub(crate) fn route(asset: &'static Asset) -> axum::routing::MethodRouter<super::UiState> {
    axum::routing::get(move |Query(q): Query<Version>| async move { asset.answer(q.v.as_deref()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_content() {
        assert_ne!(CSS.version, NOJS_CSS.version);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a's published value for \"a\"");
        assert!(CSS.href().starts_with("/ui/assets/ui.css?v="));
        let current = CSS.href().split_once("?v=").map(|(_, v)| v.to_owned()).unwrap();
        let cache = |asked: Option<&str>| CSS.answer(asked).headers()[header::CACHE_CONTROL].clone();
        assert_eq!(cache(Some(&current)), "public, max-age=31536000, immutable");
        assert_eq!(cache(Some(&current[1..])), "no-cache", "a shorter spelling is not the version");
        assert_eq!(cache(Some("+123")), "no-cache");
        assert_eq!(cache(None), "no-cache");
    }
}
