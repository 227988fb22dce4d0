//! Controls and banners more than one page uses: the picklist drop-down, the PSA and source
//! banners, the sample ticket.

use maud::{Markup, html};

use ticketing_core::catalog::{Catalog, Field};

use super::psa::{PsaStatus, SourceStatus};

/// The value a drop-down shows for a stored label: the PSA's spelling, or blank when the PSA
/// no longer has it. Without a catalog (not read yet) the stored label is shown as is.
pub(crate) fn shown(catalog: Option<&Catalog>, field: Field, label: Option<&str>) -> Option<String> {
    match catalog {
        Some(c) => c.display(field, label),
        None => label.map(str::to_owned),
    }
}

pub(super) fn labels(catalog: Option<&Catalog>, field: Field) -> Vec<String> {
    catalog
        .and_then(|c| c.list(field))
        .map(|l| l.iter().filter(|v| v.active).map(|v| v.label.clone()).collect())
        .unwrap_or_default()
}

/// A labelled drop-down of a picklist: a blank option, then the PSA's active values (plus
/// the current value when there is no catalog to check it against). A control whose value has
/// a problem carries `aria-invalid` and a reference to the problem's text in the list above
/// the table.
#[allow(clippy::too_many_arguments)] // one private helper, called with named locals
pub(super) fn picklist_select(
    catalog: Option<&Catalog>,
    field: Field,
    name: &str,
    id: &str,
    label: &str,
    label_hidden: bool,
    current: Option<&str>,
    problem_id: Option<&str>,
) -> Markup {
    let mut opts = labels(catalog, field);
    if let Some(c) = current {
        if !opts.iter().any(|o| o == c) {
            opts.push(c.to_owned());
        }
    }
    html! {
        label for=(id) class=[label_hidden.then_some("vh")] { (label) }
        select id=(id) name=(name) data-inline aria-invalid=[problem_id.map(|_| "true")] aria-describedby=[problem_id] {
            option value="" selected[current.is_none()] { "(blank)" }
            @for o in &opts {
                option value=(o) selected[Some(o.as_str()) == current] { (o) }
            }
        }
    }
}

/// The banner shown while the PSA does not answer or the catalog may be outdated.
pub(crate) fn psa_banner(psa: &PsaStatus, has_catalog: bool) -> Markup {
    html! {
        @if let Some((head, text)) = psa.problem(has_catalog) {
            div.banner.error role="alert" id="psa-banner" {
                p { strong { (head) } }
                p { (text) }
            }
        }
    }
}

/// The banner shown while a source's calls fail (see [`SourceStatus`] for how that is told).
pub(crate) fn source_banner(sources: &SourceStatus) -> Markup {
    html! {
        @if let Some((head, text)) = sources.problem() {
            div.banner.error role="alert" id="source-banner" {
                p { strong { (head) } }
                p { (text) }
            }
        }
    }
}

/// A sample ticket: its title, its description and, apart, the key line every description
/// ends with (the integration recognises its tickets by it; no template can remove it). The
/// editor shows the key line itself (`id_prefix` set); a section page's preview only says it
/// follows, so the section pages stay free of internal spellings.
pub(crate) fn sample_ticket(title: &str, description: &str, id_prefix: Option<&str>) -> Markup {
    let key_start = description
        .rfind(ticketing_core::ticket::KEY_LINE_PREFIX)
        .filter(|i| *i == 0 || description[..*i].ends_with('\n'));
    let (body, key) = match key_start {
        Some(i) => (description[..i].trim_end(), Some(&description[i..])),
        None => (description, None),
    };
    let id = |what: &str| id_prefix.map(|p| format!("{p}-{what}"));
    html! {
        dl.ticket {
            dt { "Title" }
            dd.ticket-title id=[id("title")] { (title) }
            dt { "Description" }
            dd { pre.ticket-description id=[id("description")] { (body) } }
            @if let Some(key) = key {
                dt { "Key line, always added last" }
                dd {
                    @if id_prefix.is_some() {
                        code.key-line id=[id("key")] { (key) }
                    }
                    span.sub { "The integration finds its own tickets by this line; no template can remove it." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_labels_are_escaped_in_drop_downs() {
        let mut c = Catalog::example();
        c.queues.push(ticketing_core::catalog::PicklistValue::new(99, "<b>Evil\" queue</b>"));
        let html = picklist_select(Some(&c), Field::Queue, "q", "q", "Queue", false, Some("<b>Evil\" queue</b>"), None)
            .into_string();
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Evil&quot; queue&lt;/b&gt;"));
    }

    #[test]
    fn a_label_the_psa_lost_shows_blank() {
        let mut c = Catalog::example();
        c.priorities.retain(|p| p.label != "Critical");
        assert_eq!(shown(Some(&c), Field::Priority, Some("Critical")), None);
        assert_eq!(shown(Some(&c), Field::Priority, Some("medium")).as_deref(), Some("Medium"));
        let html = picklist_select(Some(&c), Field::Priority, "p", "p", "Priority", true, None, None).into_string();
        assert!(html.contains(r#"<option value="" selected>(blank)</option>"#));
    }

    #[test]
    fn a_problem_marks_its_control() {
        let html = picklist_select(None, Field::Queue, "q", "q", "Queue", true, None, Some("problem-3")).into_string();
        assert!(html.contains(r#"<label for="q" class="vh">Queue</label>"#), "{html}");
        assert!(html.contains(r#"data-inline aria-invalid="true" aria-describedby="problem-3""#), "{html}");
    }
}
