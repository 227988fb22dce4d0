//! Text as Halo holds it: descriptions and notes are HTML. A pure module: plain text to the
//! HTML this client writes, HTML as Halo returns it back to lines, and the reference line that
//! carries the idempotency key.

use ticketing_core::ticket::IdempotencyKey;

/// Starts the line this client appends to every description it writes; the rest of the line is
/// the ticket's idempotency key. Halo has no external-reference field for tickets
/// (halopsa-api.md, inferred), so the key travels in the description, after the core's own key
/// line, and is found again by `GET /api/Tickets?search=` (or in a custom field, a setting).
pub const REF_LINE_PREFIX: &str = "msp-ticketing ref: ";

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Plain text as HTML: escaped, one `<br>` per line break.
pub fn text_to_html(text: &str) -> String {
    text.lines().map(escape_html).collect::<Vec<_>>().join("<br>")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let entity = tail.find(';').filter(|e| *e <= 10).map(|e| &tail[..=e]);
        let decoded = entity.and_then(|e| match e {
            "&amp;" => Some("&".to_owned()),
            "&lt;" => Some("<".to_owned()),
            "&gt;" => Some(">".to_owned()),
            "&quot;" => Some("\"".to_owned()),
            "&#39;" | "&apos;" => Some("'".to_owned()),
            "&nbsp;" => Some(" ".to_owned()),
            e if e.starts_with("&#x") => {
                u32::from_str_radix(&e[3..e.len() - 1], 16).ok().and_then(char::from_u32).map(String::from)
            }
            e if e.starts_with("&#") => e[2..e.len() - 1].parse().ok().and_then(char::from_u32).map(String::from),
            _ => None,
        });
        match (entity, decoded) {
            (Some(e), Some(d)) => {
                out.push_str(&d);
                rest = &tail[e.len()..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML (or plain text) back to lines: `<br>`, `</p>`, `</div>` and `</li>` end lines, other
/// tags go, entities are decoded; line breaks already in the text stay.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find('>') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let tag = rest[i + 1..i + end].trim().to_ascii_lowercase();
        let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        if name == "br" || (tag.starts_with('/') && matches!(name, "p" | "div" | "li" | "tr")) {
            out.push('\n');
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    let text = unescape(&out);
    text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_end().to_owned()
}

/// The description this client writes: the text, then the reference line.
pub fn details_with_ref(description: &str, key: &IdempotencyKey) -> String {
    let text = description.trim_end();
    let line = format!("{REF_LINE_PREFIX}{}", key.as_str());
    if text.is_empty() { line } else { format!("{text}\n{line}") }
}

/// The idempotency key of the reference line of a description (HTML or text): the last line
/// starting with [`REF_LINE_PREFIX`].
pub fn ref_of(details: &str) -> Option<String> {
    html_to_text(details)
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(REF_LINE_PREFIX))
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
}

/// A description as the core wrote it: HTML back to text, the reference line taken out.
pub fn description_of(details: &str) -> String {
    let text = html_to_text(details);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().starts_with(REF_LINE_PREFIX)).collect();
    lines.join("\n").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_survives_the_round_trip_through_html() {
        let t = "Virus <Trojan> & \"friends\"\nmsp-ticketing key: event|kes|t1|42";
        let html = text_to_html(t);
        assert_eq!(html, "Virus &lt;Trojan&gt; &amp; &quot;friends&quot;<br>msp-ticketing key: event|kes|t1|42");
        assert_eq!(html_to_text(&html), t);
        assert_eq!(html_to_text("<p>a</p><p>b&nbsp;c</p><div>d<br/>e</div>&#65;&#x42;"), "a\nb c\nd\ne\nAB");
        assert_eq!(html_to_text("5 &lt 6 & 7"), "5 &lt 6 & 7");
    }

    #[test]
    fn the_reference_line_is_found_and_taken_out() {
        let key = IdempotencyKey("kmsp-abc-1".into());
        let d = text_to_html(&details_with_ref("first\nmsp-ticketing key: x", &key));
        assert_eq!(ref_of(&d).as_deref(), Some("kmsp-abc-1"));
        assert_eq!(description_of(&d), "first\nmsp-ticketing key: x");
        assert_eq!(ref_of("no line here"), None);
        assert_eq!(details_with_ref("", &key), "msp-ticketing ref: kmsp-abc-1");
    }
}
